"""Folding: FINN's cycle formulas, constraint checks, target-cycles and LUT-budget choices."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bitfab.dataflow.folding import (
    LayerShape,
    divisors,
    exp_cycles,
    fold_for_lut_budget,
    fold_for_target_cycles,
    fold_given,
    fold_options,
    lut_estimate,
)
from bitfab.dataflow.layers import hw_layers, is_hw_node, layer_shape
from bitfab.dataflow.transforms import ApplyFolding
from bitfab.errors import BitfabError

pytestmark = pytest.mark.filterwarnings("ignore")


def _mvau(name: str, mw: int, mh: int, nvec: int = 1, w: int = 2, a: int = 2) -> LayerShape:
    return LayerShape(
        name,
        "MVAU",
        pe_dim=mh,
        simd_dim=mw,
        in_bits=a,
        weight_bits=w,
        acc_bits=16,
        out_bits=a,
        thres_steps=2**a - 1,
        attrs={"numInputVectors": [1, nvec]},
    )


mvau_layers = st.lists(
    st.builds(
        lambda i, mw, mh, nvec, w, a: _mvau(f"MVAU_{i}", mw, mh, nvec, w, a),
        st.integers(0, 10**6),
        st.integers(1, 600),
        st.integers(1, 200),
        st.sampled_from([1, 4, 9, 36]),
        st.integers(1, 4),
        st.integers(1, 4),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda ly: ly.name,
)


def _brute_min_cycles(ly: LayerShape) -> int:
    return min(
        exp_cycles(ly, p, s)
        for p in range(1, ly.pe_dim + 1)
        if ly.pe_dim % p == 0
        for s in range(1, ly.simd_dim + 1)
        if ly.simd_dim % s == 0
    )


def test_divisors():
    for n in range(1, 200):
        assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0]


@settings(max_examples=60, deadline=None)
@given(mvau_layers, st.integers(1, 200_000))
def test_target_cycles(layers, target):
    plan = fold_for_target_cycles(layers, target)
    reachable = all(_brute_min_cycles(ly) <= target for ly in layers)
    assert plan.target_met == reachable
    for ly in layers:
        pe, simd = plan.fold[ly.name]
        assert ly.pe_dim % pe == 0 and ly.simd_dim % simd == 0
        c = exp_cycles(ly, pe, simd)
        assert c == ly.pe_dim // pe * ly.simd_dim // simd * ly.attrs["numInputVectors"][1]
        if _brute_min_cycles(ly) > target:
            assert c == _brute_min_cycles(ly)  # out of reach: fastest folding
        else:
            assert c <= target
            # no cheaper legal folding of this layer also meets the target
            cheaper = [
                ps
                for ps in fold_options(ly)
                if exp_cycles(ly, *ps) <= target
                and lut_estimate(ly, *ps) < lut_estimate(ly, pe, simd)
            ]
            assert cheaper == []
    assert plan.cycles == max(exp_cycles(ly, *plan.fold[ly.name]) for ly in layers)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda i, mw, mh: _mvau(f"L{i}", mw, mh),
            st.integers(0, 999),
            st.sampled_from([6, 8, 12, 20, 30]),
            st.sampled_from([4, 6, 10, 16]),
        ),
        min_size=1,
        max_size=3,
        unique_by=lambda ly: ly.name,
    ),
    st.integers(100, 20_000),
)
def test_lut_budget_is_fastest_within_budget(layers, budget):
    floor = sum(lut_estimate(ly, 1, 1) for ly in layers)
    if budget < floor:
        with pytest.raises(BitfabError, match="lut-budget"):
            fold_for_lut_budget(layers, budget)
        return
    plan = fold_for_lut_budget(layers, budget)
    assert plan.luts <= budget
    assert plan.luts == sum(lut_estimate(ly, *plan.fold[ly.name]) for ly in layers)
    # exhaustive search: no combination within the budget is faster
    best = min(
        max(exp_cycles(ly, *ps) for ly, ps in zip(layers, combo, strict=True))
        for combo in itertools.product(*(fold_options(ly) for ly in layers))
        if sum(lut_estimate(ly, *ps) for ly, ps in zip(layers, combo, strict=True)) <= budget
    )
    assert plan.cycles == best


def test_given_folding_errors_name_layer_and_constraint():
    layers = [_mvau("MVAU_0", 784, 64), LayerShape("Thresholding_0", "Thresholding", pe_dim=10)]
    with pytest.raises(BitfabError, match=r"MVAU_0 \(MVAU\): PE=3 does not divide MH=64"):
        fold_given(layers, {"MVAU_0": {"PE": 3}})
    with pytest.raises(BitfabError, match=r"MVAU_0 \(MVAU\): SIMD=5 does not divide MW=784"):
        fold_given(layers, {"MVAU_0": {"SIMD": 5}})
    with pytest.raises(BitfabError, match="Thresholding_0 .* has no SIMD"):
        fold_given(layers, {"Thresholding_0": {"PE": 5, "SIMD": 2}})
    with pytest.raises(BitfabError, match="no HW layer named 'nope'"):
        fold_given(layers, {"nope": {"PE": 1}})
    plan = fold_given(layers, {"MVAU_0": {"PE": 16, "SIMD": 49}, "Thresholding_0": {"PE": 5}})
    assert plan.fold == {"MVAU_0": (16, 49), "Thresholding_0": (5, 1)}


@pytest.mark.parametrize("family", ["tfc_w2a2", "cnv_w2a2"])
def test_cycle_model_matches_finn(family, dataflow_models):
    """Our formulas equal FINN's get_exp_cycles (RTL sliding window for the SWG) at random
    legal foldings applied to the real graph."""
    from finn.custom_op.fpgadataflow.rtl.convolutioninputgenerator_rtl import (
        ConvolutionInputGenerator_rtl,
    )

    path, _ = dataflow_models[family]
    model = ModelWrapper(str(path))
    rng = random.Random(7)
    for _ in range(3):
        fold = {ly.name: rng.choice(fold_options(ly)) for ly in hw_layers(model)}
        model = model.transform(ApplyFolding(fold))
        for node in model.graph.node:
            inst = getCustomOp(node)
            if node.op_type == "ConvolutionInputGenerator":
                inst = ConvolutionInputGenerator_rtl(node)
            ours = exp_cycles(layer_shape(model, node), *fold[node.name])
            assert ours == int(inst.get_exp_cycles()), node.name


def test_apply_folding_checks_before_changing(dataflow_models):
    path, _ = dataflow_models["tfc_w2a2"]
    model = ModelWrapper(str(path))
    layers = hw_layers(model)
    fold = {ly.name: (1, 1) for ly in layers}
    mvau = next(ly for ly in layers if ly.op_type == "MVAU")
    fold[mvau.name] = (1, 7 if mvau.simd_dim % 7 else 9)  # a SIMD that does not divide MW
    with pytest.raises(BitfabError, match=f"{mvau.name} \\(MVAU\\): SIMD="):
        model.transform(ApplyFolding(fold))
    assert all(
        getCustomOp(n).get_nodeattr("SIMD") == 1 for n in model.graph.node if n.op_type == "MVAU"
    )
    assert all(is_hw_node(n) for n in model.graph.node)


def _swg(i: int, ch: int, dim: int, k: int) -> LayerShape:
    return LayerShape(
        f"SWG_{i}",
        "ConvolutionInputGenerator",
        simd_dim=ch,
        in_bits=2,
        attrs={
            "ConvKernelDim": [k, k],
            "IFMDim": [dim, dim],
            "OFMDim": [dim - k + 1, dim - k + 1],
            "Stride": [1, 1],
            "Dilation": [1, 1],
            "depthwise": 0,
        },
    )


def _pool(i: int, ch: int, odim: int) -> LayerShape:
    return LayerShape(
        f"Pool_{i}",
        "Pool",
        pe_dim=ch,
        in_bits=2,
        attrs={"KernelSize": [2, 2], "OutImgDims": [odim, odim], "BatchSize": 1},
    )


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 96),
    st.integers(4, 28),
    st.sampled_from([1, 3, 5]),
    st.integers(1, 96),
    st.integers(1, 14),
    st.integers(1, 100_000),
)
def test_target_cycles_swg_and_pool(ch, dim, k, pch, odim, target):
    layers = [_swg(0, ch, max(dim, k), k), _pool(0, pch, odim)]
    plan = fold_for_target_cycles(layers, target)
    (_, simd), (pe, _) = plan.fold["SWG_0"], plan.fold["Pool_0"]
    assert ch % simd == 0 and pch % pe == 0
    assert plan.fold["SWG_0"][0] == 1 and plan.fold["Pool_0"][1] == 1
    for ly in layers:
        fastest = min(exp_cycles(ly, *ps) for ps in fold_options(ly))
        got = exp_cycles(ly, *plan.fold[ly.name])
        assert got <= target if fastest <= target else got == fastest
