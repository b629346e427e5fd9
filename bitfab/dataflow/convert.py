"""QONNX -> FINN HW-layer dataflow graph, the way FINN's MLP (TFC) and CNN (CNV) flows do it.

Stages (FINN's build steps ``qonnx_to_finn``, ``tidy_up``, ``streamline``, ``convert_to_hw`` and
``minimize_bit_width``, with its classic non-standalone thresholds so an MVAU carries the
activation thresholds of the layer after it):

1. qonnx ``cleanup_model`` and ``ConvertQONNXtoFINN`` (Quant -> MultiThreshold / integer weights);
2. :class:`PrependPixelScale` (graph input = raw UINT8 pixels, then ``Mul(1/255)``) and
   ``InsertTopK(k=1)`` (the graph returns the class index);
3. tidy-up: InferShapes, FoldConstants, GiveUniqueNodeNames, GiveReadableTensorNames,
   InferDataTypes, RemoveStaticGraphInputs;
4. streamline: AbsorbScalarBiasIntoMultiThreshold, Streamline, for CNNs LowerConvsToMatMul,
   MakeMaxPoolNHWC, AbsorbTransposeIntoMultiThreshold, AbsorbConsecutiveTransposes; then
   ConvertBipolarMatMulToXnorPopcount, Streamline, AbsorbScalarMulAddIntoTopK, InferDataLayouts,
   RemoveUnusedTensors, RoundAndClipThresholds; then bitfab's
   :class:`MoveFlattenBeforeSharedThreshold` (an MLP's per-tensor input quantizer on the image
   before its flatten moves behind the flatten, so its Thresholding has 784 channels to fold, as
   in FINN's own TFC, which flattens first);
5. HW layers: InferBinaryMatrixVectorActivation, InferQuantizedMatrixVectorActivation,
   InferLabelSelectLayer, InferThresholdingLayer, InferPool, InferConvInpGen (which also turns
   the padding of a ``padding > 0`` convolution's Im2Col into an ``FMPadding`` HW layer in front
   of the sliding window), RemoveCNVtoFCFlatten, AbsorbConsecutiveTransposes,
   :class:`RemoveInputLayoutOp`;
6. :class:`MinimizeAccumulators` (FINN's MinimizeAccumulatorWidth, fixed for XNOR-popcount
   MVAUs), RoundAndClipThresholds, InferDataTypes, :class:`RemoveIdentityThresholding`, names.

The result must contain only the op types in :data:`bitfab.dataflow.folding.HW_OP_TYPES`
(MVAU, Thresholding, ConvolutionInputGenerator, Pool, LabelSelect, FMPadding); any other node is
reported as a :class:`BitfabError` naming it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Callable

import finn.transformation.streamline.absorb as absorb  # noqa: E402
from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (  # noqa: E402
    InferBinaryMatrixVectorActivation,
)
from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen  # noqa: E402
from finn.transformation.fpgadataflow.convert_to_hw.label_select import (  # noqa: E402
    InferLabelSelectLayer,
)
from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool  # noqa: E402
from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (  # noqa: E402
    InferQuantizedMatrixVectorActivation,
)
from finn.transformation.fpgadataflow.convert_to_hw.thresholding import (  # noqa: E402
    InferThresholdingLayer,
)
from finn.transformation.move_reshape import RemoveCNVtoFCFlatten  # noqa: E402
from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN  # noqa: E402
from finn.transformation.streamline import Streamline  # noqa: E402
from finn.transformation.streamline.reorder import MakeMaxPoolNHWC  # noqa: E402
from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds  # noqa: E402
from qonnx.core.modelwrapper import ModelWrapper  # noqa: E402
from qonnx.transformation.bipolar_to_xnor import ConvertBipolarMatMulToXnorPopcount  # noqa: E402
from qonnx.transformation.fold_constants import FoldConstants  # noqa: E402
from qonnx.transformation.general import (  # noqa: E402
    GiveReadableTensorNames,
    GiveUniqueNodeNames,
    RemoveStaticGraphInputs,
    RemoveUnusedTensors,
    SortGraph,
)
from qonnx.transformation.infer_data_layouts import InferDataLayouts  # noqa: E402
from qonnx.transformation.infer_datatypes import InferDataTypes  # noqa: E402
from qonnx.transformation.infer_shapes import InferShapes  # noqa: E402
from qonnx.transformation.insert_topk import InsertTopK  # noqa: E402
from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

from bitfab.dataflow.folding import HW_OP_TYPES  # noqa: E402
from bitfab.dataflow.layers import is_hw_node  # noqa: E402
from bitfab.dataflow.transforms import (  # noqa: E402
    MinimizeAccumulators,
    MoveFlattenBeforeSharedThreshold,
    PrependPixelScale,
    RemoveIdentityThresholding,
    RemoveInputLayoutOp,
)
from bitfab.errors import BitfabError  # noqa: E402


def _qonnx_to_finn(m: ModelWrapper) -> ModelWrapper:
    m = cleanup_model(m)
    return m.transform(ConvertQONNXtoFINN())


def _prepare(m: ModelWrapper) -> ModelWrapper:
    m = m.transform(InferShapes())
    m = m.transform(PrependPixelScale())
    return m.transform(InsertTopK(k=1))


def _tidy_up(m: ModelWrapper) -> ModelWrapper:
    for t in (
        InferShapes(),
        FoldConstants(),
        GiveUniqueNodeNames(),
        GiveReadableTensorNames(),
        InferDataTypes(),
        RemoveStaticGraphInputs(),
    ):
        m = m.transform(t)
    return m


def _streamline(m: ModelWrapper) -> ModelWrapper:
    m = m.transform(absorb.AbsorbScalarBiasIntoMultiThreshold())
    m = m.transform(Streamline())
    if m.get_nodes_by_op_type("Conv"):
        m = m.transform(LowerConvsToMatMul())
        m = m.transform(MakeMaxPoolNHWC())
        m = m.transform(absorb.AbsorbTransposeIntoMultiThreshold())
        m = m.transform(MakeMaxPoolNHWC())
        m = m.transform(absorb.AbsorbConsecutiveTransposes())
    m = m.transform(ConvertBipolarMatMulToXnorPopcount())
    m = m.transform(Streamline())
    m = m.transform(absorb.AbsorbScalarMulAddIntoTopK())
    m = m.transform(InferDataLayouts())
    m = m.transform(RemoveUnusedTensors())
    m = m.transform(RoundAndClipThresholds())
    m = m.transform(MoveFlattenBeforeSharedThreshold())
    m = m.transform(InferShapes())
    m = m.transform(InferDataTypes())
    return m.transform(InferDataLayouts())


def _to_hw(m: ModelWrapper) -> ModelWrapper:
    for t in (
        InferBinaryMatrixVectorActivation(),
        InferQuantizedMatrixVectorActivation(),
        InferLabelSelectLayer(),
        InferThresholdingLayer(),
        InferPool(),
        InferConvInpGen(),
        RemoveCNVtoFCFlatten(),
        absorb.AbsorbConsecutiveTransposes(),
        RemoveInputLayoutOp(),
        InferShapes(),
        InferDataTypes(),
    ):
        m = m.transform(t)
    return m


def _minimize(m: ModelWrapper) -> ModelWrapper:
    m = m.transform(MinimizeAccumulators())
    m = m.transform(RoundAndClipThresholds())
    m = m.transform(InferDataTypes())
    m = m.transform(RemoveIdentityThresholding())
    m = m.transform(RemoveUnusedTensors())
    m = m.transform(SortGraph())
    m = m.transform(GiveUniqueNodeNames())
    return m.transform(GiveReadableTensorNames())


#: The conversion stages, in order: (label shown in the progress line, function).
STAGES: list[tuple[str, Callable[[ModelWrapper], ModelWrapper]]] = [
    ("QONNX -> FINN-ONNX", _qonnx_to_finn),
    ("pixel input and TopK", _prepare),
    ("tidy-up", _tidy_up),
    ("streamline", _streamline),
    ("convert to HW layers", _to_hw),
    ("minimize accumulators", _minimize),
]


def non_hw_nodes(model: ModelWrapper) -> list:
    """Nodes that are not bitfab HW layers (the conversion must leave none)."""
    return [n for n in model.graph.node if not is_hw_node(n)]


def _hint(model: ModelWrapper, node) -> str:  # noqa: ANN001
    consumers = model.find_consumers(node.output[0]) or []
    if (
        node.op_type in ("Mul", "Add")
        and any(c.op_type in ("TopK", "Add") for c in consumers)
        or (node.op_type in ("Mul", "Add") and not consumers)
    ):
        return (
            "a per-channel scale/bias after the last layer cannot be absorbed into the argmax; "
            "end the model with a scalar (TensorNorm-like) affine or none"
        )
    if node.op_type in ("MatMul", "Conv"):
        return "its input is not quantized to integers; put a QuantIdentity/QuantReLU before it"
    supported = ", ".join(HW_OP_TYPES)
    if node.domain.startswith("finn.custom_op.fpgadataflow"):
        return (
            f"FINN made it a HW layer, but bitfab's dataflow stage does not support "
            f"{node.op_type} (it supports {supported}); change the model to avoid it"
        )
    return (
        f"no FINN HW-layer conversion that bitfab runs maps this {node.op_type} node (bitfab's "
        f"HW layers: {supported}); remove it or replace it with layers that lower to those"
    )


def check_all_hw(model: ModelWrapper, source: str) -> None:
    """Raise :class:`BitfabError` naming the first node that is not one of ``HW_OP_TYPES``."""
    rest = non_hw_nodes(model)
    if rest:
        # name an op with no HW layer at all first, then leftover scale/bias/layout nodes, then
        # the TopK (which only stays because of what is in front of it)
        plain = ("Mul", "Add", "Sub", "Div", "Reshape", "Transpose", "Flatten")
        rest.sort(key=lambda node: 2 if node.op_type == "TopK" else int(node.op_type in plain))
        n = rest[0]
        more = f" (and {len(rest) - 1} more non-HW nodes)" if len(rest) > 1 else ""
        raise BitfabError(
            f"{source}: node {n.name} ({n.op_type}) stays outside the HW layers after "
            f"streamlining{more}: {_hint(model, n)}"
        )
    if not any(n.op_type == "MVAU" for n in model.graph.node):
        raise BitfabError(f"{source}: no MVAU layer after conversion; allowed {HW_OP_TYPES}")


def to_dataflow(
    model: ModelWrapper,
    source: str = "model",
    on_stage: Callable[[int, str], None] | None = None,
) -> ModelWrapper:
    """Convert a loaded QONNX model into a FINN HW-layer graph (all nodes in ``HW_OP_TYPES``).

    ``on_stage(i, label)`` is called before stage ``i`` (progress display). FINN's own warnings
    and prints are silenced. Failures inside FINN become a :class:`BitfabError` naming
    ``source`` and the stage.
    """
    finn_log = logging.getLogger("finn_logger")
    level = finn_log.level
    finn_log.setLevel(logging.ERROR)
    try:
        return _run_stages(model, source, on_stage)
    finally:
        finn_log.setLevel(level)


def _run_stages(
    model: ModelWrapper, source: str, on_stage: Callable[[int, str], None] | None
) -> ModelWrapper:
    for i, (label, fn) in enumerate(STAGES):
        if on_stage is not None:
            on_stage(i, label)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                model = fn(model)
        except BitfabError:
            raise
        except Exception as e:  # FINN asserts on graphs it cannot streamline
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise BitfabError(
                f"{source}: FINN failed in stage '{label}' ({type(e).__name__}: {msg[:160]})"
            ) from None
    check_all_hw(model, source)
    return model
