"""Give a batch-1 dataflow graph a batch dimension of N (for faster Python execution only)."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from bitfab.dataflow.layers import is_hw_node


class SetBatchSize(Transformation):
    """Set the leading (batch) dimension of every activation tensor to ``n``.

    FINN's HW layers describe one image (``numInputVectors`` starts with 1; the sliding-window
    generator assumes batch 1) and ``execute_onnx`` refuses other input shapes. The Python
    execution of MVAU, Thresholding, ConvolutionInputGenerator (Im2Col), Pool, LabelSelect and
    FMPadding (``np.pad`` of the H, W axes) is however element-wise over the batch, so
    multiplying the first ``numInputVectors`` entry (MVAU, Thresholding, LabelSelect; FMPadding's
    single int) and ``BatchSize`` (Pool) by ``n`` and setting dimension 0
    of every non-initializer tensor to ``n`` runs ``n`` images in one pass. The result is for
    execution only, never for hardware generation; the golden model's tests check it against
    per-image execution tensor by tensor.
    """

    def __init__(self, n: int) -> None:
        super().__init__()
        if n < 1:
            raise ValueError(f"batch size must be >= 1, got {n}")
        self.n = int(n)

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        inits = {t.name for t in graph.initializer}
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            if vi.name in inits:
                continue
            dims = vi.type.tensor_type.shape.dim
            if len(dims) == 0 or dims[0].dim_value != 1:
                raise ValueError(f"tensor {vi.name}: expected batch dimension 1, got {dims}")
            dims[0].dim_value = self.n
        for node in graph.node:
            if not is_hw_node(node):
                continue
            inst = getCustomOp(node)
            attrs = inst.get_nodeattr_types()
            if "numInputVectors" in attrs:
                vecs = inst.get_nodeattr("numInputVectors")
                if isinstance(vecs, int):  # FMPadding: one int
                    inst.set_nodeattr("numInputVectors", vecs * self.n)
                else:
                    vecs = list(vecs)
                    vecs[0] *= self.n
                    inst.set_nodeattr("numInputVectors", vecs)
            if node.op_type == "Pool":
                inst.set_nodeattr("BatchSize", inst.get_nodeattr("BatchSize") * self.n)
        return model, False
