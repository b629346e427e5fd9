"""The board catalogue agrees with amaranth-boards' platforms and Amaranth's nextpnr flags."""

from __future__ import annotations

import pytest
from amaranth.vendor import LatticeECP5Platform, SiliconBluePlatform

from bitfab.boards import BOARDS, DEVICES, Target, get_target, target_names
from bitfab.errors import BitfabError

# Published device limits (Lattice data sheets, collected in shared/ANCHORS.md).
DATASHEET = {
    "iCE40UP5K": dict(luts=5280, bram_blocks=30, bram_bits=4096, dsps=8, spram_blocks=4),
    "iCE40LP8K": dict(luts=7680, bram_blocks=32, bram_bits=4096, dsps=0, spram_blocks=0),
    "iCE40HX8K": dict(luts=7680, bram_blocks=32, bram_bits=4096, dsps=0, spram_blocks=0),
    "LFE5U-25F": dict(luts=24288, bram_blocks=56, bram_bits=18432, dsps=28, spram_blocks=0),
    "LFE5U-45F": dict(luts=43848, bram_blocks=108, bram_bits=18432, dsps=72, spram_blocks=0),
    "LFE5U-85F": dict(luts=83640, bram_blocks=208, bram_bits=18432, dsps=156, spram_blocks=0),
}


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_matches_amaranth_platform(name):
    board = BOARDS[name]
    cls = board.platform_class()
    plat = cls()
    assert plat.device == board.device
    if board.family == "ice40":
        assert issubclass(cls, SiliconBluePlatform)
        assert plat.package.lower() == board.package
        flag = SiliconBluePlatform._nextpnr_device_options[plat.device]
        assert board.nextpnr_flags == (flag, "--package", plat.package.lower())
    else:
        assert issubclass(cls, LatticeECP5Platform)
        pkg = LatticeECP5Platform._nextpnr_package_options[plat.package].upper()
        flag = LatticeECP5Platform._nextpnr_device_options[plat.device]
        assert board.nextpnr_flags == (flag, "--package", pkg, "--speed", str(plat.speed))
    assert board.default_clock_mhz * 1e6 == pytest.approx(plat.default_clk_frequency)


@pytest.mark.parametrize("name", target_names())
def test_device_facts_match_datasheet(name):
    t = get_target(name)
    assert t.family in ("ice40", "ecp5")
    for field, value in DATASHEET[t.device].items():
        assert getattr(t, field) == value, (name, field)
    assert t.bram_total_bits == t.bram_blocks * t.bram_bits
    assert 0 < t.io < 400


def test_expected_boards_and_devices_present():
    assert {
        "icebreaker",
        "fomu",
        "tinyfpga-bx",
        "ulx3s-25f",
        "ulx3s-45f",
        "ulx3s-85f",
        "orangecrab-25f",
        "orangecrab-85f",
    } <= set(BOARDS)
    assert {"up5k", "ecp5-25f", "ecp5-85f"} <= set(DEVICES)
    assert all(BOARDS[b].is_board for b in BOARDS)
    assert not any(DEVICES[d].is_board for d in DEVICES)


def test_lookup_is_forgiving_and_idempotent():
    assert get_target("ULX3S_85F") is BOARDS["ulx3s-85f"]
    assert get_target(" IceBreaker ") is BOARDS["icebreaker"]
    t = get_target("up5k")
    assert isinstance(t, Target) and get_target(t) is t


def test_unknown_board_lists_known_ones():
    with pytest.raises(BitfabError) as exc:
        get_target("de10-nano")
    msg = str(exc.value)
    assert "de10-nano" in msg and "\n" not in msg
    for name in target_names():
        assert name in msg


def test_bare_device_has_no_platform():
    with pytest.raises(BitfabError, match="bare device"):
        get_target("ecp5-25f").platform_class()
