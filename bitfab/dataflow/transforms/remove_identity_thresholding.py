"""Remove a Thresholding layer that maps every input value to itself."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

#: Largest input value range checked exhaustively (values of the input data type).
MAX_VALUES = 1 << 16


def is_identity_thresholding(model: ModelWrapper, node) -> bool:  # noqa: ANN001
    """True if the Thresholding ``node`` outputs its input unchanged for every value its input
    data type allows (and both tensors have the same FINN data type)."""
    if node.op_type != "Thresholding":
        return False
    inst = getCustomOp(node)
    idt, odt = inst.get_input_datatype(), inst.get_output_datatype()
    if idt != odt or not idt.is_integer() or idt.name == "BIPOLAR":
        return False
    lo, hi = int(idt.min()), int(idt.max())
    if hi - lo + 1 > MAX_VALUES:
        return False
    thr = model.get_initializer(node.input[1])
    if thr is None:
        return False
    values = np.arange(lo, hi + 1, dtype=np.float64)
    act = float(inst.get_nodeattr("ActVal"))
    # FINN's multithreshold: out = count(x >= T[c, i]) + ActVal, for every channel row c
    counts = (values[None, :, None] >= thr.astype(np.float64)[:, None, :]).sum(axis=2)
    return bool(np.all(counts + act == values[None, :]))


class RemoveIdentityThresholding(Transformation):
    """Drop Thresholding layers that are identities on their input type.

    An unsigned b-bit input quantizer on pixels / 255 (the zoo's 8-bit CNN/MLP input) streamlines
    into a Thresholding with thresholds 1..255 from UINT8 to UINT8: ``count(x >= i)`` is ``x``.
    Removing it saves 255 comparators per channel and a pipeline stage; the golden tests check
    that classes and the remaining layer tensors do not change.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        for node in list(graph.node):
            if not is_identity_thresholding(model, node):
                continue
            src, dst = node.input[0], node.output[0]
            if dst in [o.name for o in graph.output]:
                continue
            for consumer in model.find_consumers(dst) or []:
                for k, name in enumerate(consumer.input):
                    if name == dst:
                        consumer.input[k] = src
            graph.node.remove(node)
            return model, True  # the pass is re-run until nothing changes
        return model, False
