"""Move a Flatten/Reshape in front of a per-tensor (shared-threshold) MultiThreshold."""

from __future__ import annotations

import numpy as np
import qonnx.core.data_layout as dl
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name


def _flatten_shape(node, in_shape: list[int], out_shape: list[int] | None) -> bool:  # noqa: ANN001
    """True if ``node`` (Flatten or Reshape) turns ``[N, ...]`` into ``[N, prod(...)]``."""
    if out_shape is None or len(in_shape) < 2:
        return False
    if node.op_type == "Flatten":
        axis = get_by_name(node.attribute, "axis")
        if (axis.i if axis is not None else 1) != 1:
            return False
    return list(out_shape) == [int(in_shape[0]), int(np.prod(in_shape[1:]))]


class MoveFlattenBeforeSharedThreshold(Transformation):
    """``x -> MultiThreshold(T) -> Flatten -> y`` becomes ``x -> Flatten -> MultiThreshold(T) -> y``
    when every channel of ``T`` holds the same thresholds (a per-tensor quantizer).

    A brevitas model that quantizes its input before ``torch.flatten`` (bitfab's zoo MLPs: the
    1-bit ``x >= 128`` binarisation or a k-bit input quantizer on the ``[N, 1, 28, 28]`` image)
    streamlines into a MultiThreshold on a one-channel NCHW tensor followed by a Flatten. FINN
    turns it into a ``Thresholding`` with ``NumChannels=1`` over ``numInputVectors=[1, 28, 28]``:
    PE can only be 1, so the layer takes 784 cycles per image whatever the folding, and caps the
    whole pipeline. FINN's own TFC (Brevitas ``bnn_pynq`` FC) flattens first, so its input
    thresholding has 784 channels. With shared thresholds the MultiThreshold is element-wise, so
    it commutes with the flatten: after this pass it sees ``[N, C*H*W]`` (``NC`` layout),
    InferThresholdingLayer makes a ``Thresholding`` with ``NumChannels = C*H*W`` and threshold
    shape ``[1, numSteps]`` (one row shared by all channels), PE can go up to ``C*H*W``, and
    :class:`RemoveInputLayoutOp` drops the flatten that is now the first node.

    Conditions (otherwise the graph is left alone): the MultiThreshold's thresholds are an
    initializer whose rows are all equal (stored back as one row ``[1, numSteps]``), its output
    feeds exactly one node and is not a graph output, that node is a ``Flatten(axis=1)`` or a
    ``Reshape`` to ``[N, prod(rest)]``, and the MultiThreshold's input has at least 3 dimensions.
    Per-channel thresholds on more than one channel are never moved (that would change which
    threshold row each element sees). The middle tensor takes the MultiThreshold's input data
    type; the MultiThreshold's ``data_layout`` becomes ``NC``.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        for mt in list(graph.node):
            if mt.op_type != "MultiThreshold":
                continue
            thr = model.get_initializer(mt.input[1])
            x, mid = mt.input[0], mt.output[0]
            in_shape = model.get_tensor_shape(x)
            if thr is None or thr.ndim != 2 or in_shape is None or len(in_shape) < 3:
                continue
            if not np.all(thr == thr[:1]):
                continue
            if mid in [o.name for o in graph.output]:
                continue
            consumers = model.find_consumers(mid) or []
            if len(consumers) != 1 or consumers[0].op_type not in ("Flatten", "Reshape"):
                continue
            flat = consumers[0]
            if flat.input[0] != mid:
                continue
            y = flat.output[0]
            out_shape = model.get_tensor_shape(y)
            if not _flatten_shape(flat, in_shape, out_shape):
                continue
            in_dt = model.get_tensor_datatype(x)
            out_dt = model.get_tensor_datatype(y)
            # rewire: x -> flat -> mid -> mt -> y
            flat.input[0] = x
            flat.output[0] = mid
            mt.input[0] = mid
            mt.output[0] = y
            if thr.shape[0] != 1:
                model.set_initializer(mt.input[1], np.ascontiguousarray(thr[:1]))
            model.set_tensor_shape(mid, list(out_shape))
            model.set_tensor_datatype(mid, in_dt if in_dt is not None else DataType["FLOAT32"])
            model.set_tensor_datatype(y, out_dt)
            model.set_tensor_layout(mid, dl.NC)
            model.set_tensor_layout(y, dl.NC)
            getCustomOp(mt).set_nodeattr("data_layout", "NC")
            # the flatten now runs first: put it where the MultiThreshold was
            i_mt = list(graph.node).index(mt)
            graph.node.remove(flat)
            graph.node.insert(i_mt, flat)
            return model, True  # re-run until nothing changes
        return model, False
