"""Fit an accelerator to a board: the estimate of what the board build will use, and the
folding that fits.

The **estimate on a board** (:func:`estimate_on_board`) is the one recipe build, mixed precision
and explore share: the accelerator's LUT estimate (:mod:`bitfab.dataflow.cost`, per unit), its
cycles per image, the block RAMs of its memories inside the host link (what the board top holds)
mapped by Yosys's rule (:func:`bram_blocks`), the memory Yosys puts in logic instead
(``soft_memory``) and the hard multipliers the board build infers (:func:`dsp_blocks`).

The **fit** (docs/fit.md): the design's logic cells are modelled as ``a + b x`` the
accelerator's LUT estimate plus soft memory, fitted per family on measured builds
(:data:`CALIBRATION`), and must stay within ``margin x PLACEABLE x`` the board's LUTs; block
RAMs and DSPs are counted and may not exceed the board's. :func:`fit_plan` takes the fastest of
a ladder of candidate foldings (PE = SIMD = 1, then half the cycles per image each step) that
fits; if even PE = SIMD = 1 does not fit, :class:`BitfabError` names the resource, the overflow
and a catalogue board that fits.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from bitfab.boards import BOARDS, Target, get_target
from bitfab.errors import BitfabError
from bitfab.hw.elaboratable import unused_ok

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


def fits(target: Target, margin: float, est: dict) -> bool:
    """Modelled cells within the usable cells; block RAMs and DSPs (counted, not estimated:
    no margin) within the board's."""
    return (
        cells_needed(target, est.get("luts_with_memory", est["luts"]))
        <= usable_cells(target, margin)
        and est["bram_blocks"] <= target.bram_blocks
        and est.get("spram_blocks", 0) <= target.spram_blocks
        and est.get("dsp_blocks", 0) <= target.dsps
    )


@functools.cache
def has_host_link(board: str) -> bool:
    """True if the board's amaranth-boards platform has the ``uart`` resource the board top
    (:class:`bitfab.hw.shell.board_top.BoardTop`) needs for its host link."""
    target = get_target(board)
    return target.is_board and ("uart", 0) in target.platform_class()().resources


def board_that_fits(luts: int, memory_bits: int, margin: float, exclude: Target) -> str | None:
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
        unused_ok(part)
        n += dsp_blocks(family, rtlil.convert(part))
    return n


def host_link_memories(acc, family: str) -> list[tuple[str, int, int, bool, int]]:  # noqa: ANN001
    """Every memory of accelerator ``acc`` inside the board top's host link, as the board build
    maps it on ``family``: ``(path, width bits, depth words, read-only, block RAMs)`` (0 blocks:
    soft logic, or LUT RAM on ECP5)."""
    from bitfab.hw.shell.host_link import HostLink

    link = unused_ok(HostLink(acc, divisor=104, timeout=1 << 16))
    return [(p, w, d, rom, bram_blocks(family, w, d, rom)) for p, w, d, rom in memories(link)]


def estimate_on_board(acc, target: Target) -> dict:  # noqa: ANN001 - bitfab Accelerator
    """What the board build of accelerator ``acc`` will use on ``target``: ``luts`` (the
    accelerator's LUT estimate), ``memory_bits``, ``cycles_per_image``, ``bram_blocks`` (its
    memories inside the host link, :func:`host_link_memories`), ``soft_memory`` (memory bits
    Yosys maps to logic: 1 LUT per RAM bit, 1/16 per ROM bit), ``luts_with_memory`` (the sum)
    and ``dsp_blocks`` (:func:`dsp_blocks`). The one estimate recipe of build, mixed and explore.

    When the memory bits exceed what ``target`` could hold at all (every block RAM plus 16 ROM
    bits per LUT), the block count is the lower bound ``memory bits / bits per block`` and the
    (slow, for big models) elaboration is skipped."""
    from bitfab.fpga.memory_plan import spram_used
    from bitfab.hw.accelerator import accelerator_report

    rep = accelerator_report(acc)
    spram_bits = sum(u.weight_width * u.SF * u.NF for u in acc.loaded_units)
    est = {
        "luts": rep["luts"],
        "memory_bits": rep["memory_bits"],
        "cycles_per_image": rep["performance"]["cycles_per_image"],
        "dsp_blocks": 0,
        "spram_blocks": spram_used(acc),
        "weight_stores": {
            ly.name: "spram" for ly in acc.graph.layers if ly.weight_store == "spram"
        },
    }
    if rep["memory_bits"] - spram_bits > target.bram_total_bits + 16 * target.luts:
        blocks = math.ceil(rep["memory_bits"] / target.bram_bits)
        return {**est, "bram_blocks": blocks, "soft_memory": 0, "luts_with_memory": est["luts"]}
    if target.family in DSP_RULE:
        est["dsp_blocks"] = accelerator_dsp_blocks(acc, target.family)
    blocks, soft = 0, 0.0
    for _, w, d, rom, n in host_link_memories(acc, target.family):
        blocks += n
        if not n and not (target.family == "ecp5" and not rom):  # ECP5 RAMs: LUT RAM
            soft += w * d / (16 if rom else 1)
    return {**est, "bram_blocks": blocks, "soft_memory": int(soft),
            "luts_with_memory": est["luts"] + int(soft)}  # fmt: skip


