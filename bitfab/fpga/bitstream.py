"""Bitstreams for real boards: an Amaranth design built with its amaranth-boards platform.

The platform supplies the pins (``platform.request("led", 0)``...), the clock constraint and
the tool scripts; this module points those scripts at the YoWASP tools (Amaranth reads them
from ``$YOSYS``, ``$NEXTPNR_ICE40``, ``$ICEPACK``, ``$NEXTPNR_ECP5``, ``$ECPPACK``; the ULX3S
platform also insists on ``$OPENFPGALOADER``, which is only used for programming; the OrangeCrab
platform ends its build script with ``dfu-suffix`` (a DFU suffix for ``dfu-util``), which is not
installed here: ``$DFU_SUFFIX`` is ``true``, so the ``.bit`` has no suffix and programming it with
``dfu-util`` needs ``dfu-suffix -v 1209 -p 5af0 -a top.bit`` first), asks nextpnr
for a ``--report`` and returns the bitstream with the post-route figures. Programming the board
is left to the user (``openFPGALoader``/``iceprog``), as nothing here is attached to hardware.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bitfab.boards import Target, get_target
from bitfab.errors import BitfabError
from bitfab.fpga import pnr
from bitfab.fpga.toolchain import find_tool, run_group
from bitfab.fpga.yosys import ECP5_LUT_MAP
from bitfab.staging import staged_output


@dataclass(frozen=True)
class BoardBuild:
    """A board bitstream and its post-route figures.

    Attributes:
        board: catalogue name.
        bitstream: path of the bitstream (``<name>.bin`` iCE40, ``<name>.bit`` ECP5).
        fmax_mhz: post-route Fmax of the slowest clock in MHz (``None`` without clocks).
        utilization: resource -> used / available / percent (nextpnr).
        seconds: wall time of the whole build.
    """

    board: str
    bitstream: Path
    fmax_mhz: float | None
    utilization: dict[str, dict[str, float]]
    seconds: float


def _tool_env(target: Target) -> dict[str, str]:
    env = dict(os.environ)
    env["YOSYS"] = find_tool("yosys")
    if target.family == "ice40":
        env["NEXTPNR_ICE40"] = find_tool("nextpnr-ice40")
        env["ICEPACK"] = find_tool("icepack")
    else:
        env["NEXTPNR_ECP5"] = find_tool("nextpnr-ecp5")
        env["ECPPACK"] = find_tool("ecppack")
    env.setdefault("OPENFPGALOADER", "true")
    if shutil.which(env.get("DFU_SUFFIX", "dfu-suffix")) is None:
        env["DFU_SUFFIX"] = "true"  # OrangeCrab: the DFU suffix is for programming only
    return env


def build_board_bitstream(
    elaboratable,
    board: str | Target,
    out_dir: str | os.PathLike,
    *,
    name: str = "top",
    seed: int = 1,
    console=None,
    timing_allow_fail: bool = False,
) -> BoardBuild:
    """Build ``elaboratable`` for ``board`` with its amaranth-boards platform into ``out_dir``.

    ``timing_allow_fail``: pass nextpnr's ``--timing-allow-fail``, so a design that misses the
    clock still gets its bitstream and its post-route Fmax (the caller reports the miss);
    without it nextpnr stops with "Max frequency ... FAIL".

    Raises:
        BitfabError: unknown board, bare device (no pins), or a failing tool (first error line).
    """
    target = get_target(board)
    platform = target.platform_class()()
    env = _tool_env(target)
    start = time.perf_counter()
    with staged_output(out_dir) as build:
        nextpnr_opts = f"--report {name}_report.json --seed {seed}"
        if timing_allow_fail:
            nextpnr_opts += " --timing-allow-fail"
        overrides = {"nextpnr_opts": nextpnr_opts}
        if target.family == "ecp5":  # the same classic-ABC LUT mapping as bitfab.fpga.synth
            overrides["synth_opts"] = "-run begin:map_luts"
            overrides["script_after_synth"] = "\n".join(
                [*ECP5_LUT_MAP, f"synth_ecp5 -top {name} -run map_cells:"]
            )
        plan = platform.prepare(elaboratable, name, **overrides)
        status = console.status(f"building {name} for {target.name}") if console else None
        try:
            if status:
                status.start()
            plan.extract(str(build))
            with open(build / "build.log", "w") as log:
                code = run_group(["sh", f"{plan.script}.sh"], cwd=build, env=env, stdout=log)
            if code != 0:
                raise subprocess.CalledProcessError(code, ["sh", f"{plan.script}.sh"])
        except subprocess.CalledProcessError:
            logs = [build / "build.log", build / f"{name}.rpt", build / f"{name}.tim"]
            msg = None
            for log in logs:
                if log.exists():
                    msg = pnr.first_error(log.read_text(errors="replace")) or msg
            raise BitfabError(
                f"board build of {name} for {target.name} failed: {msg or 'see the tool logs'}"
            ) from None
        finally:
            if status:
                status.stop()
        res = pnr.read_report(build / f"{name}_report.json", target.family)
    suffix = ".bin" if target.family == "ice40" else ".bit"
    return BoardBuild(
        board=target.name,
        bitstream=Path(out_dir) / f"{name}{suffix}",
        fmax_mhz=res.fmax_mhz,
        utilization=res.utilization,
        seconds=round(time.perf_counter() - start, 2),
    )
