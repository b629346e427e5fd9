"""LabelSelect (FINN LabelSelect, K=1) against numpy and ONNX TopK (what FINN executes)."""

import numpy as np
import pytest

from bitfab.hw.layers.label_select import LabelSelect, default_output_bits
from tests.hw.layers.cases import Case, make_case, run_case
from tests.hw.layers.finn_exec import onnx_execute
from tests.hw.layers.label_select_cases import ref_label_select

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

KINDS_BITS = [
    ("signed", 16),
    ("unsigned", 2),
    ("signed", 4),
    ("unsigned", 8),
    ("bipolar", 1),
    ("signed", 24),
]


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_with_backpressure(seed):
    r = np.random.default_rng(seed)
    kind, bits = KINDS_BITS[seed % len(KINDS_BITS)]
    pe = int(r.choice([1, 2, 5]))
    p = dict(
        Labels=pe * int(r.integers(1, 4)),
        PE=pe,
        input_kind=kind,
        input_bits=bits,
        numInputVectors=[int(r.integers(2, 5))],
        ties=bool(seed % 2),
    )
    case = Case.from_json(make_case("LabelSelect", p, r).to_json())
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


def test_full_rate_cycles():
    p = dict(Labels=10, PE=2, input_kind="signed", input_bits=12, numInputVectors=[4])
    case = make_case("LabelSelect", p, np.random.default_rng(0))
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    exp = case.build().cycles_per_image()
    assert exp == 5 * 4
    assert run.cycles <= exp + 2


def test_reference_matches_onnx_topk_with_ties():
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 2, size=(20, 10))  # many ties
    got = onnx_execute(
        "TopK",
        dict(axis=-1),
        x.astype(np.float32),
        (20, 1),
        params=((np.array([1]), None, np.int64),),
        aux_outputs=1,
        out_int64=True,
    )
    np.testing.assert_array_equal(got.reshape(-1), ref_label_select(x))


def test_default_output_width_is_finns():
    # FINN: smallest UINT holding Labels-1, rounded up to a multiple of 8 bits
    assert default_output_bits(10) == 8
    assert default_output_bits(1000) == 16


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(PE=3), "PE"),
        (dict(K=2), "K"),
        (dict(output_bits=3), "output_bits"),
        (dict(input_bits=40), "input_bits"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    base = dict(Labels=10, PE=2, input_kind="signed", input_bits=8)
    with pytest.raises(ValueError, match=match):
        LabelSelect(**{**base, **kwargs})


def test_finn_node_matches_hardware():
    """FINN's own LabelSelect.execute_node (ONNX TopK), with ties."""
    from bitfab.hw import packing
    from tests.hw.layers.finn_exec import finn_execute

    p = dict(Labels=10, PE=2, input_kind="signed", input_bits=3, numInputVectors=[1], ties=True)
    case = make_case("LabelSelect", p, np.random.default_rng(21))
    x = np.array([v for wd in case.inputs["i"] for v in packing.unpack(wd, 3, 2, "signed")])
    attrs = dict(Labels=10, PE=2, K=1, inputDataType="INT3", outputDataType="UINT8")
    y = finn_execute(
        "LabelSelect",
        attrs,
        x.reshape(1, 10),
        (1, 1),
        in_dtype="INT3",
    )
    run = run_case(case, dut=LabelSelect.from_finn(attrs))
    assert run.outputs["o"] == [int(y.reshape(-1)[0])]


def test_layer_of_a_finn_tfc_graph():
    """The TopK -> LabelSelect of a FINN-converted TFC, against FINN's golden tensors."""
    from tests.hw.layers.graph_layers import run_graph_layer

    got, expected = run_graph_layer("tfc_w1a1", "LabelSelect_0")
    assert got == expected
