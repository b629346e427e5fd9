"""FINN's and ONNX's own Python execution of a one-node graph, for cross-checking the numpy
references and the hardware layers against FINN (``finn.custom_op.fpgadataflow``) and qonnx."""

from __future__ import annotations

import importlib

import numpy as np


def finn_dtype(kind: str, bits: int) -> str:
    """FINN/qonnx data type name of a (kind, bits) pair."""
    if kind == "bipolar":
        return "BIPOLAR"
    if kind == "unsigned":
        return "BINARY" if bits == 1 else f"UINT{bits}"
    return f"INT{bits}"


def finn_execute(
    op_type: str,
    attrs: dict,
    x: np.ndarray,
    out_shape,
    *,
    in_dtype: str,
    out_dtype: str | None = None,
    params: tuple = (),
) -> np.ndarray:
    """Run one FINN HW node (``finn.custom_op.fpgadataflow``) with qonnx ``execute_onnx``.

    ``params`` are ``(array, dtype_name)`` initializers for the node's inputs after the data
    input (weights, thresholds).
    """

    importlib.import_module("finn.custom_op.fpgadataflow")  # registers FINN's HW ops with qonnx
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    inp = helper.make_tensor_value_info("inp", TensorProto.FLOAT, list(x.shape))
    outp = helper.make_tensor_value_info("outp", TensorProto.FLOAT, list(out_shape))
    pnames = [f"param{k}" for k in range(len(params))]
    node = helper.make_node(
        op_type,
        ["inp", *pnames],
        ["outp"],
        domain="finn.custom_op.fpgadataflow",
        backend="fpgadataflow",
        **attrs,
    )
    graph = helper.make_graph([node], f"single_{op_type}", [inp], [outp])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="bitfab-tests"))
    model.set_tensor_datatype("inp", DataType[in_dtype])
    if out_dtype:
        model.set_tensor_datatype("outp", DataType[out_dtype])
    for name, (arr, dt) in zip(pnames, params, strict=True):
        model.set_initializer(name, np.asarray(arr, dtype=np.float32))
        model.set_tensor_datatype(name, DataType[dt])
    out = execute_onnx(model, {"inp": np.asarray(x, dtype=np.float32)})
    return np.asarray(out["outp"])


def onnx_execute(
    op_type: str,
    attrs: dict,
    x: np.ndarray,
    out_shape,
    *,
    domain: str = "",
    in_dtype: str | None = None,
    params: tuple = (),
    aux_outputs: int = 0,
    out_int64: bool = False,
) -> np.ndarray:
    """Run one standard ONNX or qonnx node (``domain="qonnx.custom_op.general"``) with qonnx
    ``execute_onnx`` - the functions FINN's HW ops delegate their Python execution to.
    ``params``: ``(array, dtype_name or None, numpy dtype)`` for the inputs after ``x``;
    ``aux_outputs`` node outputs (same shape) come before the returned one (TopK: values)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    inp = helper.make_tensor_value_info("inp", TensorProto.FLOAT, list(x.shape))
    elem = TensorProto.INT64 if out_int64 else TensorProto.FLOAT
    outp = helper.make_tensor_value_info("outp", elem, list(out_shape))
    aux = [f"aux{k}" for k in range(aux_outputs)]
    aux_vi = [helper.make_tensor_value_info(a, TensorProto.FLOAT, list(out_shape)) for a in aux]
    pnames = [f"param{k}" for k in range(len(params))]
    kwargs = {"domain": domain} if domain else {}
    node = helper.make_node(op_type, ["inp", *pnames], [*aux, "outp"], **attrs, **kwargs)
    graph = helper.make_graph([node], f"single_{op_type}", [inp], [*aux_vi, outp])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="bitfab-tests"))
    if in_dtype:
        model.set_tensor_datatype("inp", DataType[in_dtype])
    for name, (arr, dt, np_type) in zip(pnames, params, strict=True):
        model.set_initializer(name, np.asarray(arr, dtype=np_type))
        if dt:
            model.set_tensor_datatype(name, DataType[dt])
    out = execute_onnx(model, {"inp": np.asarray(x, dtype=np.float32)})
    return np.asarray(out["outp"])
