"""Make the graph input the integer codes of the model's own input quantizer.

A QONNX model quantizes its float input with a ``Quant`` (k-bit signed or unsigned, scale,
zero point 0) or a ``BipolarQuant`` node, possibly behind layout ops (Flatten, Reshape,
Transpose...). What the hardware can take is that quantizer's integer output: the graph input
becomes the code ``q`` (FINN data type ``INTk``/``UINTk``/``BINARY``/``BIPOLAR``) and the
quantizer becomes ``Mul(q, scale)``, which streamlining folds into the next layer. The model
computes the same function of the codes as it did of the floats they quantize to.

The record of the input (encoding, data type, range, scale, the quantizer's attributes, which
:func:`bitfab.dataflow.inputs.quantize` uses to turn float inputs into codes) is stored as the
model's ``bitfab_input`` metadata (JSON).
"""

from __future__ import annotations

import json

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from bitfab.dataflow.inputs import INPUT_META
from bitfab.errors import BitfabError

#: ops that move or relabel values without changing them (passed through on the way to the
#: input quantizer)
LAYOUT_OPS = ("Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze")


def _attr(node, name: str, default):  # noqa: ANN001, ANN202
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    return a.s.decode() if a.type == a.STRING else a.i


def input_quantizer(model: ModelWrapper):  # noqa: ANN201 - an onnx NodeProto
    """The first quantizer behind the graph input (through :data:`LAYOUT_OPS` only).

    Raises :class:`BitfabError` when the input feeds several nodes or reaches another op first.
    """
    inp = model.graph.input[0].name
    t = inp
    while True:
        consumers = model.find_consumers(t) or []
        if len(consumers) != 1:
            raise BitfabError(
                f"the graph input {inp!r} feeds {len(consumers)} nodes; bitfab needs one input "
                "quantizer (a QuantIdentity) that everything else reads"
            )
        node = consumers[0]
        if node.op_type in LAYOUT_OPS:
            t = node.output[0]
            continue
        if node.op_type in ("Quant", "BipolarQuant"):
            return node
        raise BitfabError(
            f"the graph input {inp!r} reaches node {node.name} ({node.op_type}) before any "
            "quantizer; start the model with a QuantIdentity so the hardware gets integers"
        )


def _const(model: ModelWrapper, node, index: int, what: str) -> np.ndarray:  # noqa: ANN001
    v = model.get_initializer(node.input[index]) if len(node.input) > index else None
    if v is None:
        raise BitfabError(
            f"input quantizer {node.name}: its {what} is computed at run time; export it with "
            f"a constant (per-tensor or per-channel) {what}"
        )
    return np.asarray(v, dtype=np.float64)


def quantizer_record(model: ModelWrapper, node) -> dict:  # noqa: ANN001
    """What the input quantizer ``node`` makes of a float: data type, code range, scale."""
    scale = _const(model, node, 1, "scale")
    if np.any(scale <= 0):
        raise BitfabError(f"input quantizer {node.name}: scale must be positive")
    rec = {"encoding": "codes", "quantizer": node.name, "op": node.op_type}
    if node.op_type == "BipolarQuant":
        rec.update(dtype="BIPOLAR", min=-1, max=1, bit_width=1)
    else:
        zp = _const(model, node, 2, "zero point")
        bits = _const(model, node, 3, "bit width")
        if np.any(zp != 0):
            raise BitfabError(
                f"input quantizer {node.name}: zero point {zp.reshape(-1)[0]:g}; bitfab takes "
                "symmetric quantizers (zero point 0) at the input"
            )
        b = float(bits.reshape(-1)[0])
        if bits.size != 1 or not b.is_integer() or not 1 <= b <= 8:
            raise BitfabError(
                f"input quantizer {node.name}: bit width {b:g}; the input takes 1-8 bits"
            )
        b = int(b)
        signed, narrow = bool(_attr(node, "signed", 1)), bool(_attr(node, "narrow", 0))
        if signed and b < 2:
            raise BitfabError(
                f"input quantizer {node.name}: signed 1-bit; use a bipolar (binary) quantizer"
            )
        if signed:
            lo, hi, dtype = -(2 ** (b - 1)) + int(narrow), 2 ** (b - 1) - 1, f"INT{b}"
        else:
            lo, hi = 0, 2**b - 1 - int(narrow)
            dtype = "BINARY" if b == 1 else f"UINT{b}"
        rec.update(
            dtype=dtype,
            min=lo,
            max=hi,
            bit_width=b,
            signed=signed,
            narrow=narrow,
            rounding_mode=str(_attr(node, "rounding_mode", "ROUND")),
        )
    rec["scale"] = scale.tolist()
    return rec


class QuantizerInput(Transformation):
    """Replace the input quantizer by ``Mul(codes, scale)``; the graph input holds the codes.

    Applies to a cleaned-up QONNX graph (before ``ConvertQONNXtoFINN``). Applying it twice does
    nothing the second time (the ``bitfab_input`` metadata is set).
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        if model.get_metadata_prop(INPUT_META):
            return model, False
        node = input_quantizer(model)
        rec = quantizer_record(model, node)
        inp = model.graph.input[0].name
        rec["shape"] = list(model.get_tensor_shape(inp))
        if node.input[0] != inp and np.asarray(rec["scale"]).size > 1:
            raise BitfabError(
                f"input quantizer {node.name}: a per-channel scale behind a layout op "
                "(Flatten/Reshape/Transpose) on the input; quantize the input before reshaping "
                "it, or use a per-tensor input quantizer"
            )
        if np.asarray(rec["scale"]).size > 1:  # broadcast to the input shape: one per value
            full = np.broadcast_to(np.asarray(rec["scale"], np.float64), rec["shape"])
            rec["scale"] = full.tolist()
        scale_name = node.input[1]
        mul = helper.make_node(
            "Mul", [node.input[0], scale_name], [node.output[0]], name=f"{node.name}_scale"
        )
        graph = model.graph
        graph.node.insert(list(graph.node).index(node), mul)
        graph.node.remove(node)
        model.set_tensor_datatype(inp, DataType[rec["dtype"]])
        model.set_metadata_prop(INPUT_META, json.dumps(rec))
        return model, False
