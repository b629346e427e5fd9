"""Take a leading layout Transpose out of the graph: the accelerator's input is in its order.

A CNN on a multi-channel image (brevitas_examples' CNV, 3 x 32 x 32) is exported NCHW, but FINN's
HW layers stream NHWC, so after the HW-layer conversion the graph starts with
``Transpose(perm=[0, 2, 3, 1])`` on the graph input, which no HW layer implements. As in FINN's
own flow (where the host driver packs the input NHWC), the transpose leaves the graph: the graph
input becomes the transposed tensor, and ``perm`` is stored in the ``bitfab_input`` record, so
whoever feeds the accelerator (the golden model, verification, the host link) applies it to the
model-order input (:func:`bitfab.dataflow.inputs.to_graph_order`).
"""

from __future__ import annotations

import json

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from bitfab.dataflow.inputs import INPUT_META


class AbsorbInputTranspose(Transformation):
    """Remove a Transpose that is the graph input's only consumer; record its ``perm``."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        inp = graph.input[0]
        consumers = model.find_consumers(inp.name) or []
        if len(consumers) != 1 or consumers[0].op_type != "Transpose":
            return model, False
        node = consumers[0]
        shape = list(model.get_tensor_shape(inp.name))
        perm_attr = get_by_name(node.attribute, "perm")
        perm = list(perm_attr.ints) if perm_attr is not None else list(range(len(shape)))[::-1]
        if perm[0] != 0:
            return model, False  # the batch axis must stay first
        out = node.output[0]
        out_shape = list(model.get_tensor_shape(out))
        dtype = model.get_tensor_datatype(inp.name)
        rec = json.loads(model.get_metadata_prop(INPUT_META) or "{}")
        prev = rec.get("perm")
        if prev is not None:
            return model, False  # one transpose is taken out; a second one stays (reported)
        rec["perm"] = perm
        rec["perm_shape"] = shape  # what the transpose applies to (model order, maybe reshaped)
        rec.setdefault("shape", shape)
        graph.node.remove(node)
        for vi in [v for v in graph.value_info if v.name == out]:
            graph.value_info.remove(vi)
        graph.input.remove(inp)
        graph.input.insert(
            0, helper.make_tensor_value_info(out, inp.type.tensor_type.elem_type, out_shape)
        )
        model.set_tensor_datatype(out, dtype)
        model.set_metadata_prop(INPUT_META, json.dumps(rec))
        return model, True
