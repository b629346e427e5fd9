"""Verilator vs Icarus, side by side in one run, on one PE array (same Verilog, same cases).

The command is ``bench/sim_backends.py`` (``--help``). For each backend and each harness (``cocotb``:
Python drives the streams, :mod:`bitfab.sim.cocotb_case_tb`; ``fast``: the free-running Verilog
harness, :func:`bitfab.sim.rtl_runner.run_fast`): build time (0 on a cache hit), simulated
clock cycles and cycles per second inside the cocotb test, for a case without gaps or stalls
and a case with random valid gaps and ready stalls. Every run must agree with the numpy
reference (the command fails otherwise).
"""

from __future__ import annotations

import platform

import numpy as np

from bitfab.hw import packing
from bitfab.sim import rtl_runner
from bitfab.sim.verilog import component_to_verilog


def pe_array_cases(
    array,
    n_dots: int,
    folds: int,
    seed: int,
    stalls: list[tuple[float, float]],
    skip_idle: bool = True,
) -> list[dict]:
    """Random dot products for a PE ``array`` instance, numpy reference included.

    Lane ``(p, s)`` of the weight field is ``p*simd + s``; the word is ``w | a << |w| | last <<
    (|w| + |a|)`` (docs/architecture.md, PE array contract); outputs wrap to ``acc_width``.
    """
    rng = np.random.default_rng(seed)
    pe, simd, wb, ab = array.pe, array.simd, array.wbits, array.abits
    wk, ak, acc = array.wkind, array.akind, array.acc_width

    def values(kind, bits, shape):
        if kind == "bipolar":
            return rng.choice(np.array([-1, 1]), size=shape)
        lo, hi = (
            (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
            if kind == "signed"
            else (0, (1 << bits) - 1)
        )
        return rng.integers(lo, hi + 1, size=shape)

    words, expected = [], []
    for _ in range(n_dots):
        W = values(wk, wb, (folds, pe, simd))
        A = values(ak, ab, (folds, simd))
        for f in range(folds):
            w = packing.pack(W[f].reshape(-1).tolist(), wb, wk)
            a = packing.pack(A[f].tolist(), ab, ak)
            last = int(f == folds - 1)
            words.append(w | a << (pe * simd * wb) | last << (pe * simd * wb + simd * ab))
        dot = np.einsum("fps,fs->p", W.astype(np.int64), A.astype(np.int64))
        wrapped = [((int(v) + (1 << (acc - 1))) % (1 << acc)) - (1 << (acc - 1)) for v in dot]
        expected.append(packing.pack(wrapped, acc, "signed"))
    setup = {}
    if "wbits_rt" in array.signature.members:
        setup = {"wbits_rt": wb, "abits_rt": ab}
    return [
        rtl_runner.case_dict(
            {"setup": setup, "inputs": {"i": words}, "expected": {"o": expected}},
            name=f"gap{g}-stall{s}",
            gap=g,
            stall=s,
            seed=seed + j,
            skip_idle=skip_idle,
        )
        for j, (g, s) in enumerate(stalls)
    ]


def compare(
    array: str = "parallel",
    pe: int = 4,
    simd: int = 4,
    wbits: int = 4,
    abits: int = 4,
    kinds: tuple[str, str] = ("signed", "unsigned"),
    dots: int = 2000,
    folds: int = 4,
    backends: tuple[str, ...] = ("verilator", "icarus"),
    seed: int = 0,
    skip_idle: bool = True,
) -> dict:
    """Run the same cases on every backend; return the measured figures (JSON-ready)."""
    from bitfab.hw.arrays import array_class

    make = array_class(array)
    cls = make.__name__
    comp = make(pe, simd, wbits, abits, kinds[0], kinds[1])
    cases = pe_array_cases(comp, dots, folds, seed, [(0.0, 0.0), (0.3, 0.3)], skip_idle)
    design = component_to_verilog(comp)
    out = {
        "design": f"{cls}(pe={pe}, simd={simd}, wbits={wbits}, abits={abits}, "
        f"wkind={kinds[0]}, akind={kinds[1]})",
        "words_per_case": len(cases[0]["inputs"]["i"]),
        "skip_idle": skip_idle,
        "machine": f"{platform.machine()} {platform.system()}, python {platform.python_version()}",
        "results": [],
    }
    for backend in backends:
        res = rtl_runner.run_cases(design, cases, backend)
        if not res.passed:
            raise SystemExit(f"{backend}: {res.message}")
        runs = [("cocotb", c, res) for c in res.cases]
        for case in cases:  # the same cases in the free-running Verilog harness
            fres = rtl_runner.run_fast(design, case, backend)
            if not fres.passed:
                raise SystemExit(f"{backend} (fast harness): {fres.message}")
            if not fres.cases:
                raise SystemExit(f"{backend} (fast harness): no case report")
            runs.append(("fast", fres.cases[0], fres))
        for mode, c, r in runs:
            out["results"].append(
                {
                    "backend": backend,
                    "harness": mode,
                    "case": c["name"],
                    "cycles": c["cycles"],
                    "tb_s": round(c["wall_s"], 3),
                    "cycles_per_s": round(c["cycles"] / c["wall_s"]),
                    "build_s": round(r.build_s, 1),
                    "built": r.built,
                    "sim_process_s": round(r.sim_s, 2),
                }
            )
    return out
