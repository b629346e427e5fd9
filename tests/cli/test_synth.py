"""``bitfab synth`` / ``bitfab boards`` argument handling (no tool runs)."""

from __future__ import annotations

import argparse

import pytest

from bitfab.boards import target_names
from bitfab.cli import boards, synth
from bitfab.errors import BitfabError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bitfab")
    sub = p.add_subparsers(dest="command", required=True)
    synth.register(sub)
    boards.register(sub)
    return p


def test_boards_lists_every_target(capsys):
    args = _parser().parse_args(["boards"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    for name in target_names():
        assert name in out


@pytest.mark.parametrize(
    "argv,match",
    [
        (["synth", "--target", "up5k", "--out", "x"], "either a Verilog file or --array"),
        (["synth", "a.v", "--array", "bitserial", "--target", "up5k", "--out", "x"], "not both"),
        (
            ["synth", "--array", "bitparallel", "--wbits", "9", "--target", "up5k", "--out", "x"],
            "wbits",
        ),
        (["synth", "--array", "bitserial", "--target", "zynq", "--out", "x"], "unknown board"),
    ],
)
def test_synth_bad_arguments(tmp_path, monkeypatch, argv, match):
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(argv)
    with pytest.raises(BitfabError, match=match):
        args.func(args)
    assert not (tmp_path / "x").exists()
