"""Give a Trunc FLOOR rounding where the rounding mode cannot change its result.

Brevitas' ``TruncAvgPool2d`` exports ``AveragePool -> Trunc`` with rounding mode ROUND (its
default ``RoundTo8bit``); FINN turns ``AveragePool -> Trunc`` into its ``QuantAvgPool2d`` only
for FLOOR. The Trunc rounds ``q / 2**s``, ``q`` the integer window sum and ``2**s`` the
truncation scale (QONNX Trunc v2: ``output_scale / scale``; v1: ``2**(in_bits - out_bits)``).
When ``s <= 0`` nothing is shifted out (the output has at least the bits the sum needs), the
value being rounded is already an integer and every rounding mode gives the same result, so FLOOR
is exact. Other Truncs are left alone (and then refused by name by the dataflow stage).
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import get_by_name


def trunc_shift(model: ModelWrapper, node) -> float | None:  # noqa: ANN001
    """The Trunc's truncation shift ``s`` (bits dropped; None if not constant)."""
    consts = [model.get_initializer(i) if i else None for i in node.input]
    if len(node.input) >= 6:  # v2: X, scale, zeropt, in_bits, out_scale, out_bits
        scale, out_scale = consts[1], consts[4]
        if scale is None or out_scale is None:
            return None
        ratio = np.asarray(out_scale, np.float64) / np.asarray(scale, np.float64)
        return float(np.max(np.round(np.log2(ratio))))
    if len(node.input) >= 5 and consts[3] is not None and consts[4] is not None:  # v1
        return float(np.max(np.asarray(consts[3]) - np.asarray(consts[4])))
    return None


class ExactTruncFloor(Transformation):
    """Set ``rounding_mode = "FLOOR"`` on every Trunc whose shift is <= 0 (see module doc)."""

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for node in model.graph.node:
            if node.op_type != "Trunc":
                continue
            rm = get_by_name(node.attribute, "rounding_mode")
            if rm is None or rm.s.decode().upper() == "FLOOR":
                continue
            s = trunc_shift(model, node)
            if s is not None and s <= 0:
                rm.s = b"FLOOR"
        return model, False
