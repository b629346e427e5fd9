"""StreamingDataWidthConverter (FINN DWC): element order kept, general width ratios."""

import numpy as np
import pytest

from bitfab.hw import packing
from bitfab.hw.layers.width_converter import StreamingDataWidthConverter
from tests.hw.layers.cases import Case, make_case, run_case

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

# (element kind, bits, elements per input word, elements per output word)
SHAPES = [
    ("unsigned", 4, 3, 2),
    ("signed", 2, 2, 6),
    ("signed", 4, 4, 1),
    ("unsigned", 1, 8, 8),
    ("bipolar", 1, 5, 3),
    ("signed", 8, 2, 3),
    ("signed", 20, 1, 3),
    ("unsigned", 3, 6, 4),
]


@pytest.mark.parametrize("kind, bits, ein, eout", SHAPES)
def test_cases_with_backpressure(kind, bits, ein, eout):
    n = int(np.lcm(ein, eout)) * 3
    p = dict(
        inWidth=ein * bits, outWidth=eout * bits, data_kind=kind, data_bits=bits, inShape=[1, n]
    )
    case = Case.from_json(
        make_case("StreamingDataWidthConverter", p, np.random.default_rng(ein * 7 + eout)).to_json()
    )
    run = run_case(case, seed=ein, gap=0.3, stall=0.3)
    assert run.outputs == case.expected
    # independent check of the element order: unpacking both sides gives the same sequence
    got = [v for w in run.outputs["o"] for v in packing.unpack(w, bits, eout, kind)]
    sent = [v for w in case.inputs["i"] for v in packing.unpack(w, bits, ein, kind)]
    assert got == sent


@pytest.mark.parametrize("ein, eout", [(4, 1), (1, 4), (3, 2)])
def test_full_rate_cycles(ein, eout):
    p = dict(inWidth=ein * 4, outWidth=eout * 4, data_kind="unsigned", data_bits=4, inShape=[1, 24])
    case = make_case("StreamingDataWidthConverter", p, np.random.default_rng(0))
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    dut = case.build()
    assert dut.cycles_per_image() == max(24 // ein, 24 // eout)
    assert run.cycles <= dut.cycles_per_image() * 4 // 3 + 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(inWidth=6), "inWidth"),
        (dict(outWidth=0), "outWidth"),
        (dict(inShape=[1, 3]), "inShape"),
        (dict(data_bits=65), "data_bits"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    base = dict(inWidth=8, outWidth=12, data_kind="unsigned", data_bits=4, inShape=[1, 6])
    with pytest.raises(ValueError, match=match):
        StreamingDataWidthConverter(**{**base, **kwargs})


def test_finn_node_keeps_the_tensor():
    """FINN's own StreamingDataWidthConverter.execute_node is the identity on the tensor; the
    hardware keeps the element sequence (checked above), so both agree."""
    from tests.hw.layers.finn_exec import finn_execute

    x = np.random.default_rng(2).integers(0, 16, size=(1, 12))
    attrs = dict(inShape=[1, 12], outShape=[1, 12], inWidth=12, outWidth=8, dataType="UINT4")
    y = finn_execute(
        "StreamingDataWidthConverter",
        attrs,
        x,
        (1, 12),
        in_dtype="UINT4",
    )
    case = make_case(
        "StreamingDataWidthConverter",
        dict(inWidth=12, outWidth=8, data_kind="unsigned", data_bits=4, inShape=[1, 12]),
        np.random.default_rng(2),
    )
    run = run_case(case, dut=StreamingDataWidthConverter.from_finn(attrs))
    got = [v for w in run.outputs["o"] for v in packing.unpack(w, 4, 2, "unsigned")]
    assert got == x.reshape(-1).tolist() == y.reshape(-1).astype(int).tolist()
