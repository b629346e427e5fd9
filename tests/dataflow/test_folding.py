"""Folding: FINN's cycle formulas, constraint checks, target-cycles and LUT-budget choices."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bitfab.dataflow.folding import (
    Fold,
    LayerShape,
    divisors,
    exp_cycles,
    fold_for_lut_budget,
    fold_for_target_cycles,
    fold_given,
    fold_minimal,
    fold_options,
    fold_units,
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
        pe, simd, pw = plan.fold[ly.name]
        assert pw == 0
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
    assert plan.fold == {"MVAU_0": (16, 49, 0), "Thresholding_0": (5, 1, 0)}


@pytest.mark.parametrize("family", ["tfc_w2a2", "cnv_w2a2"])
def test_cycle_model_matches_finn(family, dataflow_models):
    """Our formulas equal FINN's get_exp_cycles (RTL sliding window for the SWG) at random
    legal foldings applied to the real graph; a parallel-window SWG takes FINN's count minus the 2
    cycles the hardware contract does not have (IFM_h * IFM_w)."""
    from finn.custom_op.fpgadataflow.rtl.convolutioninputgenerator_rtl import (
        ConvolutionInputGenerator_rtl,
    )

    path, _ = dataflow_models[family]
    model = ModelWrapper(str(path))
    rng = random.Random(7)
    seen_pw = 0
    for _ in range(4):
        fold = {}
        for unit in fold_units(hw_layers(model)):  # random joint folding, ties held
            fold.update(rng.choice(unit).fold)
        model = model.transform(ApplyFolding(fold))
        for node in model.graph.node:
            inst = getCustomOp(node)
            if node.op_type == "ConvolutionInputGenerator":
                inst = ConvolutionInputGenerator_rtl(node)
            ours = exp_cycles(layer_shape(model, node), *fold[node.name])
            if fold[node.name].parallel_window:
                seen_pw += 1
                assert inst.select_impl_style() == "parallel"
                assert ours == int(inst.get_exp_cycles()) - 2, node.name
            else:
                assert ours == int(inst.get_exp_cycles()), node.name
    if family.startswith("cnv"):
        assert seen_pw > 0  # the random draws did exercise parallel_window


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
    (_, simd, pw), (pe, _, _) = plan.fold["SWG_0"], plan.fold["Pool_0"]
    assert ch % simd == 0 and pch % pe == 0
    assert plan.fold["SWG_0"][0] == 1 and plan.fold["Pool_0"][1] == 1
    assert pw == 0 or simd == ch
    for ly in layers:
        fastest = min(exp_cycles(ly, *ps) for ps in fold_options(ly))
        got = exp_cycles(ly, *plan.fold[ly.name])
        assert got <= target if fastest <= target else got == fastest


# --- depthwise tie (SWG SIMD == consumer PE) and parallel_window -------------------------------


def _ties_of(layers) -> list[tuple[str, str]]:
    return [(ly.name, ly.simd_tied_to) for ly in layers if ly.simd_tied_to]


def _independent_target(layers, target: int) -> dict:
    """Per-layer cheapest folding within ``target`` ignoring ties (the old, buggy choice)."""
    out = {}
    for ly in layers:
        opts = [f for f in fold_options(ly) if not f.parallel_window]
        fits = [f for f in opts if exp_cycles(ly, *f) <= target]
        out[ly.name] = (
            min(fits, key=lambda f: (lut_estimate(ly, *f), exp_cycles(ly, *f)))
            if fits
            else min(opts, key=lambda f: (exp_cycles(ly, *f), lut_estimate(ly, *f)))
        )
    return out


def test_ties_found_on_cnn_graph(dataflow_models):
    """Every depthwise SWG of the zoo CNN is tied to the Pool it feeds, and nothing else is."""
    path, _ = dataflow_models["cnv_w2a2"]
    model = ModelWrapper(str(path))
    layers = hw_layers(model)
    expected = []
    for node in model.graph.node:
        if node.op_type == "ConvolutionInputGenerator" and getCustomOp(node).get_nodeattr(
            "depthwise"
        ):
            expected.append((node.name, model.find_consumer(node.output[0]).name))
    assert expected and all(b.startswith("Pool") for _, b in expected)
    assert _ties_of(layers) == expected


def test_tie_holds_in_every_mode_on_cnn(dataflow_models):
    """target-cycles, lut-budget and minimal foldings of a real CNN graph keep every depthwise
    SWG's SIMD equal to its Pool's PE, the folded graph carries it, and within a tied pair the
    choice is the cheapest common folding (brute force)."""
    path, _ = dataflow_models["cnv_w2a2"]
    model = ModelWrapper(str(path))
    layers = hw_layers(model)
    by_name = {ly.name: ly for ly in layers}
    ties = _ties_of(layers)
    pool_cycles = sorted(
        {exp_cycles(by_name[b], *f) for _, b in ties for f in fold_options(by_name[b])}
    )
    rng = random.Random(3)
    targets = pool_cycles + [rng.randint(50, 30_000) for _ in range(8)]
    plans = [("minimal", fold_minimal(layers))]
    plans += [(f"target {t}", fold_for_target_cycles(layers, t)) for t in targets]
    floor = fold_minimal(layers).luts
    plans += [
        (f"budget {b}", fold_for_lut_budget(layers, b)) for b in (floor, 2 * floor, 8 * floor)
    ]
    broke_before = 0
    for what, plan in plans:
        for a, b in ties:
            assert plan.fold[a].simd == plan.fold[b].pe, (what, a, b)
        folded = model.transform(ApplyFolding(plan.fold))
        nodes = {n.name: getCustomOp(n) for n in folded.graph.node}
        for a, b in ties:
            assert nodes[a].get_nodeattr("SIMD") == nodes[b].get_nodeattr("PE"), (what, a)
        if what.startswith("target"):
            t = int(what.split()[1])
            old = _independent_target(layers, t)
            broke_before += any(old[a].simd != old[b].pe for a, b in ties)
            for a, b in ties:
                la, lb = by_name[a], by_name[b]
                common = [v for v in divisors(la.simd_dim) if lb.pe_dim % v == 0]
                costs = {
                    v: (
                        max(exp_cycles(la, 1, v), exp_cycles(lb, v, 1)),
                        lut_estimate(la, 1, v) + lut_estimate(lb, v, 1),
                    )
                    for v in common
                }
                fits = [v for v in common if costs[v][0] <= t]
                want = min(fits, key=lambda v: costs[v][1]) if fits else min(common, key=costs.get)
                assert plan.fold[a].simd == want, (what, a)
    assert broke_before > 0  # the tie matters: independent folding breaks it on this graph


def test_given_folding_breaking_tie_is_an_error(dataflow_models):
    path, _ = dataflow_models["cnv_w2a2"]
    model = ModelWrapper(str(path))
    layers = hw_layers(model)
    a, b = _ties_of(layers)[0]
    with pytest.raises(BitfabError, match=rf"{a} .*SIMD=2 must equal the PE=1 of {b}"):
        fold_given(layers, {a: {"SIMD": 2}})
    with pytest.raises(BitfabError, match=rf"{a} .*SIMD=1 must equal the PE=4 of {b}"):
        fold_given(layers, {b: {"PE": 4}})
    plan = fold_given(layers, {a: {"SIMD": 4}, b: {"PE": 4}})
    assert plan.fold[a] == (1, 4, 0) and plan.fold[b] == (4, 1, 0)
    fold = dict(plan.fold)
    fold[b] = Fold(2, 1, 0)
    with pytest.raises(BitfabError, match=rf"{a} .*must equal the PE=2 of {b}"):
        model.transform(ApplyFolding(fold))


def _swg_c(ch: int, dim: int, k: int, stride: int = 1, depthwise: int = 0) -> LayerShape:
    odim = (dim - k) // stride + 1
    return LayerShape(
        "SWG_0",
        "ConvolutionInputGenerator",
        simd_dim=ch,
        in_bits=8,
        attrs={
            "ConvKernelDim": [k, k],
            "IFMDim": [dim, dim],
            "OFMDim": [odim, odim],
            "Stride": [stride, stride],
            "Dilation": [1, 1],
            "depthwise": depthwise,
        },
    )


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([1, 2, 3, 8, 16]),
    st.integers(5, 32),
    st.sampled_from([2, 3, 5]),
    st.sampled_from([1, 2]),
    st.integers(1, 20_000),
)
def test_parallel_window_chosen_exactly_when_needed(ch, dim, k, stride, target):
    swg = _swg_c(ch, dim, k, stride)
    plan = fold_for_target_cycles([swg], target)
    f = plan.fold["SWG_0"]
    full = exp_cycles(swg, 1, ch)  # the default window at its fastest, SIMD == IFMChannels
    assert f.parallel_window == (full > target)
    if f.parallel_window:
        assert f.simd == ch
        assert plan.cycles == dim * dim  # one input pixel per cycle
        assert plan.target_met == (dim * dim <= target)
    # LUT budget: any parallel_window choice is at SIMD == C, and the budget holds
    budget = lut_estimate(swg, 1, 1) + target // 10
    bplan = fold_for_lut_budget([swg], budget)
    assert bplan.luts <= budget
    assert not bplan.fold["SWG_0"].parallel_window or bplan.fold["SWG_0"].simd == ch
    # depthwise windows never get it
    dw = _swg_c(ch, dim, k, stride, depthwise=1)
    assert all(not o.parallel_window for o in fold_options(dw))
    assert not fold_for_target_cycles([dw], target).fold["SWG_0"].parallel_window


def test_parallel_window_lut_model():
    swg = _swg_c(4, 12, 3)
    assert lut_estimate(swg, 1, 4, 1) == 40 + 2 * 9 * 4 * 8
    assert lut_estimate(swg, 1, 4, 0) == 30 + 2 * 4 * 8
    assert exp_cycles(swg, 1, 4, 1) == 144


def test_given_parallel_window_checked():
    swg = _swg_c(4, 12, 3)
    dw = dataclasses.replace(_swg_c(4, 12, 2, 2, 1), name="SWG_1")
    mv = _mvau("MVAU_0", 36, 8)
    layers = [swg, dw, mv]
    plan = fold_given(layers, {"SWG_0": {"SIMD": 4, "parallel_window": 1}})
    assert plan.fold["SWG_0"] == (1, 4, 1)
    assert exp_cycles(swg, *plan.fold["SWG_0"]) == 144
    with pytest.raises(BitfabError, match=r"SWG_0 .*parallel_window=1 needs SIMD == IFMChannels=4"):
        fold_given(layers, {"SWG_0": {"SIMD": 2, "parallel_window": 1}})
    with pytest.raises(BitfabError, match=r"SWG_1 .*not supported for a depthwise"):
        fold_given(layers, {"SWG_1": {"SIMD": 4, "parallel_window": 1}})
    with pytest.raises(BitfabError, match=r"MVAU_0 \(MVAU\) has no parallel_window"):
        fold_given(layers, {"MVAU_0": {"parallel_window": 1}})
    with pytest.raises(BitfabError, match=r"parallel_window=2 must be 0 or 1"):
        fold_given(layers, {"SWG_0": {"SIMD": 4, "parallel_window": 2}})


def test_parallel_window_on_cnn_graph(dataflow_models, images):
    """On the zoo CNN (first SWG: one channel) a tight target picks parallel_window for the first
    SWG only; the folded graph's stream widths are FINN's parallel-aware ones; the golden model
    (FINN's Python execution) gives the same classes as the PE=SIMD=1 graph."""
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.dataflow.layers import layer_record

    path, _ = dataflow_models["cnv_w2a2"]
    model = ModelWrapper(str(path))
    layers = hw_layers(model)
    first = next(ly for ly in layers if ly.op_type == "ConvolutionInputGenerator")
    assert first.simd_dim == 1
    rest = [ly for ly in layers if ly is not first]
    slowest_rest = max(min(exp_cycles(ly, *f) for f in fold_options(ly)) for ly in rest)
    target = max(exp_cycles(first, 1, 1, 1), slowest_rest)
    assert exp_cycles(first, 1, 1) > target  # the default window cannot make it
    plan = fold_for_target_cycles(layers, target)
    assert plan.target_met and plan.cycles <= target
    assert plan.fold[first.name] == (1, 1, 1)
    for ly in layers:  # parallel_window exactly where the default window at SIMD == C is too slow
        f = plan.fold[ly.name]
        must = ly.can_parallel_window and exp_cycles(ly, 1, ly.simd_dim) > target
        assert f.parallel_window == must and (not must or f.simd == ly.simd_dim), ly.name
    folded = model.transform(ApplyFolding(plan.fold))
    i = [n.name for n in folded.graph.node].index(first.name)
    node = folded.graph.node[i]
    assert getCustomOp(node).get_nodeattr("parallel_window") == 1
    rec = layer_record(folded, node)
    k = first.attrs["ConvKernelDim"]
    assert rec["parallel_window"] == 1 and rec["est_cycles"] == _prod2(first.attrs["IFMDim"])
    assert rec["outstream_width"] == k[0] * k[1] * 1 * first.in_bits
    assert rec["instream_width"] == first.in_bits
    nxt = layer_record(folded, folded.graph.node[i + 1])
    assert nxt["op_type"] == "MVAU" and nxt["instream_width"] == nxt["SIMD"] * nxt["input"]["bits"]
    ref = GoldenModel(str(path)).classify(images, batch=len(images))
    tmp = path.parent / "cnv_w2a2_parallel_window.onnx"
    folded.save(str(tmp))
    got = GoldenModel(str(tmp)).classify(images, batch=len(images))
    assert (got == ref).all()


def _prod2(xs) -> int:
    return int(xs[0]) * int(xs[1])


def _fmpad(c: int, h: int, w: int, pad: tuple[int, int, int, int], bits: int = 2) -> LayerShape:
    attrs = {"ImgDim": [h, w], "Padding": list(pad), "numInputVectors": [1]}
    return LayerShape(
        "FMPadding_0", "FMPadding", simd_dim=c, in_bits=bits, out_bits=bits, attrs=attrs
    )


@settings(max_examples=40, deadline=None)
@given(
    c=st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 32]),
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    pad=st.tuples(*[st.integers(0, 3)] * 4),
    target=st.integers(1, 20000),
)
def test_fmpadding_folding(c, h, w, pad, target):
    """FMPadding: SIMD over the divisors of NumChannels, no PE; cycles one word per output word
    (padding included); a cycle target picks the smallest SIMD that meets it."""
    ly = _fmpad(c, h, w, pad)
    assert sorted(f.simd for f in fold_options(ly)) == [d for d in range(1, c + 1) if c % d == 0]
    assert all(f.pe == 1 and f.parallel_window == 0 for f in fold_options(ly))
    oh, ow = h + pad[0] + pad[2], w + pad[1] + pad[3]
    words = c * oh * ow  # output elements = words at SIMD 1
    for f in fold_options(ly):
        assert exp_cycles(ly, *f) * f.simd == words
        assert lut_estimate(ly, *f) == 30 + f.simd * 2
    plan = fold_for_target_cycles([ly], target)
    fits = [d for d in range(1, c + 1) if c % d == 0 and words // d <= target]
    if fits:
        assert plan.target_met and plan.fold["FMPadding_0"].simd == min(fits)
    else:
        assert not plan.target_met and plan.fold["FMPadding_0"].simd == c


def test_fmpadding_given_folding_errors():
    ly = _fmpad(16, 14, 14, (1, 1, 1, 1))
    with pytest.raises(BitfabError, match=r"FMPadding_0 \(FMPadding\): SIMD=3 does not divide "):
        fold_given([ly], {"FMPadding_0": {"SIMD": 3}})
    with pytest.raises(BitfabError, match="NumChannels=16"):
        fold_given([ly], {"FMPadding_0": {"SIMD": 5}})
    with pytest.raises(BitfabError, match="has no PE attribute"):
        fold_given([ly], {"FMPadding_0": {"PE": 2}})
    with pytest.raises(BitfabError, match="no parallel_window"):
        fold_given([ly], {"FMPadding_0": {"SIMD": 16, "parallel_window": 1}})
    assert fold_given([ly], {"FMPadding_0": {"SIMD": 8}}).fold["FMPadding_0"] == (1, 8, 0)


def test_fmpadding_on_padded_cnn_graph(pad1_qonnx):
    """On cnn_pad1's real graph: FMPadding feeds a non-depthwise sliding window and is not tied
    to it; at random legal foldings our cycle count equals FINN's FMPadding.get_exp_cycles and
    the SWG's equals FINN's RTL one."""
    from finn.custom_op.fpgadataflow.rtl.convolutioninputgenerator_rtl import (
        ConvolutionInputGenerator_rtl,
    )

    from bitfab.dataflow import make_dataflow

    model, _ = make_dataflow(pad1_qonnx)
    layers = hw_layers(model)
    pads = [ly for ly in layers if ly.op_type == "FMPadding"]
    assert len(pads) == 2 and all(ly.simd_tied_to is None for ly in pads)
    assert [ly.simd_dim for ly in pads] == [1, 16]  # NumChannels of the two conv inputs
    for ly in pads:
        node = model.get_node_from_name(ly.name)
        assert model.find_consumer(node.output[0]).op_type == "ConvolutionInputGenerator"
    rng = random.Random(5)
    for _ in range(4):
        fold = {}
        for unit in fold_units(layers):
            fold.update(rng.choice(unit).fold)
        model = model.transform(ApplyFolding(fold))
        for node in model.graph.node:
            inst = getCustomOp(node)
            if node.op_type == "ConvolutionInputGenerator":
                inst = ConvolutionInputGenerator_rtl(node)
            ours = exp_cycles(layer_shape(model, node), *fold[node.name])
            if fold[node.name].parallel_window:
                assert ours == int(inst.get_exp_cycles()) - 2, node.name
            else:
                assert ours == int(inst.get_exp_cycles()), node.name
            if node.op_type == "FMPadding":
                assert inst.get_nodeattr("SIMD") == fold[node.name].simd
    # a cycle target makes FMPadding_1 (16 ch, 16x16 padded = 4096 words) fold on its own
    plan = fold_for_target_cycles(layers, 1100)
    assert plan.fold["FMPadding_1"].simd == 4
    assert exp_cycles(pads[1], *plan.fold["FMPadding_1"]) == 1024
