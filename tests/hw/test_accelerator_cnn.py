"""A tiny CNN accelerator with parallel-window sliding windows, end to end.

Model: a scaled-down FINN CNV (``tests/dataflow/zoo_small.CNV``, channels 4-4-8-8, W2A2,
untrained with seeded random batch norms) -> ``bitfab dataflow`` (folding target 800 cycles,
which the 28x28x1 first layer only meets with ``parallel_window=1``) -> accelerator. The
expected classes and boundary tensors come from FINN's execution of the dataflow graph
(bitfab.dataflow.golden).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import helper

from bitfab.dataflow.golden import GoldenModel
from bitfab.hw.accelerator import Accelerator, compile_accelerator
from bitfab.hw.compiler import compile_graph, tensor_words
from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.layers.sliding_window import SlidingWindowParallel
from bitfab.sim.amaranth_stream import run_streams
from bitfab.sim.verify import load_test_images

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

TARGET = 800


def _attr(node, name: str, default=None):  # noqa: ANN001
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def set_parallel_windows(model, depthwise: bool = False) -> list[str]:  # noqa: ANN001
    """Set ``parallel_window=1`` on every ConvolutionInputGenerator with SIMD == IFMChannels
    (non-depthwise ones; also depthwise ones before a ``PE == C`` Pool with ``depthwise``)
    that does not have it yet, as the folding pass does. Returns the names of all parallel ones."""
    from qonnx.custom_op.registry import getCustomOp

    names = []
    for n in model.graph.node:
        if n.op_type != "ConvolutionInputGenerator":
            continue
        inst = getCustomOp(n)
        simd, c = inst.get_nodeattr("SIMD"), inst.get_nodeattr("IFMChannels")
        dw = inst.get_nodeattr("depthwise")
        if not inst.get_nodeattr("parallel_window") and simd == c and (not dw or depthwise):
            nxt = model.find_consumer(n.output[0])
            if dw and (nxt is None or nxt.op_type != "Pool" or _attr(nxt, "PE") != c):
                continue
            inst.set_nodeattr("parallel_window", 1)
        if inst.get_nodeattr("parallel_window"):
            names.append(n.name)
    return names


@pytest.fixture(scope="module")
def cnn_df(tmp_path_factory) -> Path:
    import torch
    from qonnx.core.modelwrapper import ModelWrapper

    from bitfab.dataflow.build import build_dataflow
    from tests.dataflow import zoo_small

    root = tmp_path_factory.mktemp("cnn_pw")
    torch.manual_seed(11)
    q = zoo_small.export(zoo_small.CNV(2, 2, ch=(4, 4, 8, 8), fc=16), root / "q.onnx", seed=11)
    build_dataflow(str(q), str(root / "df"), target_cycles=TARGET)
    df = root / "df" / "dataflow.onnx"
    model = ModelWrapper(str(df))
    assert "ConvolutionInputGenerator_0" in set_parallel_windows(model)
    model.save(str(df))
    return df


@pytest.fixture(scope="module")
def cnn_df_dw(cnn_df, tmp_path_factory) -> Path:
    """The same graph with the depthwise (max-pool) window generators parallel where the
    Pool after them takes whole pixels (PE == C)."""
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(cnn_df))
    before = set_parallel_windows(model)
    after = set_parallel_windows(model, depthwise=True)
    assert len(after) > len(before), "no depthwise window generator could be made parallel"
    out = tmp_path_factory.mktemp("cnn_pw_dw") / "dataflow.onnx"
    model.save(str(out))
    return out


def _golden(df: Path, n: int):
    imgs = load_test_images(n)
    classes, tensors = GoldenModel(df).layer_tensors(imgs)
    return classes, tensors


def test_first_layer_is_parallel_and_meets_the_target(cnn_df):
    g = compile_graph(cnn_df, "parallel")
    acc = Accelerator(g)
    unit = acc.units[[s.name for s in g.layers].index("ConvolutionInputGenerator_0")]
    assert isinstance(unit, SlidingWindowParallel)
    assert unit.cycles_per_image() == 28 * 28
    spec = next(s for s in g.layers if s.name == "ConvolutionInputGenerator_0")
    assert spec.fmt_out.lanes == 9 and spec.fmt_out.words == 26 * 26
    # every unit within the folding target: the first layer no longer bounds the pipeline
    assert acc.perf.ii <= TARGET


@pytest.mark.parametrize("which", ["conv", "conv+pool"])
def test_every_boundary_stream_has_the_golden_words(cnn_df, cnn_df_dw, which):
    """Each unit alone, fed the golden input words of its layer, returns the golden output
    words (parallel window words included)."""
    df = cnn_df if which == "conv" else cnn_df_dw
    classes, tensors = _golden(df, 2)
    g = compile_graph(df, "parallel")
    prev = tensors["input"]
    for spec in g.layers:
        y = tensors[spec.golden_name] if spec.golden_name else prev
        x_words = tensor_words(prev, spec.fmt_in)
        y_words = tensor_words(y, spec.fmt_out)
        run = run_streams(spec.build(), {"i": x_words}, {"o": len(y_words)}, max_cycles=10**5)
        assert run.outputs["o"] == y_words, spec.name
        prev = y
    assert tensor_words(prev, g.output_fmt) == classes.tolist()


@pytest.mark.parametrize("which,array", [("conv", "parallel"), ("conv+pool", "bitfusion")])
def test_accelerator_matches_golden_and_estimate(cnn_df, cnn_df_dw, which, array):
    """Whole accelerator in Amaranth's simulator: bit-exact classes with gaps and stalls;
    without them, measured cycles per image (steady state) and latency within 10 % of the
    performance model."""
    df = cnn_df if which == "conv" else cnn_df_dw
    n = 3
    classes, tensors = _golden(df, n)
    acc = Accelerator(compile_graph(df, array))
    words = tensor_words(tensors["input"], acc.graph.input_fmt)
    run = run_streams(acc, {"i": words}, {"o": n}, gap=0.2, stall=0.2, seed=5, max_cycles=10**6)
    assert run.outputs["o"] == classes.tolist()

    one = run_streams(acc, {"i": words[: acc.graph.input_fmt.words]}, {"o": 1}, max_cycles=10**6)
    full = run_streams(acc, {"i": words}, {"o": n}, max_cycles=10**6)
    assert full.outputs["o"] == classes.tolist()
    ii = (full.cycles - one.cycles) / (n - 1)
    assert abs(ii / acc.perf.ii - 1) <= 0.10, (ii, acc.perf.ii)
    assert abs(one.cycles / acc.perf.latency - 1) <= 0.10, (one.cycles, acc.perf.latency)


def test_parallel_window_is_what_removes_the_first_layer_bottleneck(cnn_df, tmp_path):
    """The same graph with parallel_window=0 everywhere: the first sliding window is back to
    one element per cycle (26*26*9 words) and bounds the estimate."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    model = ModelWrapper(str(cnn_df))
    for n in model.graph.node:
        if n.op_type == "ConvolutionInputGenerator":
            getCustomOp(n).set_nodeattr("parallel_window", 0)
    model.save(str(tmp_path / "serial.onnx"))
    serial = Accelerator(compile_graph(tmp_path / "serial.onnx", "parallel"))
    parallel = Accelerator(compile_graph(cnn_df, "parallel"))
    assert serial.perf.ii >= 26 * 26 * 9
    assert serial.perf.bottleneck == "ConvolutionInputGenerator_0"
    assert parallel.perf.ii * 5 < serial.perf.ii
    for acc in (serial, parallel):
        unused_ok(acc)  # built for its estimate only


@pytest.mark.verilator
def test_accelerator_in_verilator(cnn_df_dw, tmp_path):
    """``bitfab compile`` + ``bitfab verify`` (Verilator) on a handful of images: no mismatch,
    cycles per image within 10 % of the estimate."""
    from bitfab.sim.verify import verify

    compile_accelerator(cnn_df_dw, tmp_path / "acc", "parallel")
    rep = verify(tmp_path / "acc", images=6, write=False)
    assert rep["passed"], rep.get("first_mismatch")
    est = rep["estimate"]["cycles_per_image"]
    assert abs(rep["cycles_per_image"] / est - 1) <= 0.10, (rep["cycles_per_image"], est)
    assert np.isfinite(rep["latency"])
