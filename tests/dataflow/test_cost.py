"""The one cost model (bitfab.dataflow.cost): folding costs layers through it, the model grows with
the hardware it counts, and bad inputs are named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitfab.dataflow import cost
from bitfab.dataflow.folding import HW_OP_TYPES, LayerShape, lut_estimate
from bitfab.errors import BitfabError

FOLDED_OPS = HW_OP_TYPES  # the op types folding costs

shapes = st.fixed_dictionaries(
    {
        "pe": st.integers(1, 64),
        "simd": st.integers(1, 64),
        "in_bits": st.integers(1, 8),
        "weight_bits": st.integers(1, 8),
        "acc_bits": st.integers(1, 32),
        "out_bits": st.integers(1, 8),
        "steps": st.integers(0, 255),
        "xnor": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(FOLDED_OPS), s=shapes, pw=st.booleans(), k=st.integers(1, 5))
def test_folding_costs_layers_with_the_cost_model(op, s, pw, k):
    pw = pw and op == "ConvolutionInputGenerator"
    layer = LayerShape(
        "L",
        op,
        in_bits=s["in_bits"],
        weight_bits=s["weight_bits"],
        acc_bits=s["acc_bits"],
        out_bits=s["out_bits"],
        thres_steps=s["steps"],
        xnor=s["xnor"],
        attrs={"ConvKernelDim": [k, k]},
    )
    c = cost.LayerCost(op, parallel_window=pw, taps=k * k if pw else 1, **s)
    assert lut_estimate(layer, s["pe"], s["simd"], int(pw)) == cost.luts(c)
    # before an array is chosen an MVAU is costed as the bit-parallel baseline
    if op == "MVAU":
        assert cost.luts(c) == cost.luts(cost.LayerCost(op, array="parallel", **s))


@settings(max_examples=200, deadline=None)
@given(
    op=st.sampled_from(cost.COST_OPS),
    arr=st.sampled_from([None, "parallel", "bitserial", "bitfusion"]),
    s=shapes,
    field=st.sampled_from(["pe", "simd", "in_bits", "weight_bits", "acc_bits", "steps"]),
)
def test_more_hardware_never_costs_less(op, arr, s, field):
    base = cost.LayerCost(op, array=arr, in_width=8, out_width=8, **s)
    grown = cost.LayerCost(op, array=arr, in_width=8, out_width=8, **{**s, field: s[field] + 1})
    assert cost.luts(grown) >= cost.luts(base) > 0


@given(s=shapes)
def test_bit_serial_array_does_not_grow_with_the_bit_widths(s):
    """BISMO's point: a bit-serial lane is one AND and one adder bit at any precision."""
    lo = cost.LayerCost("MVAU", array="bitserial", **{**s, "weight_bits": 1, "in_bits": 1})
    hi = cost.LayerCost("MVAU", array="bitserial", **{**s, "weight_bits": 8, "in_bits": 8})
    assert cost.mvau_array_luts(lo) == cost.mvau_array_luts(hi)
    par = cost.LayerCost(
        "MVAU", array="parallel", **{**s, "weight_bits": 8, "in_bits": 8, "xnor": False}
    )
    assert cost.mvau_array_luts(par) > cost.mvau_array_luts(hi)


@pytest.mark.parametrize("wbits,abits", [(1, 1), (2, 2), (3, 5), (8, 8)])
def test_bitfusion_default_bricks_match_the_array(wbits, abits):
    from bitfab.hw.arrays import array_class

    arr = array_class("bitfusion")(2, 4, wbits, abits, "signed", "signed")
    c = cost.LayerCost("MVAU", pe=2, simd=4, weight_bits=wbits, in_bits=abits, array="bitfusion")
    assert cost.mvau_array_luts(c) == 6 * 2 * arr.bricks


def test_unknown_op_and_array_are_named():
    with pytest.raises(BitfabError, match="no LUT model for op type Conv"):
        cost.luts(cost.LayerCost("Conv"))
    with pytest.raises(BitfabError, match="no PE array kind 'systolic'"):
        cost.luts(cost.LayerCost("MVAU", array="systolic"))
    with pytest.raises(BitfabError, match="layer X: no LUT model for op type Conv"):
        lut_estimate(LayerShape("X", "Conv"), 1, 1)


def test_memory_bits_of_an_mvau():
    # 4x8 weights at 2 bits, 8 channels x 3 steps x 5-bit thresholds, replay 2 words x 4 x 3 bits
    bits = cost.memory_bits(
        "MVAU",
        weights=32,
        weight_bits=2,
        channels=8,
        steps=3,
        tbits=5,
        replay_words=2,
        simd=4,
        in_bits=3,
    )
    assert bits == 64 + 120 + 24
    assert cost.memory_bits("Pool") == 0
