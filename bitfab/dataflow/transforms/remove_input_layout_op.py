"""Drop a leading Reshape/Flatten/Transpose that leaves the input bytes in the same order."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name


def _transpose_keeps_order(shape: list[int], perm: list[int]) -> bool:
    """True if transposing ``shape`` by ``perm`` only moves axes of size 1 (memory order kept)."""
    kept = [ax for ax in perm if shape[ax] != 1]
    return kept == sorted(kept)


class RemoveInputLayoutOp(Transformation):
    """Remove the first node if it only re-labels the graph input's layout.

    FINN leaves the flatten of an MLP (``Reshape`` [1,1,28,28] -> [1,784]) and the NCHW -> NHWC
    ``Transpose`` of a one-channel CNN outside the HW layers. For a graph input both are pure
    re-labellings of the same bytes in the same order, so the graph input takes the node's output
    shape (e.g. [1,784] or [1,28,28,1]) and the node goes. A Transpose that really permutes data
    (more than one non-unit axis moved) is kept, and then reported as a non-HW node.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        inp = graph.input[0]
        consumers = model.find_consumers(inp.name) or []
        if len(consumers) != 1:
            return model, False
        node = consumers[0]
        if node.op_type not in ("Reshape", "Flatten", "Transpose") or node.input[0] != inp.name:
            return model, False
        in_shape = model.get_tensor_shape(inp.name)
        if node.op_type == "Transpose":
            perm_attr = get_by_name(node.attribute, "perm")
            perm = (
                list(perm_attr.ints) if perm_attr is not None else list(range(len(in_shape)))[::-1]
            )
            if not _transpose_keeps_order(in_shape, perm):
                return model, False
        out_name = node.output[0]
        out_shape = model.get_tensor_shape(out_name)
        if out_shape is None or int(np.prod(out_shape)) != int(np.prod(in_shape)):
            return model, False
        dtype = model.get_tensor_datatype(inp.name)
        layout = model.get_tensor_layout(out_name)
        graph.node.remove(node)
        # the node's output tensor becomes the graph input (same name keeps consumers intact)
        vi = model.get_tensor_valueinfo(out_name)
        if vi is not None and vi in graph.value_info:
            graph.value_info.remove(vi)
        new_in = helper.make_tensor_value_info(out_name, inp.type.tensor_type.elem_type, out_shape)
        graph.input.remove(inp)
        graph.input.insert(0, new_in)
        model.set_tensor_datatype(out_name, dtype)
        if layout is not None:
            model.set_tensor_layout(out_name, layout)
        return model, True
