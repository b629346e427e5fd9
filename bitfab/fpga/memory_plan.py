"""The memory planner: where every memory of an accelerator goes on a device.

Every memory of the board design (weight ROMs, threshold tables, input replay buffers, FIFOs,
the host link's buffers) is listed by :func:`memory_table` with its placement on the target's
family: ``spram`` (iCE40 UltraPlus SB_SPRAM256KA, weights only: it cannot be initialised by the
bitstream, so a loader fills it, :mod:`bitfab.hw.shell.flash_loader`), ``bram`` (block RAM as
Yosys maps it, :func:`bitfab.fpga.fit.bram_blocks`), ``lutram`` (ECP5 distributed RAM) or
``logic`` (LUTs and flip-flops), the blocks and the logic it costs.

:func:`plan_weight_stores` decides which MVAU weight memories move to SPRAM: none while the
design's block RAMs fit the device (no loader, no weight image needed); otherwise the weight
memories that free the most block RAMs first (net of their threshold tables, which become
loadable RAMs), each as a grid of 16-bit x 16k-word SPRAMs
(:func:`bitfab.hw.spram.spram_blocks`), while SPRAMs remain, until the block RAMs fit.
The fit (:func:`bitfab.fpga.fit.fit_plan`) compiles each candidate folding with this plan, so
the block-RAM and SPRAM counts it checks are the planner's.
"""

from __future__ import annotations

from bitfab.boards import Target
from bitfab.fpga.fit import bram_blocks, host_link_memories
from bitfab.hw.spram import spram_blocks


def _unit_of(path: str, names: list[str]) -> tuple[str | None, str]:
    """(layer name, memory role) of a memory path ``top.acc.<layer>.<mem>...``."""
    parts = path.split(".")
    for k, p in enumerate(parts):
        if p in names:
            rest = ".".join(parts[k + 1 :])
            role = (
                "weights" if rest.startswith("wmem") else
                "thresholds" if "tmem" in rest else
                "input buffer" if rest.startswith("abuf") else
                "output FIFO" if "ofifo" in rest else rest or "memory"
            )  # fmt: skip
            return p, role
        if p.startswith("fifo_") and p[5:] in names:
            return p, "stream FIFO"
    return None, "host link"


def memory_table(acc, target: Target) -> list[dict]:  # noqa: ANN001 - bitfab Accelerator
    """Every memory of the board design of ``acc`` on ``target``: ``{"unit", "role",
    "width", "depth", "bits", "rom", "place", "blocks", "logic_cells"}``; SPRAM weight stores
    first (from the accelerator's units), then what Yosys maps."""
    rows = []
    for spec, unit in zip(acc.graph.layers, acc.units, strict=True):
        if unit in acc.loaded_units:
            w, d = unit.weight_width, unit.SF * unit.NF
            rows.append({"unit": spec.name, "role": "weights", "width": w, "depth": d,
                         "bits": w * d, "rom": False, "place": "spram",
                         "blocks": spram_blocks(w, d), "logic_cells": 0})  # fmt: skip
    names = [spec.name for spec in acc.graph.layers]
    for path, w, d, rom, n in host_link_memories(acc, target.family):
        unit, role = _unit_of(path, names)
        if n:
            place, cells = "bram", 0
        elif target.family == "ecp5" and not rom:
            place, cells = "lutram", -(-w // 4) * -(-d // 16)
        else:
            place, cells = "logic", int(w * d / (16 if rom else 1))
        rows.append({"unit": unit or "host link", "role": role, "width": w, "depth": d,
                     "bits": w * d, "rom": rom, "place": place, "blocks": n,
                     "logic_cells": cells})  # fmt: skip
    return rows


def plan_weight_stores(acc, target: Target) -> dict[str, str]:  # noqa: ANN001
    """``{MVAU name: "spram"}`` for the weight memories of ``acc`` (compiled with every weight
    memory a ROM) that move to SPRAM on ``target``; empty when block RAM suffices or the
    device has no SPRAM."""
    if not target.spram_blocks:
        return {}
    rows = memory_table(acc, target)
    used = sum(r["blocks"] for r in rows if r["place"] == "bram")
    if used <= target.bram_blocks:
        return {}
    cands = []
    for spec, unit in zip(acc.graph.layers, acc.units, strict=True):
        if spec.op_type != "MVAU":
            continue
        mine = [r for r in rows if r["unit"] == spec.name]
        saved = sum(r["blocks"] for r in mine if r["role"] == "weights")
        # its threshold tables become loadable RAMs (the image carries them too)
        saved -= sum(
            bram_blocks(target.family, r["width"], r["depth"], False) - r["blocks"]
            for r in mine
            if r["role"] == "thresholds"
        )
        cost = spram_blocks(unit.weight_width, unit.SF * unit.NF)
        if saved > 0:
            cands.append((saved, -cost, spec.name, cost))
    free = target.spram_blocks
    plan: dict[str, str] = {}
    for saved, _, name, cost in sorted(cands, reverse=True):
        if used <= target.bram_blocks:
            break
        if cost <= free:
            plan[name] = "spram"
            free -= cost
            used -= saved
    return plan


def spram_used(acc) -> int:  # noqa: ANN001
    """SPRAM blocks the SPRAM weight stores of ``acc`` take."""
    return sum(spram_blocks(u.weight_width, u.SF * u.NF) for u in acc.loaded_units)


def plan_summary(rows: list[dict]) -> dict:
    """Totals of a :func:`memory_table`: blocks per placement and logic cells."""
    out: dict = {"spram_blocks": 0, "bram_blocks": 0, "logic_cells": 0}
    for r in rows:
        if r["place"] == "spram":
            out["spram_blocks"] += r["blocks"]
        elif r["place"] == "bram":
            out["bram_blocks"] += r["blocks"]
        out["logic_cells"] += r["logic_cells"]
    return out
