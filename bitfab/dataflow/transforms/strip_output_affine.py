"""Move the constant scale and bias after the last HW layer out of the graph, into metadata.

A values head (a regression output, a binary classifier's single output, raw scores) ends, after
streamlining, with the last HW layer's integer output followed by ``Mul`` / ``Add`` (/ ``Div`` /
``Sub``) nodes with constant operands: the output quantizer's scale, a bias. The hardware
streams the integers; the model's output is ``y = scale * q + bias`` elementwise. The pass
removes those nodes and stores ``scale`` and ``bias`` (broadcast to the output shape, float64
lists) as the ``bitfab_output_affine`` metadata (JSON), so the golden model and every report
can give the model's own values. Applying it again composes with what is already stored.
"""

from __future__ import annotations

import json

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from bitfab.dataflow.inputs import AFFINE_META

_OPS = ("Mul", "Add", "Div", "Sub")


def output_affine(model: ModelWrapper) -> tuple[np.ndarray, np.ndarray] | None:
    """``(scale, bias)`` stored by :class:`StripOutputAffine` (None if none was stripped)."""
    raw = model.get_metadata_prop(AFFINE_META)
    if not raw:
        return None
    rec = json.loads(raw)
    return np.asarray(rec["scale"], dtype=np.float64), np.asarray(rec["bias"], dtype=np.float64)


class StripOutputAffine(Transformation):
    """Remove trailing constant elementwise Mul/Add/Div/Sub nodes (see the module docstring)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        out = graph.output[0].name
        shape = list(model.get_tensor_shape(out))
        prev = output_affine(model)
        scale = np.ones(shape) if prev is None else np.broadcast_to(prev[0], shape).copy()
        bias = np.zeros(shape) if prev is None else np.broadcast_to(prev[1], shape).copy()
        changed = False
        while True:
            node = model.find_producer(out)
            if node is None or node.op_type not in _OPS or len(node.input) != 2:
                break
            consts = [model.get_initializer(name) for name in node.input]
            if (consts[0] is None) == (consts[1] is None):
                break  # both dynamic or both constant
            k = 0 if consts[0] is None else 1  # index of the dynamic operand
            c = np.asarray(consts[1 - k], dtype=np.float64)
            x = node.input[k]
            if list(model.get_tensor_shape(x)) != shape:
                break  # a broadcast that changes the shape is not elementwise on the output
            c = np.broadcast_to(c, shape)
            # out = scale * t + bias with t = node(x): fold node into (scale, bias)
            if node.op_type == "Mul":
                scale = scale * c
            elif node.op_type == "Div" and k == 0:
                scale = scale / c
            elif node.op_type == "Add":
                bias = bias + scale * c
            elif node.op_type == "Sub":
                if k == 0:  # x - c
                    bias = bias - scale * c
                else:  # c - x
                    bias, scale = bias + scale * c, -scale
            else:
                break  # c / x is not affine
            graph.node.remove(node)
            dtype = model.get_tensor_datatype(x)
            for vi in [v for v in graph.value_info if v.name == x]:
                graph.value_info.remove(vi)
            graph.output.remove(graph.output[0])
            graph.output.insert(0, helper.make_tensor_value_info(x, TensorProto.FLOAT, shape))
            model.set_tensor_datatype(x, dtype)
            out = x
            changed = True
        if changed:
            rec = {"scale": scale.tolist(), "bias": bias.tolist(), "shape": shape}
            model.set_metadata_prop(AFFINE_META, json.dumps(rec))
        return model, False
