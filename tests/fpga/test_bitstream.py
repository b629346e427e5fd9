"""Board bitstreams through amaranth-boards platforms with the YoWASP tools."""

from __future__ import annotations

import pytest
from fpga_toys import Blinky

from bitfab.errors import BitfabError
from bitfab.fpga.bitstream import build_board_bitstream
from bitfab.hw.elaboratable import unused_ok

SYNC = {"ice40": bytes.fromhex("7eaa997e"), "ecp5": bytes.fromhex("ffffbdb3")}


@pytest.mark.slow
@pytest.mark.parametrize("board,family", [("icebreaker", "ice40"), ("ulx3s-25f", "ecp5")])
def test_blinky_bitstream(tmp_path, board, family):
    b = build_board_bitstream(Blinky(24), board, tmp_path / board)
    data = b.bitstream.read_bytes()
    assert SYNC[family] in data[:4096]
    assert b.fmax_mhz is not None and b.fmax_mhz > 12.0
    assert b.utilization["logic_cells"]["used"] >= 24  # at least one cell per counter bit
    assert b.utilization["io"]["used"] == 2  # clock in, LED out


def test_bare_device_has_no_pins(tmp_path):
    design = Blinky()
    unused_ok(design)
    with pytest.raises(BitfabError, match="bare device"):
        build_board_bitstream(design, "up5k", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def _toy_board_top(board: str, clock_mhz: float | None = None):
    """The host link tests' toy accelerator behind the board top of ``board``; like the PE
    arrays (``bitfab/hw/arrays/common.py``) it reads ``ResetSignal()`` (it clears a register)."""
    from types import SimpleNamespace

    from amaranth.hdl import ResetSignal, Signal

    from bitfab.hw.shell.board_top import BoardTop
    from tests.hw.shell.test_host_link import ToyAcc

    class ResetReadingToyAcc(ToyAcc):
        def elaborate(self, platform):
            m = super().elaborate(platform)
            seen = Signal()
            m.d.sync += seen.eq(ResetSignal() | seen)
            return m

    acc = ResetReadingToyAcc(3, False, cheap=True)
    acc.graph = SimpleNamespace(
        input_fmt=SimpleNamespace(words=3),
        output_fmt=SimpleNamespace(words=1),
        output_meaning="class index",
    )
    return BoardTop(acc, board, clock_mhz=clock_mhz)


def _constraints(board: str, top) -> str:
    """The pin constraint file (.pcf / .lpf) Amaranth writes for ``top`` on ``board``."""
    from bitfab.boards import get_target

    plan = get_target(board).platform_class()().prepare(top, "top")
    return next(text for f, text in plan.files.items() if f.endswith((".pcf", ".lpf")))


def _site(constraints: str, port: str) -> str | None:
    """The ball Amaranth locates ``port`` (e.g. ``uart_0__rx__io``) on, or None."""
    import re

    m = re.search(rf'(?:LOCATE COMP "{port}" SITE "(\w+)"|set_io {port} (\w+))', constraints)
    return (m.group(1) or m.group(2)) if m else None


# Balls as the boards' schematics and amaranth-boards name them, written out independently of
# the catalogue: (rx, tx, LEDs). Fomu: touch pads 1/2; TinyFPGA BX: header pins 1/2;
# OrangeCrab: Feather pins 0/1 and the RGB LED (r, g, b).
EXPECTED_PINS = {
    "icebreaker": ("6", "9", ["11", "37", "26", "27", "25", "23", "21"]),
    "fomu": ("E4", "D5", ["A5"]),
    "tinyfpga-bx": ("A2", "A1", ["B3"]),
    "ulx3s-25f": ("M1", "L4", ["B2", "C2", "C1", "D2", "D1", "E2", "E1", "H3"]),
    "orangecrab-25f": ("N17", "M18", ["K4", "M3", "J3"]),
    "orangecrab-85f": ("N17", "M18", ["K4", "M3", "J3"]),
}


@pytest.mark.parametrize("board", list(EXPECTED_PINS))
def test_board_top_pins_on_the_oscillator(board):
    """Every board elaborates on its bare oscillator (ECP5 too: its platform's reset-less
    ``sync`` used to fail with "reset of reset-less domain"), with the serial link and the
    LEDs on the expected balls."""
    from bitfab.boards.listing import led_balls, serial_balls

    top = _toy_board_top(board)
    assert top.pll is None and "oscillator" in top.note
    text = _constraints(board, top)
    rx, tx, leds = EXPECTED_PINS[board]
    assert (_site(text, "uart_0__rx__io"), _site(text, "uart_0__tx__io")) == (rx, tx)
    assert [_site(text, f"led_{k}__io") for k in range(len(leds))] == leds
    assert _site(text, f"led_{len(leds)}__io") is None
    assert serial_balls(top.target) == (rx, tx) and led_balls(top.target) == leds


def test_ecp5_board_top_on_the_oscillator_has_a_power_on_reset():
    """On ECP5 without PLL the board top drives ``sync`` from the oscillator pin with a reset
    synchronizer (not Amaranth's GSR-based reset-less domain); with the PLL the same."""
    for mhz in (None, 50):
        top = _toy_board_top("ulx3s-25f", mhz)
        text = top.target.platform_class()().prepare(top, "top").files["top.il"]
        assert "rst_sync" in text and "SGSR" not in text
        assert ("EHXPLLL" in text) == (mhz is not None)


@pytest.mark.slow
def test_orangecrab_board_top_bitstream_on_the_oscillator(tmp_path):
    """OrangeCrab (no UART in amaranth-boards): the board top on the 48 MHz oscillator places
    and routes with the added serial pins and RGB LEDs: clock + rx + tx + 3 LEDs."""
    b = build_board_bitstream(_toy_board_top("orangecrab-25f"), "orangecrab-25f", tmp_path / "o")
    assert SYNC["ecp5"] in b.bitstream.read_bytes()[:4096]
    assert b.utilization["io"]["used"] == 1 + 2 + 3
    assert b.fmax_mhz is not None


def test_board_top_refuses_a_platform_without_uart():
    """Given amaranth-boards' own TinyFPGA BX platform (no ``uart``) instead of the catalogue's,
    the board top says which platform to use, in one line."""
    from amaranth_boards.tinyfpga_bx import TinyFPGABXPlatform

    top = _toy_board_top("tinyfpga-bx")
    with pytest.raises(BitfabError, match="no 'uart' resource") as exc:
        TinyFPGABXPlatform().prepare(top, "top")
    assert "\n" not in str(exc.value)
