"""The nextpnr step: command line for iCE40/ECP5 and the post-route figures from ``--report``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from bitfab.boards import Target

#: nextpnr utilization keys -> bitfab resource names, per family.
UTILIZATION_KEYS = {
    "ice40": {
        "ICESTORM_LC": "logic_cells",
        "ICESTORM_RAM": "bram",
        "ICESTORM_SPRAM": "spram",
        "ICESTORM_DSP": "dsp",
        "SB_IO": "io",
    },
    "ecp5": {
        "TRELLIS_COMB": "logic_cells",
        "TRELLIS_FF": "ff",
        "DP16KD": "bram",
        "MULT18X18D": "dsp",
        "TRELLIS_IO": "io",
    },
}


@dataclass(frozen=True)
class PnrResult:
    """Post-route figures.

    Attributes:
        fmax_mhz: lowest achieved Fmax over all clocks in MHz (nextpnr's static timing analysis
            of the routed design, worst-case corner), ``None`` if the design has no clock.
        fmax_by_clock: achieved Fmax per clock net in MHz.
        utilization: resource -> ``{"used", "available", "percent"}`` (``logic_cells`` is
            iCE40 ``ICESTORM_LC`` / ECP5 ``TRELLIS_COMB``).
        critical_path: the slowest register-to-register path: ``from`` / ``to`` cell names,
            ``cells`` (LUT and carry cells on it), ``logic_ns`` and ``routing_ns`` (delays in
            ns); ``None`` without a clock.
    """

    fmax_mhz: float | None
    fmax_by_clock: dict[str, float]
    utilization: dict[str, dict[str, float]]
    critical_path: dict | None = None


def nextpnr_args(
    target: Target,
    netlist: str,
    report: str,
    *,
    clock_mhz: float,
    seed: int,
    constraints: str | None = None,
    packed: str | None = None,
) -> list[str]:
    """Arguments for ``nextpnr-<family>`` (file names relative to the build folder).

    ``packed`` asks for the routed design as text for the bitstream packer (iCE40 ``.asc``,
    ECP5 ``.config``); ``constraints`` is a PCF (iCE40) or LPF (ECP5) pin file.
    """
    args = [
        *target.nextpnr_flags,
        "--json",
        netlist,
        "--freq",
        f"{clock_mhz:g}",
        "--seed",
        str(seed),
        "--report",
        report,
        "--timing-allow-fail",
    ]
    if constraints:
        args += ["--pcf" if target.family == "ice40" else "--lpf", constraints]
    if packed:
        args += ["--asc" if target.family == "ice40" else "--textcfg", packed]
    return args


def read_report(path: Path, family: str) -> PnrResult:
    """Parse nextpnr's ``--report`` JSON."""
    data = json.loads(Path(path).read_text())
    fmax = {clk: float(v["achieved"]) for clk, v in data.get("fmax", {}).items()}
    util = {}
    for key, name in UTILIZATION_KEYS[family].items():
        u = data.get("utilization", {}).get(key)
        if u is None:
            continue
        used, avail = int(u["used"]), int(u["available"])
        util[name] = {
            "used": used,
            "available": avail,
            "percent": round(100.0 * used / avail, 2) if avail else 0.0,
        }
    return PnrResult(
        fmax_mhz=min(fmax.values()) if fmax else None,
        fmax_by_clock=fmax,
        utilization=util,
        critical_path=_critical_path(data.get("critical_paths", [])),
    )


def _critical_path(paths: list[dict]) -> dict | None:
    """Summary of the longest of nextpnr's per-clock critical paths."""
    best, best_ns = None, -1.0
    for p in paths:
        segs = p.get("path", [])
        total = sum(float(s.get("delay", 0.0)) for s in segs)
        if segs and total > best_ns:
            best, best_ns = segs, total
    if best is None:
        return None
    logic = [s for s in best if s.get("type") == "logic"]
    return {
        "from": best[0]["from"]["cell"],
        "to": best[-1]["to"]["cell"],
        "cells": len(logic),
        "logic_ns": round(sum(float(s["delay"]) for s in logic), 3),
        "routing_ns": round(sum(float(s["delay"]) for s in best if s.get("type") == "routing"), 3),
        "total_ns": round(best_ns, 3),
    }


_ERROR = re.compile(r"^ERROR:\s*(.*)$", re.MULTILINE)


def first_error(log_text: str) -> str | None:
    """The first ``ERROR:`` line of a nextpnr/Yosys log, without the prefix."""
    m = _ERROR.search(log_text)
    return m.group(1).strip() if m else None


def overflow_from_error(message: str) -> str | None:
    """Name the overflowed resource from a nextpnr placement error, if it is one."""
    low = message.lower()
    if "unable to find a placement location" in low or "no bels remaining" in low:
        if "sb_io" in low or "trellis_io" in low or "$tinoutpad" in low or "_io" in low:
            return "I/O pins"
        return "placement sites (logic cells, RAM or DSP)"
    if "unable to find legal placement" in low or "utilisation limit" in low:
        return "legal placement sites (logic cells; packing limits such as one clock enable / reset per iCE40 logic block count too)"
    if "only has" in low or "too many" in low:
        return message
    return None
