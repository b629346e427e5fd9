"""Set PE/SIMD on every HW layer from a folding, checking FINN's divisibility constraints."""

from __future__ import annotations

from collections.abc import Mapping

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bitfab.dataflow.folding import check_folding
from bitfab.dataflow.layers import is_hw_node, layer_shape
from bitfab.errors import BitfabError


class ApplyFolding(Transformation):
    """Write ``fold[name] = (PE, SIMD)`` into the HW nodes' attributes.

    Every HW layer must be named in ``fold``; a violated constraint (PE must divide MH /
    NumChannels / Channels / Labels, SIMD must divide MW / IFMChannels) raises
    :class:`BitfabError` naming the layer and the constraint, before anything is changed.
    """

    def __init__(self, fold: Mapping[str, tuple[int, int]]) -> None:
        super().__init__()
        self.fold = dict(fold)

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        nodes = [n for n in model.graph.node if is_hw_node(n)]
        for node in nodes:
            if node.name not in self.fold:
                raise BitfabError(f"folding: HW layer {node.name} ({node.op_type}) has no PE/SIMD")
            check_folding(layer_shape(model, node), *self.fold[node.name])
        changed = False
        for node in nodes:
            pe, simd = self.fold[node.name]
            inst = getCustomOp(node)
            attrs = inst.get_nodeattr_types()
            for key, value in (("PE", pe), ("SIMD", simd)):
                if key in attrs and inst.get_nodeattr(key) != value:
                    inst.set_nodeattr(key, int(value))
                    changed = True
        return model, changed