def estimate_model(model, array: str, target: Target, plan: bool = True) -> dict:  # noqa: ANN001 - qonnx ModelWrapper
    """:func:`estimate_on_board` of ``model`` (a folded dataflow graph) compiled in memory with
    PE array ``array``; with ``plan``, weight memories the memory planner moves to SPRAM
    (:func:`bitfab.fpga.memory_plan.plan_weight_stores`) are compiled that way."""
    from bitfab.fpga.memory_plan import plan_weight_stores
    from bitfab.hw.accelerator import Accelerator
    from bitfab.hw.compiler import compile_graph

    acc = unused_ok(Accelerator(compile_graph(model, array, weight_stores={})))
    est = estimate_on_board(acc, target)
    if plan and est["bram_blocks"] > target.bram_blocks and target.spram_blocks:
        stores = plan_weight_stores(acc, target)
        if stores:
            acc = unused_ok(Accelerator(compile_graph(model, array, weight_stores=stores)))
            est = estimate_on_board(acc, target)
    return est


def board_fit_error(
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
    if est.get("spram_blocks", 0) > target.spram_blocks:
        over.append(
            f"SPRAM: weights need {est['spram_blocks']} blocks, {target.spram_blocks} available"
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

    Every candidate is compiled in memory and checked (:func:`fits`): modelled logic cells,
    block RAMs and DSPs as the board build would map them. Candidates: PE = SIMD = 1 first (if
    even that overflows, :class:`BitfabError` says what and names a board that fits), then the
    cheapest foldings (FINN-style, ``--target-cycles``) for half, a quarter... of its cycles
    per image; the fastest that fits is taken. The search stops after two candidates in a row
    that do not fit (block RAM is not monotonic in the folding: a wider weight memory can map
    better), or at one cycle per image. ``folding`` (``{"LAYER": {"PE": p, "SIMD": s}}``, as
    ``bitfab dataflow --folding``) skips the search: that folding, checked the same way.
    """
    from bitfab.dataflow.build import checkable, choose_plan
    from bitfab.dataflow.convert import to_dataflow
    from bitfab.dataflow.golden import SELF_CHECK_INPUTS, self_check
    from bitfab.dataflow.load import load_qonnx
    from bitfab.dataflow.report import dataflow_report
    from bitfab.dataflow.transforms import ApplyFolding

    qonnx = load_qonnx(model_path)
    base = to_dataflow(qonnx, str(model_path))
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
        est = estimate_model(model, array, target)
        ok = fits(target, margin, est)
        cells = cells_needed(target, est["luts_with_memory"])
        tries.append({"candidate": kind, "folding_luts": plan.luts, **est,
                      "cells_modelled": cells, "fits": ok})  # fmt: skip
        return plan, desc, model, est, ok

    if folding is not None:
        best = attempt("given", *choose_plan(base, folding=folding))
        if not best[4]:
            if best[3] is None:
                best = (*best[:2], None, estimate_model(base.transform(ApplyFolding(best[0].fold)),
                                                  array, target), False)  # fmt: skip
            raise board_fit_error(target, margin, best[3], None, given=True)
    else:
        best = attempt("minimal", *choose_plan(base))  # PE = SIMD = 1: must fit, or say why
        if not best[4]:
            est = best[3] or estimate_model(
                base.transform(ApplyFolding(best[0].fold)), array, target
            )
            bigger = board_that_fits(est["luts"], est["memory_bits"], margin, target)
            raise board_fit_error(target, margin, est, bigger)
        cycles, misses, seen = best[3]["cycles_per_image"], 0, {fold_key(best[0].fold)}
        while cycles > 1 and misses < 2:
            cycles = max(1, cycles // 2)
            try:
                plan, _ = choose_plan(base, target_cycles=cycles)
            except BitfabError:
                break  # no folding reaches this many cycles per image
            fold = bram_aware_folding(base, plan, target.family)
            if fold_key(fold) in seen:
                continue
            seen.add(fold_key(fold))
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
    checked = None
    if checkable(qonnx, SELF_CHECK_INPUTS):  # the model's output, not a silent constant
        checked = self_check(qonnx, model, str(model_path))
    report = dataflow_report(model, plan, str(model_path), how, checked)
    stores = est.get("weight_stores") or {}
    if stores:  # the memory plan travels with the graph: bitfab compile builds it
        from bitfab.hw.compiler import MEMORY_PLAN_META

        model.set_metadata_prop(MEMORY_PLAN_META, json.dumps(stores))
        report["memory_plan"] = stores
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
        "spram_blocks_estimate": est.get("spram_blocks", 0),
        "weight_stores": stores,
        "dsp_blocks_estimate": est["dsp_blocks"],
        "cycles_per_image_estimate": est["cycles_per_image"],
        "folding": {k: list(v) for k, v in plan.fold.items()},
        "tries": tries,
    }
    (out / "fit.json").write_text(json.dumps(fit, indent=2) + "\n")
    return fit


def fold_key(fold: dict) -> tuple:
    return tuple(sorted((k, tuple(v)) for k, v in fold.items()))


def mvau_memory_cost(
    family: str, pe: int, simd: int, mw: int, mh: int, wbits: int, abits: int
) -> tuple[int, float]:
    """``(block RAMs, Yosys cost)`` of the memories an MVAU at ``pe`` x ``simd`` brings: one
    weight ROM per PE row (``simd x wbits`` bits wide, ``MH/PE x MW/SIMD`` words deep,
    :class:`bitfab.hw.layers.mvau.MVAU`), its input replay buffer (``MW/SIMD`` words of ``simd x
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
