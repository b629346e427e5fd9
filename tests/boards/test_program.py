"""Flashing: the catalogue's programmer command is what each board's amaranth-boards platform runs,
and ``bitfab program`` runs it on the built bitstream (a stand-in programmer on PATH records its
arguments)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from amaranth.build.run import LocalBuildProducts

from bitfab.boards import BOARDS
from bitfab.cli import main

RECORDER = """#!/bin/sh
printf '%s\\n' "$@" > "{log}"
for a in "$@"; do [ -f "$a" ] && cp "$a" "{log}.file"; done
exit {code}
"""


def _stand_in(folder: Path, name: str, code: int = 0) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{name}.args"
    tool = folder / name
    tool.write_text(RECORDER.format(log=log, code=code))
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return tool, log


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_catalogue_command_is_the_platforms_own(board, tmp_path, monkeypatch):
    target = BOARDS[board]
    env, tool, _ = target.programmer
    stand_in, log = _stand_in(tmp_path / "bin", Path(tool).name)
    monkeypatch.setenv(env, str(stand_in))
    suffix = ".bin" if target.family == "ice40" else ".bit"
    build = tmp_path / "build"
    build.mkdir()
    (build / f"top{suffix}").write_bytes(b"\x7e\xaa\x99\x7e" + board.encode())
    target.platform_class()().toolchain_program(LocalBuildProducts(str(build)), "top")
    ran = log.read_text().splitlines()
    bit = ran[-1]  # every programmer takes the bitstream last
    assert Path(f"{log}.file").read_bytes() == (build / f"top{suffix}").read_bytes()
    assert ran == target.program_command(bit)[1:], (ran, target.program_command(bit))


def _built(tmp_path: Path, board: str = "icebreaker") -> Path:
    out = tmp_path / "build"
    (out / "bitstream").mkdir(parents=True)
    bit = out / "bitstream" / "top.bin"
    bit.write_bytes(b"\x7e\xaa\x99\x7e")
    report = {"board": board, "bitstream": {"path": str(bit), "sha256": "x"}}
    (out / "report.json").write_text(json.dumps(report))
    return out


def test_program_runs_the_programmer_on_the_bitstream(tmp_path, monkeypatch, capsys):
    out = _built(tmp_path)
    _, log = _stand_in(tmp_path / "bin", "iceprog")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("ICEPROG", raising=False)
    assert main(["program", str(out)]) == 0
    assert log.read_text().splitlines() == [str(out / "bitstream" / "top.bin")]
    assert main(["program", str(out), "--dry-run"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"iceprog {out / 'bitstream' / 'top.bin'}")


def test_program_bad_paths_are_one_error_line(tmp_path, monkeypatch, capsys):
    out = _built(tmp_path)
    _stand_in(tmp_path / "bin", "iceprog", code=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    monkeypatch.delenv("ICEPROG", raising=False)
    cases = {
        "failing programmer": (out, "iceprog failed (exit 1); is the board plugged in"),
        "no report": (tmp_path, "no report.json"),
    }
    for name, (folder, needle) in cases.items():
        assert main(["program", str(folder)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[-1], (name, err)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["program", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "iceprog not found: apt install fpga-icestorm" in err and "flash by hand" in err
    (out / "bitstream" / "top.bin").unlink()
    assert main(["program", str(out)]) == 2
    assert "bitstream missing" in capsys.readouterr().err
