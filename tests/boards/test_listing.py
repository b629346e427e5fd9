"""``bitfab boards`` listing: readable in 80 columns, every board's serial pins and LEDs."""

from __future__ import annotations

import importlib
import io

import pytest
from rich.console import Console

from bitfab.boards import BOARDS, DEVICES
from bitfab.boards.listing import led_balls, print_boards, serial_balls


def _render(wide: bool, width: int) -> str:
    buf = io.StringIO()
    print_boards(wide, Console(file=buf, width=width, color_system=None))
    return buf.getvalue()


def test_narrow_listing_fits_80_columns_and_names_the_pins():
    out = _render(False, 80)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    starts = {name: out.index(f"\n{name} ") for name in BOARDS}
    ends = sorted([*starts.values(), out.index("bare devices")])
    for name, t in BOARDS.items():
        block = out[starts[name] : ends[ends.index(starts[name]) + 1]]
        rx, tx = serial_balls(t)
        assert f"rx {rx}" in block or f"({rx})" in block, name
        assert f"tx {tx}" in block or f"({tx})" in block, name
        leds = led_balls(t)
        assert f"LEDs: {len(leds)} ({' '.join(leds)})" in block, name
        assert t.serial.where in block, name
    for name in DEVICES:
        assert any(line.startswith(name + " ") for line in lines), name


def test_wide_table_has_one_row_per_target():
    out = _render(True, 220)
    for name in [*BOARDS, *DEVICES]:
        rows = [line for line in out.splitlines() if f" {name} " in line]
        assert len(rows) == 1, name
    assert "/".join(serial_balls(BOARDS["orangecrab-25f"])) in out


@pytest.mark.parametrize("name", list(BOARDS))
def test_every_board_has_a_serial_link(name):
    t = BOARDS[name]
    plat = t.platform_class()()
    assert ("uart", 0) in plat.resources
    module, _, cls = t.platform.partition(":")
    base = getattr(importlib.import_module(module), cls)
    # added exactly when amaranth-boards' own platform has none
    assert (("uart", 0) in {(r.name, r.number) for r in base.resources}) != t.serial.added
    assert t.serial.where
