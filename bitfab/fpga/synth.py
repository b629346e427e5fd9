"""Synthesis and place-and-route of an Amaranth component or Verilog design: :func:`synthesize`.

Flow (all in one build folder, tools run with relative paths, see :mod:`bitfab.fpga.toolchain`):

1. Amaranth component -> RTLIL (``design.il``); by default wrapped in the out-of-context harness
   (:mod:`bitfab.fpga.harness`) so it needs no board pins. Verilog is copied as is.
2. Yosys ``synth_ice40`` / ``synth_ecp5`` -> ``netlist.json`` + ``yosys_stat.json``.
3. With a harness: Yosys again on the harness with the design black-boxed
   (``harness_stat.json``); the design's own cost is the difference.
4. Fit check against the catalogue's device limits (fails fast with a clear error before P&R).
5. nextpnr (``--freq``, ``--seed``, ``--report``) -> ``nextpnr_report.json``; Fmax and
   utilization come from it.
6. Optional bitstream: ``icepack`` (``.bin``) / ``ecppack`` (``.bit``).

Everything lands in ``out_dir`` at once (``bitfab.staging.staged_output``): logs
(``yosys.log``, ``yosys_harness.log``, ``nextpnr.log``), netlist, reports and ``report.json``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from amaranth.lib import wiring

from bitfab.boards import DEVICES, Target, get_target
from bitfab.errors import BitfabError
from bitfab.fpga import pnr, yosys
from bitfab.fpga.harness import DUT_NAME, OutOfContextHarness
from bitfab.fpga.report import Report
from bitfab.fpga.toolchain import log_tail, run_tool, tool_version
from bitfab.staging import staged_output

Design = wiring.Component | str | os.PathLike


def _status(console, text: str):
    """A rich status spinner, or a no-op context when ``console`` is None."""
    import contextlib

    return console.status(text) if console is not None else contextlib.nullcontext()


def _needs(target: Target, res: yosys.Resources) -> list[tuple[str, int, int]]:
    """(what, needed, available) for every resource ``res`` overflows on ``target``."""
    checks = [
        ("LUTs", res.lut, target.luts),
        ("flip-flops", res.ff, target.ffs),
        ("block RAMs", res.bram, target.bram_blocks),
        ("SPRAMs", res.spram, target.spram_blocks),
        ("DSPs", res.dsp, target.dsps),
        ("I/O pins", res.io, target.io),
    ]
    return [(what, need, have) for what, need, have in checks if need > have]


def _bigger(target: Target, res: yosys.Resources) -> str:
    """Name the smallest bare device that would hold ``res``, for the error message."""
    fits = [t for t in DEVICES.values() if t.luts > target.luts and not _needs(t, res)]
    fits.sort(key=lambda t: t.luts)
    return fits[0].name if fits else "none in the catalogue is big enough"


def fit_error(design: str, target: Target, res: yosys.Resources) -> BitfabError | None:
    """A :class:`BitfabError` naming what overflows ``target``, or ``None`` if ``res`` fits."""
    over = _needs(target, res)
    if not over:
        return None
    what = ", ".join(f"{need} {w} (has {have})" for w, need, have in over)
    return BitfabError(
        f"{design} does not fit {target.name} ({target.device}): needs {what}; fold it smaller "
        f"(fewer PE/SIMD, lower precision) or pick a bigger device (e.g. {_bigger(target, res)})"
    )


def _prepare_sources(design, build: Path, top: str, harness: bool, out_pins: int):
    """Write the design into ``build``; return (sources, design name, harness or None)."""
    if isinstance(design, wiring.Component):
        from amaranth.back import rtlil

        name = type(design).__name__
        if harness:
            h = OutOfContextHarness(design, out_pins=out_pins)
            text = rtlil.convert(h, name=top, ports=h.ports)
        else:
            h = None
            text = rtlil.convert(design, name=top)
        (build / "design.il").write_text(text)
        return ["design.il"], name, h
    if harness:
        raise BitfabError(
            "the out-of-context harness needs an Amaranth wiring.Component; "
            "pass harness=False for Verilog (its top ports become pins)"
        )
    text = str(design)
    path = Path(text) if "\n" not in text else None
    if path is not None and path.suffix in (".v", ".sv"):
        if not path.is_file():
            raise BitfabError(f"Verilog file {path} does not exist; check the path")
        dst = "design" + path.suffix
        shutil.copyfile(path, build / dst)
        return [dst], path.stem if top == "top" else top, None
    if "module" in text and "endmodule" in text:
        (build / "design.v").write_text(text)
        return ["design.v"], top, None
    raise BitfabError(
        f"cannot synthesize {design!r}: pass an Amaranth wiring.Component, a .v/.sv file path, "
        "or Verilog source text"
    )


def _run(tool: str, args: list[str], build: Path, log: str, what: str, timeout_s: float):
    try:
        return run_tool(tool, args, build, log, timeout_s=timeout_s)
    except subprocess.CalledProcessError:
        text = (build / log).read_text(errors="replace") if (build / log).exists() else ""
        err = pnr.first_error(text) or log_tail(build / log, 3).replace("\n", " | ")
        raise BitfabError(f"{tool} failed on {what}: {err}") from None


def synthesize(
    design: Design,
    target: str | Target,
    out_dir: str | os.PathLike,
    *,
    clock_mhz: float | None = None,
    top: str = "top",
    seed: int = 1,
    dsp: bool = False,
    harness: bool | None = None,
    out_pins: int = 4,
    constraints: str | os.PathLike | None = None,
    bitstream: bool = False,
    name: str | None = None,
    console=None,
    timeout_s: float = 3600.0,
) -> Report:
    """Synthesize, place and route ``design`` for ``target``; write everything to ``out_dir``.

    Args:
        design: an Amaranth ``wiring.Component``, a ``.v``/``.sv`` path, or Verilog source text.
        target: catalogue name or :class:`bitfab.boards.Target` (``"up5k"``, ``"ecp5-25f"``,
            ``"icebreaker"``...).
        out_dir: output folder (created or updated atomically).
        clock_mhz: nextpnr clock constraint in MHz (default: the target's default clock).
        top: top module name.
        seed: nextpnr placer seed.
        dsp: allow multipliers on hard DSPs (default off: LUT fabric only, so that array
            costs compare across devices; note ``synth_ecp5`` maps even 2x2 products to DSPs).
        harness: wrap a component in :class:`OutOfContextHarness` (default: True for components,
            False for Verilog). Without it, every port bit becomes a pin.
        out_pins: harness output pins.
        constraints: PCF (iCE40) / LPF (ECP5) pin file for nextpnr (without it nextpnr places
            I/Os anywhere).
        bitstream: also pack a bitstream (``design.bin`` iCE40 / ``design.bit`` ECP5).
        name: design name for reports and errors (default: class name or Verilog file stem).
        console: a :class:`rich.console.Console` for progress, or None for silence.
        timeout_s: per-tool timeout in seconds.

    Raises:
        BitfabError: unknown target, design that does not fit the device (names what overflowed
            and the fix), tool failure (with the tool's first error line).
    """
    tgt = get_target(target)
    clock = float(clock_mhz if clock_mhz is not None else tgt.default_clock_mhz)
    if clock <= 0:
        raise BitfabError(f"clock_mhz must be > 0, got {clock_mhz}")
    use_harness = isinstance(design, wiring.Component) if harness is None else harness
    times: dict[str, float] = {}
    out = Path(out_dir)

    with staged_output(out) as build:
        t0 = time.perf_counter()
        sources, auto_name, h = _prepare_sources(design, build, top, use_harness, out_pins)
        dname = name or auto_name
        times["convert"] = time.perf_counter() - t0
        files = {"yosys_log": "yosys.log", "netlist": "netlist.json", "stat": "yosys_stat.json"}

        script = yosys.yosys_script(
            tgt.family, top, sources, dsp=dsp, netlist="netlist.json", stat="yosys_stat.json"
        )
        (build / "synth.ys").write_text(script)
        with _status(console, f"yosys: synthesizing {dname} for {tgt.name} ({tgt.device})"):
            run = _run(
                "yosys",
                ["-q", "-l", "yosys.log", "synth.ys"],
                build,
                "yosys.stdout",
                f"{dname} (synthesis)",
                timeout_s,
            )
        times["yosys"] = run.seconds
        cells, io = yosys.read_stat(build / "yosys_stat.json", top)
        total = yosys.resources(tgt.family, cells, io)

        harness_res = None
        if h is not None:
            hscript = yosys.yosys_script(
                tgt.family,
                top,
                sources,
                dsp=dsp,
                netlist=None,
                stat="harness_stat.json",
                blackbox=f"{top}.{DUT_NAME}",
            )
            (build / "harness.ys").write_text(hscript)
            with _status(console, f"yosys: measuring the out-of-context harness of {dname}"):
                run = _run(
                    "yosys",
                    ["-q", "-l", "yosys_harness.log", "harness.ys"],
                    build,
                    "yosys_harness.stdout",
                    f"{dname} (harness)",
                    timeout_s,
                )
            times["yosys_harness"] = run.seconds
            hcells, hio = yosys.read_stat(build / "harness_stat.json", top)
            harness_res = yosys.resources(tgt.family, hcells, hio)
            files["harness_log"] = "yosys_harness.log"
            files["harness_stat"] = "harness_stat.json"
        design_only = total.minus(harness_res) if harness_res else total

        err = fit_error(dname, tgt, total)
        if err is not None:
            raise err

        pnr_args = pnr.nextpnr_args(
            tgt,
            "netlist.json",
            "nextpnr_report.json",
            clock_mhz=clock,
            seed=seed,
            packed=("design.asc" if tgt.family == "ice40" else "design.config")
            if bitstream
            else None,
        )
        if constraints is not None:
            cpath = Path(constraints)
            if not cpath.is_file():
                raise BitfabError(f"constraint file {cpath} does not exist; check the path")
            shutil.copyfile(cpath, build / ("pins" + cpath.suffix))
            pnr_args += ["--pcf" if tgt.family == "ice40" else "--lpf", "pins" + cpath.suffix]
        with _status(
            console, f"nextpnr: placing and routing {dname} on {tgt.name} at {clock:g} MHz"
        ):
            try:
                run = run_tool(
                    f"nextpnr-{tgt.family}",
                    ["-q", "--log", "nextpnr.log", *pnr_args],
                    build,
                    "nextpnr.stdout",
                    timeout_s=timeout_s,
                )
            except subprocess.CalledProcessError:
                text = (
                    (build / "nextpnr.log").read_text(errors="replace")
                    if (build / "nextpnr.log").exists()
                    else ""
                )
                msg = pnr.first_error(text) or log_tail(build / "nextpnr.stdout", 3)
                what = pnr.overflow_from_error(msg or "")
                if what:
                    raise BitfabError(
                        f"{dname} does not fit {tgt.name} ({tgt.device}): nextpnr ran out of "
                        f"{what} ({msg}); fold it smaller (fewer PE/SIMD, lower precision) or "
                        f"pick a bigger device"
                    ) from None
                raise BitfabError(f"nextpnr failed on {dname} for {tgt.name}: {msg}") from None
        times["nextpnr"] = run.seconds
        res = pnr.read_report(build / "nextpnr_report.json", tgt.family)
        files.update(nextpnr_log="nextpnr.log", nextpnr_report="nextpnr_report.json")

        tools = {
            "yosys": tool_version("yosys"),
            f"nextpnr-{tgt.family}": tool_version(f"nextpnr-{tgt.family}"),
        }
        if bitstream:
            if tgt.family == "ice40":
                pack, args, bit = "icepack", ["design.asc", "design.bin"], "design.bin"
            else:
                pack = "ecppack"
                args, bit = ["--input", "design.config", "--bit", "design.bit"], "design.bit"
            with _status(console, f"{pack}: packing the bitstream"):
                run = _run(pack, args, build, "pack.log", f"{dname} (bitstream)", timeout_s)
            times["pack"] = run.seconds
            files["bitstream"] = bit

        for stray in ("yosys.stdout", "yosys_harness.stdout", "nextpnr.stdout"):
            p = build / stray
            if p.exists() and p.stat().st_size == 0:
                p.unlink()
        report = Report(
            design=dname,
            target=tgt.name,
            family=tgt.family,
            device=tgt.device,
            package=tgt.package,
            clock_mhz=clock,
            seed=seed,
            dsp=dsp,
            total=total,
            harness=harness_res,
            design_only=design_only,
            fmax_mhz=res.fmax_mhz,
            utilization=res.utilization,
            critical_path=res.critical_path,
            times_s={k: round(v, 2) for k, v in times.items()},
            tools=tools,
            files={**files, "report": "report.json"},
            out_dir=str(out),
        )
        report.write_json(build / "report.json")
    return report
