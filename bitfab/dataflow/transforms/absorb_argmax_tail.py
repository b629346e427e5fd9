"""Remove a trailing Softmax / LogSoftmax / ArgMax / TopK(k=1): none changes the predicted class.

Exports from other tools often end a classifier with a Softmax (probabilities) or an ArgMax
(the class index). bitfab's hardware ends a classifier with a label select (FINN's TopK k=1),
so these tails are absorbed: the graph output becomes their input (the scores) and the removed
op types are listed in the model's ``bitfab_tail`` metadata (JSON list). An ArgMax or TopK tail
means the model's output is a class index, so the dataflow stage gives it a class head.

Only a tail over the class axis of a ``[1, classes]`` output is absorbed; anything else is left
in place (and then reported as a node outside the HW layers).
"""

from __future__ import annotations

import json

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name

from bitfab.dataflow.inputs import TAIL_META

#: tails whose output is the class index (the head must select a label)
CLASS_TAILS = ("ArgMax", "TopK")


def _int_attr(node, name: str, default: int) -> int:  # noqa: ANN001
    a = get_by_name(node.attribute, name)
    return default if a is None else int(a.i)


def _over_classes(model: ModelWrapper, node) -> bool:  # noqa: ANN001
    """True if ``node`` works on the class axis of a ``[1, classes]`` score tensor."""
    shape = model.get_tensor_shape(node.input[0])
    if shape is None or len(shape) != 2 or shape[0] != 1 or shape[1] < 2:
        return False
    # ONNX defaults: ArgMax axis 0 (the batch: not a class argmax), TopK and Softmax -1
    axis = _int_attr(node, "axis", 0 if node.op_type == "ArgMax" else -1)
    if axis not in (1, -1):
        return False
    if node.op_type == "TopK":
        k = model.get_initializer(node.input[1]) if len(node.input) > 1 else None
        if k is None or int(np.asarray(k).reshape(-1)[0]) != 1:
            return False
        if _int_attr(node, "largest", 1) != 1:
            return False
        # the graph output must be the indices (TopK's second output)
        return len(node.output) > 1 and node.output[1] == model.graph.output[0].name
    if node.op_type == "ArgMax":
        return _int_attr(node, "select_last_index", 0) == 0
    return True


class AbsorbArgmaxTail(Transformation):
    """Drop trailing Softmax/LogSoftmax/ArgMax/TopK(k=1) nodes over the class axis."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        out = graph.output[0].name
        node = model.find_producer(out)
        if node is None or node.op_type not in ("Softmax", "LogSoftmax", *CLASS_TAILS):
            return model, False
        if not _over_classes(model, node):
            return model, False
        scores = node.input[0]
        shape = model.get_tensor_shape(scores)
        graph.node.remove(node)
        for vi in [v for v in graph.value_info if v.name == scores]:
            graph.value_info.remove(vi)
        graph.output.remove(graph.output[0])
        graph.output.insert(0, helper.make_tensor_value_info(scores, TensorProto.FLOAT, shape))
        tail = json.loads(model.get_metadata_prop(TAIL_META) or "[]")
        model.set_metadata_prop(TAIL_META, json.dumps([node.op_type, *tail]))
        return model, True
