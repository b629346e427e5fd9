"""FMPadding cases: ``np.pad`` with zeros and the case maker (independent of
``bitfab.hw.layers.fmpadding``).
"""

from __future__ import annotations

import numpy as np

from tests.hw.arrays.pe_cases import rand_values
from tests.hw.layers.cases import Case, words_of


def ref_fmpadding(img: np.ndarray, padding) -> np.ndarray:
    """FINN FMPadding on [N, H, W, C]: zeros, ``padding = [top, left, bottom, right]``."""
    t, left, b, r = padding
    return np.pad(img, ((0, 0), (t, b), (left, r), (0, 0)), mode="constant")


def case_fmpadding(p: dict, rng) -> Case:
    """p: ImgDim, Padding, NumChannels, SIMD, input_kind, input_bits, [numInputVectors]."""
    h, w = p["ImgDim"]
    c, simd = p["NumChannels"], p["SIMD"]
    ik, ib = p["input_kind"], p["input_bits"]
    n = p.get("numInputVectors", 1)
    img = rand_values(rng, ik, ib, (n, h, w, c))
    out = ref_fmpadding(img, p["Padding"])
    params = dict(
        ImgDim=[h, w],
        Padding=list(p["Padding"]),
        NumChannels=c,
        SIMD=simd,
        input_kind=ik,
        input_bits=ib,
        numInputVectors=n,
    )
    return Case(
        "FMPadding",
        params,
        inputs={"i": words_of(img, simd, ib, ik)},
        expected={"o": words_of(out, simd, ib, ik)},
    )
