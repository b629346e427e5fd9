"""bitfab's own graph passes on small hand-made graphs."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.util.basic import qonnx_make_model

from bitfab.dataflow.transforms import (
    MoveFlattenBeforeSharedThreshold,
    PrependPixelScale,
    RemoveIdentityThresholding,
)
from bitfab.dataflow.transforms.remove_identity_thresholding import is_identity_thresholding
from bitfab.dataflow.transforms.remove_input_layout_op import _transpose_keeps_order

pytestmark = pytest.mark.filterwarnings("ignore")


def _thresholding_graph(thr: np.ndarray, idt: str, odt: str, act: int) -> ModelWrapper:
    ch = thr.shape[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, ch])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, ch])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4, ch])
    node = helper.make_node(
        "Thresholding",
        ["x", "t"],
        ["y"],
        domain="finn.custom_op.fpgadataflow",
        backend="fpgadataflow",
        NumChannels=ch,
        PE=1,
        numSteps=thr.shape[1],
        inputDataType=idt,
        weightDataType=idt,
        outputDataType=odt,
        ActVal=act,
        numInputVectors=[1, 4],
        name="Thresholding_0",
    )
    relu = helper.make_node("Relu", ["y"], ["z"], name="Relu_0")
    m = ModelWrapper(
        qonnx_make_model(helper.make_graph([node, relu], "g", [x], [z], value_info=[y]))
    )
    m.set_initializer("t", thr.astype(np.float32))
    m.set_tensor_datatype("x", DataType[idt])
    m.set_tensor_datatype("y", DataType[odt])
    return m


def test_identity_thresholding_detected_and_removed():
    ident = np.tile(np.arange(1, 256, dtype=np.float32), (3, 1))
    m = _thresholding_graph(ident, "UINT8", "UINT8", 0)
    assert is_identity_thresholding(m, m.graph.node[0])
    x = np.random.default_rng(0).integers(0, 256, (1, 4, 3)).astype(np.float32)
    before = execute_onnx(m, {"x": x})["z"]
    m2 = m.transform(RemoveIdentityThresholding())
    assert [n.op_type for n in m2.graph.node] == ["Relu"]
    assert np.array_equal(execute_onnx(m2, {"x": x})["z"], before)
    # signed identity: thresholds -127..127 with ActVal -128 on INT8
    signed = np.arange(-127, 128, dtype=np.float32)[None, :]
    assert is_identity_thresholding(
        _thresholding_graph(signed, "INT8", "INT8", -128),
        _thresholding_graph(signed, "INT8", "INT8", -128).graph.node[0],
    )


@pytest.mark.parametrize("change", ["shift", "one_channel", "act", "type"])
def test_non_identity_thresholding_kept(change):
    thr = np.tile(np.arange(1, 256, dtype=np.float32), (3, 1))
    idt, odt, act = "UINT8", "UINT8", 0
    if change == "shift":
        thr = thr + 0.5 + 1  # x >= i + 1.5 -> count is x - 1 for x >= 2
    elif change == "one_channel":
        thr[1, 100] += 1
    elif change == "act":
        act = 1
    else:
        odt = "UINT9"
    m = _thresholding_graph(thr, idt, odt, act)
    assert not is_identity_thresholding(m, m.graph.node[0])
    assert m.transform(RemoveIdentityThresholding()).graph.node[0].op_type == "Thresholding"


def test_transpose_keeps_order():
    assert _transpose_keeps_order([1, 1, 28, 28], [0, 2, 3, 1])  # NCHW -> NHWC with C = 1
    assert not _transpose_keeps_order([1, 3, 28, 28], [0, 2, 3, 1])
    assert _transpose_keeps_order([1, 784], [0, 1])
    assert not _transpose_keeps_order([1, 2, 3, 1], [0, 2, 1, 3])


def test_prepend_pixel_scale():
    x = helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, 1, 28, 28])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1, 28, 28])
    m = ModelWrapper(
        qonnx_make_model(
            helper.make_graph([helper.make_node("Relu", ["inp"], ["out"])], "g", [x], [y])
        )
    )
    m = m.transform(PrependPixelScale())
    assert m.graph.input[0].name == "pixels"
    assert m.get_tensor_datatype("pixels") == DataType["UINT8"]
    px = np.random.default_rng(1).integers(0, 256, (1, 1, 28, 28)).astype(np.float32)
    out = execute_onnx(m, {"pixels": px})["out"]
    assert np.allclose(out, px / 255.0)
    assert len(m.transform(PrependPixelScale()).graph.node) == 2  # idempotent


def _mt_flatten_graph(shape: list[int], thr: np.ndarray, flatten: str) -> ModelWrapper:
    """``x [N, C, H, W] -> MultiThreshold(thr) -> Flatten|Reshape -> Relu -> out``."""
    n, rest = shape[0], int(np.prod(shape[1:]))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    q = helper.make_tensor_value_info("q", TensorProto.FLOAT, shape)
    f = helper.make_tensor_value_info("f", TensorProto.FLOAT, [n, rest])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [n, rest])
    mt = helper.make_node(
        "MultiThreshold",
        ["x", "t"],
        ["q"],
        domain="qonnx.custom_op.general",
        out_dtype="UINT2",
        data_layout="NCHW",
        name="MultiThreshold_0",
    )
    if flatten == "Flatten":
        fl = helper.make_node("Flatten", ["q"], ["f"], axis=1, name="Flatten_0")
        inits = []
    else:
        fl = helper.make_node("Reshape", ["q", "s"], ["f"], name="Reshape_0")
        inits = ["s"]
    relu = helper.make_node("Relu", ["f"], ["out"], name="Relu_0")
    g = helper.make_graph([mt, fl, relu], "g", [x], [out], value_info=[q, f])
    m = ModelWrapper(qonnx_make_model(g))
    m.set_initializer("t", thr.astype(np.float32))
    if inits:
        m.set_initializer("s", np.array([n, rest], dtype=np.int64))
    m.set_tensor_datatype("x", DataType["UINT8"])
    m.set_tensor_datatype("q", DataType["UINT2"])
    m.set_tensor_datatype("f", DataType["UINT2"])
    return m


@pytest.mark.parametrize("seed", range(6))
def test_flatten_moves_before_shared_threshold(seed):
    """Shared thresholds (one row, or equal rows): the flatten moves first, the thresholds
    become one row, the output is unchanged on random inputs."""
    r = np.random.default_rng(seed)
    shape = [int(r.integers(1, 3)), int(r.choice([1, 3])), int(r.integers(2, 6)), 4]
    row = np.sort(r.integers(0, 256, size=(1, 3)), axis=1)
    thr = row if seed % 2 == 0 else np.tile(row, (shape[1], 1))
    m = _mt_flatten_graph(shape, thr, "Flatten" if seed < 3 else "Reshape")
    x = r.integers(0, 256, size=shape).astype(np.float32)
    before = execute_onnx(m, {"x": x})["out"]
    m2 = m.transform(MoveFlattenBeforeSharedThreshold())
    assert [n.op_type for n in m2.graph.node][:2] in (
        ["Flatten", "MultiThreshold"],
        ["Reshape", "MultiThreshold"],
    )
    mt = m2.graph.node[1]
    assert m2.get_initializer(mt.input[1]).shape == (1, 3)
    assert m2.get_tensor_shape(mt.input[0]) == [shape[0], int(np.prod(shape[1:]))]
    assert m2.get_tensor_datatype(mt.input[0]) == DataType["UINT8"]
    assert m2.get_tensor_datatype(mt.output[0]) == DataType["UINT2"]
    np.testing.assert_array_equal(execute_onnx(m2, {"x": x})["out"], before)


def test_flatten_stays_after_per_channel_threshold():
    """Different thresholds per channel (C > 1): moving the flatten would give every element
    another row, so the graph is left alone."""
    thr = np.array([[1, 5, 9], [2, 6, 10], [3, 7, 11]], dtype=np.float32)
    m = _mt_flatten_graph([1, 3, 2, 2], thr, "Flatten")
    m2 = m.transform(MoveFlattenBeforeSharedThreshold())
    assert [n.op_type for n in m2.graph.node] == ["MultiThreshold", "Flatten", "Relu"]
    same = _mt_flatten_graph([1, 3, 2, 2], np.tile(thr[:1], (3, 1)), "Flatten")
    same = same.transform(MoveFlattenBeforeSharedThreshold())
    assert [n.op_type for n in same.graph.node] == ["Flatten", "MultiThreshold", "Relu"]
