"""Board bitstreams through amaranth-boards platforms with the YoWASP tools."""

from __future__ import annotations

import pytest
from flow_toys import Blinky

from bitfab.errors import BitfabError
from bitfab.flows.board import build_board_bitstream

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
    design._MustUse__silence = True
    with pytest.raises(BitfabError, match="bare device"):
        build_board_bitstream(design, "up5k", tmp_path / "x")
    assert not (tmp_path / "x").exists()
