"""Pool (FINN ``Pool``, MaxPool) cases: max over the depthwise window stream in numpy and the
case maker (independent of ``bitfab.hw.layers.pool``).
"""

from __future__ import annotations

import numpy as np

from tests.hw.arrays.pe_cases import rand_values
from tests.hw.layers.cases import Case, words_of


def ref_maxpool_stream(x: np.ndarray) -> np.ndarray:
    """Pool(MaxPool) on the depthwise window stream ``x`` [pixels, C/PE, K, PE]: max over K."""
    return np.asarray(x).max(axis=2)


def case_pool(p: dict, rng) -> Case:
    """p: Channels, PE, KernelSize, OutImgDims, input_kind, input_bits, [BatchSize]."""
    c, pe = p["Channels"], p["PE"]
    kh, kw = p["KernelSize"]
    oh, ow = p["OutImgDims"]
    ik, ib = p["input_kind"], p["input_bits"]
    nb = p.get("BatchSize", 1)
    x = rand_values(rng, ik, ib, (nb * oh * ow, c // pe, kh * kw, pe))
    y = ref_maxpool_stream(x)
    params = dict(
        Channels=c,
        PE=pe,
        KernelSize=[kh, kw],
        OutImgDims=[oh, ow],
        input_kind=ik,
        input_bits=ib,
        Function="MaxPool",
        BatchSize=nb,
    )
    return Case(
        "Pool",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, pe, ib, ik)},
    )


def ref_avgpool_stream(x: np.ndarray, ib: int, ob: int) -> np.ndarray:
    """Pool(QuantAvgPool) on the window stream ``x`` [pixels, C/PE, K, PE]: the sum over K,
    floor-shifted right by FINN's ``max(0, bit_length((2**ib - 1) * K) - ob)``."""
    kk = np.asarray(x).shape[2]
    shift = max(0, int((2**ib - 1) * kk).bit_length() - ob)
    return np.right_shift(np.asarray(x, dtype=np.int64).sum(axis=2), shift)


def case_avgpool(p: dict, rng) -> Case:
    """p: as :func:`case_pool` plus output_bits (the output kind is the input's)."""
    c, pe = p["Channels"], p["PE"]
    kh, kw = p["KernelSize"]
    oh, ow = p["OutImgDims"]
    ik, ib, ob = p["input_kind"], p["input_bits"], p["output_bits"]
    nb = p.get("BatchSize", 1)
    x = rand_values(rng, ik, ib, (nb * oh * ow, c // pe, kh * kw, pe))
    y = ref_avgpool_stream(x, ib, ob)
    params = dict(
        Channels=c, PE=pe, KernelSize=[kh, kw], OutImgDims=[oh, ow], input_kind=ik,
        input_bits=ib, output_kind=ik, output_bits=ob, Function="QuantAvgPool", BatchSize=nb,
    )  # fmt: skip
    return Case(
        "Pool",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, pe, ob, ik)},
    )
