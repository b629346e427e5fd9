"""StreamingDataWidthConverter cases: the same element sequence repacked into words of the
output width (independent of ``bitfab.hw.layers.width_converter``).
"""

from __future__ import annotations

from tests.hw.arrays.pe_cases import rand_values
from tests.hw.layers.cases import Case, words_of


def case_width_converter(p: dict, rng) -> Case:
    """p: inWidth, outWidth, data_kind, data_bits, inShape."""
    k, b = p["data_kind"], p["data_bits"]
    shape = list(p["inShape"])
    x = rand_values(rng, k, b, shape).reshape(-1)
    params = dict(
        inWidth=p["inWidth"], outWidth=p["outWidth"], data_kind=k, data_bits=b, inShape=shape
    )
    return Case(
        "StreamingDataWidthConverter",
        params,
        inputs={"i": words_of(x, p["inWidth"] // b, b, k)},
        expected={"o": words_of(x, p["outWidth"] // b, b, k)},
    )
