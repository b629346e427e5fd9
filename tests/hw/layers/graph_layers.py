"""Layers of a real FINN dataflow graph (``tests/dataflow/zoo_small`` models): each node built
with ``from_finn`` and its stream words from FINN's golden tensors.

:func:`run_graph_layer` simulates one node with the folding of :data:`GRAPH_FOLDS`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from tests.hw.layers.cases import component_class, words_of


@functools.cache
def finn_graph(family: str):
    """Export ``tests.dataflow.zoo_small`` model ``family``, convert it with
    ``bitfab.dataflow.make_dataflow`` (FINN streamlining + HW layers) and run FINN's golden
    model on one digit. Returns ``(model, tensors)``: ``tensors[node name]`` is the node's
    output (``"input"``: the graph input). Cached per process."""
    import tempfile

    import torch

    from bitfab.dataflow import make_dataflow
    from bitfab.dataflow.golden import GoldenModel
    from tests.dataflow import zoo_small

    tmp = Path(tempfile.mkdtemp(prefix="bitfab-layer-cases-"))
    torch.manual_seed(zoo_small.SEEDS[family])
    path = zoo_small.export(
        zoo_small.FAMILIES[family](), tmp / f"{family}.onnx", seed=zoo_small.SEEDS[family]
    )
    model, _ = make_dataflow(path)
    try:
        from bitfab.models.data import load_dataset

        image = load_dataset("digits", "test")[0][:1].reshape(1, 28, 28)
    except Exception:  # the models stage is optional here
        image = np.random.default_rng(0).integers(0, 256, size=(1, 28, 28))
    _, tensors = GoldenModel(model).layer_tensors(image.astype(np.uint8))
    return model, tensors


def _swg_dw_to_stream(t: np.ndarray, kk: int, c: int, simd: int) -> np.ndarray:
    """FINN's Python layout ``(..., K, C)`` of a depthwise window tensor -> the hardware stream
    order ``(..., C/SIMD, K, SIMD)`` (FINN pool.py: ``(1, OH, OW, C/PE, K, K, PE)``)."""
    lead = t.shape[:-1]
    t = t.reshape(*lead, kk, c // simd, simd)
    return np.moveaxis(t, -3, -2).reshape(*lead, kk * c)


def graph_layer(family: str, node_name: str, fold: dict | None = None, **build_kw):
    """The hardware layer for one node of a FINN dataflow graph, built with ``from_finn`` from
    the node's attributes (PE/SIMD overridden by ``fold``), and its stream words from FINN's
    golden tensors. Returns ``(dut, inputs, expected)`` for ``run_streams``."""
    from onnx import helper
    from qonnx.core.datatype import DataType

    from bitfab.hw.types import finn_kind_bits

    model, tensors = finn_graph(family)
    node = model.get_node_from_name(node_name)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs.update(fold or {})
    producer = model.find_producer(node.input[0])
    x = tensors[producer.name if producer is not None else "input"]
    y = tensors[node.name]
    ikind, ibits = finn_kind_bits(model.get_tensor_datatype(node.input[0]))
    okind, obits = finn_kind_bits(model.get_tensor_datatype(node.output[0]))
    if model.get_tensor_datatype(node.output[0]) == DataType["BIPOLAR"]:
        okind = "bipolar"
    inits = [model.get_initializer(name) for name in node.input[1:]]
    op = node.op_type
    dut = component_class(op).from_finn(attrs, *inits, **build_kw)
    if op == "MVAU":
        in_lanes, out_lanes = attrs["SIMD"], attrs["PE"]
    elif op in ("ConvolutionInputGenerator", "FMPadding"):
        in_lanes = out_lanes = attrs["SIMD"]
        if op == "ConvolutionInputGenerator" and attrs.get("depthwise", 0):
            kk = int(np.prod(attrs["ConvKernelDim"]))
            y = _swg_dw_to_stream(y, kk, attrs["IFMChannels"], attrs["SIMD"])
    elif op == "Pool":
        in_lanes = out_lanes = attrs["PE"]
        x = _swg_dw_to_stream(x, int(np.prod(attrs["KernelSize"])), attrs["Channels"], in_lanes)
    elif op == "LabelSelect":
        in_lanes, out_lanes = attrs["PE"], 1
    else:  # Thresholding
        in_lanes = out_lanes = attrs["PE"]
    xi = np.rint(x).astype(np.int64)
    yi = np.rint(y).astype(np.int64)
    inputs = {"i": words_of(xi, in_lanes, ibits, ikind)}
    expected = {"o": words_of(yi, out_lanes, obits, okind)}
    return dut, inputs, expected


#: Folding used for the graph-layer tests (PE/SIMD per node of the zoo_small graphs).
GRAPH_FOLDS = {
    "tfc_w1a1": {
        "Thresholding_0": dict(PE=16),
        "MVAU_0": dict(PE=8, SIMD=49),
        "MVAU_1": dict(PE=8, SIMD=8),
        "MVAU_2": dict(PE=5, SIMD=8),
        "LabelSelect_0": dict(PE=5),
    },
    "cnv_w2a2": {
        "Thresholding_0": dict(PE=1),
        "ConvolutionInputGenerator_0": dict(SIMD=1),
        "MVAU_0": dict(PE=8, SIMD=9),
        "ConvolutionInputGenerator_1": dict(SIMD=8),
        "MVAU_1": dict(PE=8, SIMD=24),
        "ConvolutionInputGenerator_2": dict(SIMD=4),
        "Pool_0": dict(PE=4),
        "ConvolutionInputGenerator_3": dict(SIMD=8),
        "MVAU_2": dict(PE=16, SIMD=24),
        "ConvolutionInputGenerator_4": dict(SIMD=16),
        "MVAU_3": dict(PE=16, SIMD=48),
        "ConvolutionInputGenerator_5": dict(SIMD=8),
        "Pool_1": dict(PE=8),
        "MVAU_4": dict(PE=8, SIMD=32),
        "MVAU_5": dict(PE=5, SIMD=8),
        "LabelSelect_0": dict(PE=2),
    },
}


def run_graph_layer(family: str, node_name: str, *, gap: float = 0.2, stall: float = 0.2):
    """Simulate one node of a zoo_small dataflow graph (see :func:`graph_layer`); return
    ``(outputs, expected)`` word lists."""
    from bitfab.sim.amaranth_stream import run_streams

    dut, inputs, expected = graph_layer(family, node_name, GRAPH_FOLDS[family][node_name])
    run = run_streams(dut, inputs, {"o": len(expected["o"])}, gap=gap, stall=stall)
    return run.outputs["o"], expected["o"]
