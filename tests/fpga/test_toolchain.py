"""bitfab.fpga.toolchain.run_group: a tool and everything it started end with the command."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bitfab.fpga.toolchain import run_group

# a "build script" that starts a long-lived grandchild (as sh build_top.sh starts nextpnr)
SCRIPT = "sleep 300 & echo $! > {pidfile}; wait"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _grandchild(pidfile) -> int:
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            return int(pidfile.read_text())
        time.sleep(0.05)
    raise AssertionError("the script did not start its child")


def test_exit_code_and_output(tmp_path):
    with open(tmp_path / "log", "w") as log:
        assert run_group(["sh", "-c", "echo hi; exit 3"], stdout=log) == 3
    assert (tmp_path / "log").read_text() == "hi\n"


def test_timeout_ends_the_whole_group(tmp_path):
    pidfile = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        run_group(["sh", "-c", SCRIPT.format(pidfile=pidfile)], timeout_s=1.0)
    pid = _grandchild(pidfile)
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the grandchild outlived the interrupted tool"


def test_sigterm_of_the_command_ends_its_tools(tmp_path):
    """A bitfab-like process that runs a tool group and gets SIGTERM: the CLI's handler raises
    Terminated, run_group ends the group, the exit code is 143."""
    pidfile = tmp_path / "pid"
    code = (
        "import signal, sys\n"
        "from bitfab.errors import Terminated\n"
        "from bitfab.fpga.toolchain import run_group\n"
        "def on_term(s, f):\n    raise Terminated()\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "try:\n"
        f"    run_group(['sh', '-c', {SCRIPT.format(pidfile=pidfile)!r}])\n"
        "except Terminated:\n    sys.exit(143)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    pid = _grandchild(pidfile)
    proc.terminate()
    assert proc.wait(timeout=30) == 143
    deadline = time.time() + 10
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
