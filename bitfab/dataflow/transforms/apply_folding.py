"""Set PE/SIMD/parallel_window on every HW layer from a folding, checking FINN's constraints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bitfab.dataflow.folding import Fold, check_folding, check_ties
from bitfab.dataflow.layers import is_hw_node, layer_shape
from bitfab.errors import BitfabError


class ApplyFolding(Transformation):
    """Write ``fold[name] = (PE, SIMD[, parallel_window])`` into the HW nodes' attributes.

    Every HW layer must be named in ``fold``; a violated constraint (PE must divide MH /
    NumChannels / Channels / Labels, SIMD must divide MW / IFMChannels, parallel_window=1 only on a
    non-depthwise ConvolutionInputGenerator at SIMD == IFMChannels, a depthwise sliding window's
    SIMD equal to its consumer's PE) raises :class:`BitfabError` naming the layer(s) and the
    constraint, before anything is changed. ``parallel_window`` (default 0) is written on every
    ConvolutionInputGenerator.
    """

    def __init__(self, fold: Mapping[str, Sequence[int]]) -> None:
        super().__init__()
        self.fold = {name: Fold(*f) for name, f in fold.items()}

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        nodes = [n for n in model.graph.node if is_hw_node(n)]
        shapes = []
        for node in nodes:
            if node.name not in self.fold:
                raise BitfabError(f"folding: HW layer {node.name} ({node.op_type}) has no PE/SIMD")
            shape = layer_shape(model, node)
            check_folding(shape, *self.fold[node.name])
            shapes.append(shape)
        check_ties(shapes, self.fold)
        changed = False
        for node in nodes:
            f = self.fold[node.name]
            inst = getCustomOp(node)
            attrs = inst.get_nodeattr_types()
            for key, value in (
                ("PE", f.pe),
                ("SIMD", f.simd),
                ("parallel_window", f.parallel_window),
            ):
                if key in attrs and inst.get_nodeattr(key) != value:
                    inst.set_nodeattr(key, int(value))
                    changed = True
        return model, changed
