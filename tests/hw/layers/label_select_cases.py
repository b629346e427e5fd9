"""LabelSelect cases: ONNX ``TopK`` (K=1, ties to the lowest index) in numpy and the case
maker (independent of ``bitfab.hw.layers.label_select``).
"""

from __future__ import annotations

import numpy as np

from tests.hw.arrays.pe_cases import rand_values, value_range
from tests.hw.layers.cases import Case, words_of


def ref_label_select(x: np.ndarray) -> np.ndarray:
    """TopK K=1 index per row of ``x`` [N, Labels], ties to the lowest index."""
    x = np.asarray(x)
    out = []
    for row in x:
        best = 0
        for j in range(1, len(row)):
            if row[j] > row[best]:
                best = j
        out.append(best)
    return np.array(out, dtype=np.int64)


def case_label_select(p: dict, rng) -> Case:
    """p: Labels, PE, input_kind, input_bits, [numInputVectors], [ties]."""
    labels, pe = p["Labels"], p["PE"]
    ik, ib = p["input_kind"], p["input_bits"]
    vecs = p.get("numInputVectors", [1])
    n = int(np.prod(vecs))
    if p.get("ties"):
        lo, hi = value_range(ik, ib)
        x = rng.integers(lo, min(hi, lo + 2) + 1, size=(n, labels))  # few values: many ties
    else:
        x = rand_values(rng, ik, ib, (n, labels))
    y = ref_label_select(x)
    ob = p.get("output_bits", max(8, -(-max(1, (labels - 1).bit_length()) // 8) * 8))
    params = dict(
        Labels=labels,
        PE=pe,
        K=1,
        input_kind=ik,
        input_bits=ib,
        output_bits=ob,
        numInputVectors=list(vecs),
    )
    return Case(
        "LabelSelect",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, 1, ob, "unsigned")},
    )
