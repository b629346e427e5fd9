"""Thresholding cases: qonnx ``multithreshold`` in numpy and the case maker.

:func:`ref_multithreshold` is written from FINN's documented semantics, independently of
``bitfab.hw.layers.thresholding``; the MVAU's activation reuses it (:mod:`.mvau_cases`).
"""

from __future__ import annotations

import numpy as np

from tests.hw.arrays.pe_cases import rand_values, value_range
from tests.hw.layers.cases import Case, to_list, words_of


def ref_multithreshold(x: np.ndarray, thr: np.ndarray, act_val: int) -> np.ndarray:
    """qonnx multithreshold, channels last: count of thresholds ``t`` with ``x >= t``, + bias.

    ``x``: [..., C]; ``thr``: [C or 1, steps] (one row = shared by all channels).
    """
    x = np.asarray(x, dtype=np.int64)
    thr = np.asarray(thr, dtype=np.int64)
    if thr.shape[0] == 1:
        thr = np.broadcast_to(thr, (x.shape[-1], thr.shape[1]))
    counts = np.zeros(x.shape, dtype=np.int64)
    for s in range(thr.shape[1]):
        counts += x >= thr[:, s]
    return counts + act_val


def sorted_thresholds(rng, channels, steps, lo, hi):
    """Random thresholds in ``[lo, hi]``, ascending per channel (row)."""
    thr = rng.integers(lo, hi + 1, size=(channels, steps))
    return np.sort(thr, axis=1)


def case_thresholding(p: dict, rng: np.random.Generator) -> Case:
    """p: NumChannels, PE, input_kind, input_bits, numSteps, [shared], [ActVal],
    [output_kind], [numInputVectors]."""
    c, pe = p["NumChannels"], p["PE"]
    ik, ib = p["input_kind"], p["input_bits"]
    steps = p["numSteps"]
    vecs = p.get("numInputVectors", [1])
    n = int(np.prod(vecs))
    lo, hi = value_range(ik, ib)
    thr = sorted_thresholds(rng, 1 if p.get("shared") else c, steps, lo - 1, hi + 1)
    ok = p.get("output_kind", "unsigned")
    act = p.get("ActVal", 0)
    ob = 1 if ok == "bipolar" else p.get("output_bits", max(1, (steps + max(act, 0)).bit_length()))
    if ok == "signed":
        ob = p.get("output_bits", max((steps + act).bit_length(), (-act).bit_length()) + 1)
    x = rand_values(rng, ik, ib, (n, c))
    y = ref_multithreshold(x, thr, act)
    if ok == "bipolar":
        y = 2 * y - 1
    params = dict(
        NumChannels=c,
        PE=pe,
        thresholds=to_list(thr),
        input_kind=ik,
        input_bits=ib,
        output_kind=ok,
        output_bits=ob,
        ActVal=act,
        numInputVectors=list(vecs),
    )
    return Case(
        "Thresholding",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, pe, ob, ok)},
    )
