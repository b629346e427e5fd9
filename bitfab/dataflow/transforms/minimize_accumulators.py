"""Minimal accumulator widths for MVAUs, correct for XNOR-popcount layers too."""

from __future__ import annotations

import math

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes


class MinimizeAccumulators(Transformation):
    """Set each MVAU's ``accDataType`` (and its output type without activation) to the narrowest
    type that holds every possible accumulator value.

    For ordinary MVAUs this is FINN's ``minimize_accumulator_width`` (range from the actual
    weights and the input type). For ``binaryXnorMode`` MVAUs FINN computes the range of the
    bipolar-weight x binary-input dot product, but the accumulator there is the XNOR popcount,
    which lies in ``[0, MW]``; FINN's narrower range then lets RoundAndClipThresholds clip
    thresholds that the popcount can reach (changing the network's output). Those layers get
    ``UINT(ceil(log2(MW + 1)))`` instead, as FINN's MVAU HLS/RTL popcount uses.
    Like FINN, a last layer without activation rounds its output width up to a multiple of 8.
    """

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        for idx in range(len(model.graph.node)):
            node = model.graph.node[idx]
            if node.op_type != "MVAU":
                continue
            inst = getCustomOp(node)
            if not inst.get_nodeattr("binaryXnorMode"):
                inst.minimize_accumulator_width(model)
            else:
                bits = max(1, math.ceil(math.log2(inst.get_nodeattr("MW") + 1)))
                if inst.get_nodeattr("noActivation"):
                    if model.find_direct_successors(node) is None:
                        bits = 8 * math.ceil(bits / 8)
                    inst.set_nodeattr("outputDataType", f"UINT{bits}")
                inst.set_nodeattr("accDataType", f"UINT{bits}")
            model = model.transform(InferDataTypes())
        return model, False
