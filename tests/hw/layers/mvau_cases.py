"""MVAU cases: the accumulator (``xnorpopcountmatmul`` / matmul) in numpy and the case maker.

:func:`ref_mvau_acc` is written from FINN's documented semantics, independently of
``bitfab.hw.layers.mvau``; the activation is :func:`.thresholding_cases.ref_multithreshold`.
"""

from __future__ import annotations

import numpy as np

from tests.hw.arrays.pe_cases import rand_values, value_range
from tests.hw.layers.cases import Case, to_list, words_of
from tests.hw.layers.thresholding_cases import ref_multithreshold, sorted_thresholds


def ref_mvau_acc(x: np.ndarray, w: np.ndarray, popcount: bool) -> np.ndarray:
    """MVAU accumulator: ``x`` [N, MW] @ ``w`` [MW, MH]; in XNOR mode the number of positions
    where the activation bit equals the weight bit (bits as FINN's BINARY: 1 = +1)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if popcount:
        xb = x > 0  # works for both BINARY (0/1) and BIPOLAR (-1/+1) values
        wb = w > 0
        return (xb[:, :, None] == wb[None, :, :]).sum(axis=1)
    return x @ w


def case_mvau(p: dict, rng) -> Case:
    """p: MW, MH, PE, SIMD, input_kind, input_bits, weight_kind, weight_bits,
    [binaryXnorMode], [noActivation], [numSteps], [ActVal], [output_kind], [output_bits],
    [numInputVectors], [array], [array_options]."""
    mw, mh, pe, simd = p["MW"], p["MH"], p["PE"], p["SIMD"]
    ik, ib, wk, wb = p["input_kind"], p["input_bits"], p["weight_kind"], p["weight_bits"]
    xnor = int(p.get("binaryXnorMode", 0))
    noact = int(p.get("noActivation", 0))
    vecs = p.get("numInputVectors", [1])
    n = int(np.prod(vecs))
    if xnor:  # FINN's BINARY values 0/1, read as bipolar
        x = rng.integers(0, 2, size=(n, mw))
        w = rng.integers(0, 2, size=(mw, mh))
    else:
        x = rand_values(rng, ik, ib, (n, mw))
        w = rand_values(rng, wk, wb, (mw, mh))
    popcount = bool(xnor) or (ik == "bipolar" and wk == "bipolar")
    acc = ref_mvau_acc(x, w, popcount)
    if popcount:
        alo, ahi = 0, mw
    else:
        lo_x, hi_x = value_range(ik, ib)
        lo_w, hi_w = value_range(wk, wb)
        prods = [a * b for a in (lo_x, hi_x) for b in (lo_w, hi_w)]
        alo, ahi = mw * min(min(prods), 0), mw * max(max(prods), 0)
    params = dict(
        MW=mw,
        MH=mh,
        PE=pe,
        SIMD=simd,
        weights=to_list(w),
        input_kind=ik,
        input_bits=ib,
        weight_kind=wk,
        weight_bits=wb,
        binaryXnorMode=xnor,
        noActivation=noact,
        numInputVectors=list(vecs),
        array=p.get("array", "parallel"),
        array_options=dict(p.get("array_options", {})),
    )
    in_kind = "unsigned" if xnor else ik
    if noact:
        ok = "unsigned" if alo >= 0 else "signed"
        ob = p.get("output_bits")
        if ob is None:
            ob = (
                max(1, ahi.bit_length())
                if ok == "unsigned"
                else (max(ahi.bit_length(), (-alo - 1).bit_length()) + 1)
            )
        y = acc
    else:
        steps = p.get("numSteps", 3)
        ok = p.get("output_kind", "unsigned")
        act = p.get("ActVal", 0)
        thr = sorted_thresholds(rng, mh, steps, alo - 1, ahi + 1)
        if popcount:
            thr = np.clip(thr, 0, None)  # FINN asserts non-negative thresholds in XNOR mode
        y = ref_multithreshold(acc, thr, act)
        if ok == "bipolar":
            ob = 1
            y = 2 * y - 1
        else:
            ob = p.get("output_bits", max(1, (steps + max(act, 0)).bit_length()) + (ok == "signed"))
        params.update(thresholds=to_list(thr), ActVal=act)
    params.update(output_kind=ok, output_bits=ob)
    return Case(
        "MVAU",
        params,
        inputs={"i": words_of(x, simd, ib, in_kind)},
        expected={"o": words_of(y, pe, ob, ok)},
    )
