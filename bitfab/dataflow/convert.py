"""QONNX -> FINN HW-layer dataflow graph, the way FINN's MLP (TFC) and CNN (CNV) flows do it.

Stages (FINN's build steps ``qonnx_to_finn``, ``tidy_up``, ``streamline``, ``convert_to_hw`` and
``minimize_bit_width``, with its classic non-standalone thresholds so an MVAU carries the
activation thresholds of the layer after it):

1. qonnx ``cleanup_model`` and ``ConvertQONNXtoFINN`` (Quant -> MultiThreshold / integer weights);
2. the input and the head (:func:`choose_input`, :func:`choose_head`): a model that starts
   from an image (NCHW with 1 or 3 channels, or 784 values) gets :class:`PrependPixelScale`
   (graph input = raw UINT8 pixels, then ``Mul(1/255)``); any other model gets
   :class:`QuantizerInput` (graph input = the integer codes of its own input quantizer). A
   trailing Softmax/LogSoftmax/ArgMax/TopK(k=1) is absorbed (:class:`AbsorbArgmaxTail`). A class
   head (raw logits, or an absorbed tail) gets ``InsertTopK(k=1)`` (the graph returns the class
   index); a values head (one output or a quantized output, or ``head="values"``) keeps the last
   layer's integers, its trailing scale/bias stripped into metadata (:class:`StripOutputAffine`);
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
   :class:`RemoveInputLayoutOp`, :class:`AbsorbInputTranspose` (a multi-channel CNN's NCHW -> NHWC
   input transpose leaves the graph; the feeder applies it), for a values head :class:`StripOutputAffine`;
6. :class:`MinimizeAccumulators` (FINN's MinimizeAccumulatorWidth, fixed for XNOR-popcount
   MVAUs), RoundAndClipThresholds, InferDataTypes, :class:`RemoveIdentityThresholding`, names.

The result must contain only the op types in :data:`bitfab.dataflow.folding.HW_OP_TYPES`
(MVAU, Thresholding, ConvolutionInputGenerator, Pool, LabelSelect, FMPadding); any other node is
reported as a :class:`BitfabError` naming it.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Callable

import finn.transformation.streamline.absorb as absorb  # noqa: E402
import numpy as np  # noqa: E402
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
from qonnx.util.basic import get_by_name  # noqa: E402
from qonnx.util.cleanup import cleanup_model  # noqa: E402

from bitfab.dataflow.folding import HW_OP_TYPES  # noqa: E402
from bitfab.dataflow.inputs import (  # noqa: E402
    AFFINE_META,
    HEAD_META,
    INPUT_META,
    MEMORY_PLAN_META,
    TAIL_META,
)
from bitfab.dataflow.layers import is_hw_node  # noqa: E402
from bitfab.dataflow.load import model_format  # noqa: E402
from bitfab.dataflow.transforms import (  # noqa: E402
    AbsorbArgmaxTail,
    AbsorbInputTranspose,
    ExactTruncFloor,
    MinimizeAccumulators,
    MoveFlattenBeforeSharedThreshold,
    PrependPixelScale,
    QuantizerInput,
    RemoveIdentityThresholding,
    RemoveInputLayoutOp,
    StripOutputAffine,
)
from bitfab.dataflow.transforms.absorb_argmax_tail import CLASS_TAILS  # noqa: E402
from bitfab.errors import BitfabError  # noqa: E402

#: input modes: ``auto`` (pixels for an image-shaped input, else codes), ``pixels``, ``codes``
INPUT_MODES = ("auto", "pixels", "codes")
#: head modes: ``auto`` (:func:`choose_head`: class for raw logits or an absorbed tail, values for
#: one output or a quantized output)
HEAD_MODES = ("auto", "class", "values")
#: ops between a quantizer and the graph output that keep its values quantized
QUANT_LAYOUT_OPS = ("Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Transpose")


def choose_input(shape: list[int], mode: str = "auto") -> str:
    """``"pixels"`` or ``"codes"`` for a model whose graph input has ``shape`` (batch first).

    ``auto``: pixels when the input looks like an image (NCHW with 1 or 3 channels and at least
    8 x 8 pixels, or a flat 784-value vector: a 28 x 28 image), else codes.
    """
    if mode not in INPUT_MODES:
        raise BitfabError(f"--input {mode!r}: expected one of {', '.join(INPUT_MODES)}")
    if mode != "auto":
        return mode
    image = len(shape) == 4 and shape[1] in (1, 3) and min(shape[2:]) >= 8
    return "pixels" if image or (len(shape) == 2 and shape[1] == 784) else "codes"


def ends_in_quantizer(model: ModelWrapper) -> bool:
    """True if the graph output is a quantizer's output, behind layout ops only (in FINN-ONNX:
    a MultiThreshold's, behind layout ops and its constant output scale/bias): the model's
    output is a quantized value (a regression output, a binary classifier's sign)."""
    t = model.graph.output[0].name
    affine = ("Mul", "Add", "Sub", "Div")
    while (node := model.find_producer(t)) is not None and (
        node.op_type in QUANT_LAYOUT_OPS
        or (
            node.op_type in affine and any(model.get_initializer(i) is not None for i in node.input)
        )
    ):
        t = next(i for i in node.input if model.get_initializer(i) is None)
    return node is not None and node.op_type in ("Quant", "BipolarQuant", "MultiThreshold")


def annotated_input(model: ModelWrapper, fmt: str) -> dict:
    """The input record of an already converted graph whose input carries an integer FINN data
    type: the integers are the model's input (scale 1)."""
    inp = model.graph.input[0].name
    dt = model.get_tensor_datatype(inp)
    if not dt.is_integer():
        what = "FINN-ONNX" if fmt == "finn" else "HW-layer"
        raise BitfabError(
            f"this {what} graph's input {inp!r} is {dt.name} and does not look like an image; "
            "annotate its integer data type (ModelWrapper.set_tensor_datatype, e.g. INT4) or "
            "give --input pixels for raw 8-bit pixel input"
        )
    return {
        "encoding": "codes",
        "quantizer": None,
        "dtype": dt.name,
        "min": int(dt.min()),
        "max": int(dt.max()),
        "bit_width": dt.bitwidth(),
        "scale": 1.0,
        "shape": list(model.get_tensor_shape(inp)),
    }


def choose_head(
    out_shape: list[int], tail: list[str], mode: str = "auto", quantized: bool = False
) -> str:
    """``"class"`` or ``"values"`` for a model whose scores have ``out_shape`` (after an absorbed
    ``tail``); ``quantized``: the output comes from a quantizer (:func:`ends_in_quantizer`).

    ``auto``: class for an ArgMax/TopK tail, values for one output or a quantized output, else
    class (raw logits, or a Softmax tail). A class head over one output is refused: it would
    answer 0 for every input."""
    if mode not in HEAD_MODES:
        raise BitfabError(f"--head {mode!r}: expected one of {', '.join(HEAD_MODES)}")
    n = int(np.prod(out_shape[1:]))
    forced = bool(tail)  # Softmax & co. were absorbed for the argmax: only a class head is exact
    if mode == "values" and forced:
        what = "a class index" if any(op in CLASS_TAILS for op in tail) else "probabilities"
        raise BitfabError(
            f"--head values: the model ends in {'/'.join(tail)}, so its output is {what}, "
            "which the hardware does not compute; use --head class (or auto)"
        )
    auto = "class" if forced or (n > 1 and not quantized) else "values"
    head = mode if mode != "auto" else auto
    if head == "class" and n < 2:
        raise BitfabError(
            f"the model has {n} output value, so a class head would answer class 0 for every "
            "input; use --head values (the output's own value: a binary classifier's sign)"
        )
    return head


#: metadata keys bitfab writes (cleared when a model enters the conversion: a file that went
#: through bitfab before must not carry stale records into a new conversion)
BITFAB_META = (INPUT_META, HEAD_META, TAIL_META, AFFINE_META, MEMORY_PLAN_META)


def _qonnx_to_finn(m: ModelWrapper, opts: dict) -> ModelWrapper:
    fmt = model_format(m.graph)
    m = cleanup_model(m)  # a copy: the caller's model is left as it is
    for p in [p for p in m.graph.metadata_props if p.key in BITFAB_META]:
        m.graph.metadata_props.remove(p)
    m = m.transform(ExactTruncFloor())
    m = m.transform(AbsorbArgmaxTail())
    m = m.transform(AbsorbArgmaxTail())  # Softmax before an ArgMax
    opts["quantized_output"] = ends_in_quantizer(m)
    inp = m.graph.input[0].name
    mode = choose_input(list(m.get_tensor_shape(inp)), opts["input"])
    opts["input_mode"] = mode
    for n in m.graph.node:
        group = get_by_name(n.attribute, "group") if n.op_type == "Conv" else None
        if group is not None and group.i > 1:
            raise BitfabError(
                f"node {n.name} is a grouped (depthwise) convolution, groups={group.i}; FINN "
                "makes it a VectorVectorActivation, which bitfab's hardware does not build yet: "
                "use groups=1"
            )
        rm = get_by_name(n.attribute, "rounding_mode") if n.op_type == "Trunc" else None
        if rm is not None and rm.s.decode().upper() != "FLOOR":
            raise BitfabError(
                f"node {n.name} (Trunc, rounding mode {rm.s.decode()}) truncates an average "
                "pool with rounding (it drops bits: the output has fewer bits than the window "
                "sum); FINN converts only FLOOR truncation: give the TruncAvgPool2d a FLOOR "
                "trunc_quant, or enough output bits, or use MaxPool2d"
            )
    if fmt == "qonnx":
        if mode == "codes":
            m = m.transform(QuantizerInput())
        return m.transform(ConvertQONNXtoFINN())
    # FINN-ONNX (already converted): the input is used as it is, or as pixels
    if mode == "codes" or m.get_tensor_datatype(inp).is_integer():
        opts["input_mode"] = "annotated"
        m.set_metadata_prop(INPUT_META, json.dumps(annotated_input(m, fmt)))
    return m


def _prepare(m: ModelWrapper, opts: dict) -> ModelWrapper:
    m = m.transform(InferShapes())
    if opts["input_mode"] == "pixels":
        m = m.transform(PrependPixelScale())
    tail = json.loads(m.get_metadata_prop(TAIL_META) or "[]")
    shape = list(m.get_tensor_shape(m.graph.output[0].name))
    head = choose_head(shape, tail, opts["head"], opts["quantized_output"])
    m.set_metadata_prop(HEAD_META, head)
    return m.transform(InsertTopK(k=1)) if head == "class" else m


def _tidy_up(m: ModelWrapper, opts: dict) -> ModelWrapper:
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


def _streamline(m: ModelWrapper, opts: dict) -> ModelWrapper:
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


def _to_hw(m: ModelWrapper, opts: dict) -> ModelWrapper:
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
        AbsorbInputTranspose(),
        InferShapes(),
        InferDataTypes(),
    ):
        m = m.transform(t)
    if m.get_metadata_prop(HEAD_META) == "values":
        m = m.transform(StripOutputAffine())
    return m


def _minimize(m: ModelWrapper, opts: dict) -> ModelWrapper:
    m = m.transform(MinimizeAccumulators())
    m = m.transform(RoundAndClipThresholds())
    m = m.transform(InferDataTypes())
    m = m.transform(RemoveIdentityThresholding())
    m = m.transform(RemoveUnusedTensors())
    m = m.transform(SortGraph())
    m = m.transform(GiveUniqueNodeNames())
    return m.transform(GiveReadableTensorNames())


#: The conversion stages, in order: (label shown in the progress line, function).
STAGES: list[tuple[str, Callable[[ModelWrapper, dict], ModelWrapper]]] = [
    ("QONNX -> FINN-ONNX", _qonnx_to_finn),
    ("input and head", _prepare),
    ("tidy-up", _tidy_up),
    ("streamline", _streamline),
    ("convert to HW layers", _to_hw),
    ("minimize accumulators", _minimize),
]


def non_hw_nodes(model: ModelWrapper) -> list:
    """Nodes that are not bitfab HW layers (the conversion must leave none)."""
    return [n for n in model.graph.node if not is_hw_node(n)]


def _joins_activations(model: ModelWrapper, node) -> bool:  # noqa: ANN001
    """A residual Add (two dynamic inputs) or a Concat of activations."""
    dynamic = [i for i in node.input if i and model.get_initializer(i) is None]
    return node.op_type == "Concat" or (node.op_type == "Add" and len(dynamic) == 2)


def _hint(model: ModelWrapper, node) -> str:  # noqa: ANN001
    consumers = model.find_consumers(node.output[0]) or []
    if node.op_type == "Add" and _joins_activations(model, node):
        return (
            "a residual connection (an Add of two activations; FINN's DuplicateStreams + "
            "AddStreams) is not supported by bitfab's hardware yet; remove the skip connection"
        )
    if node.op_type == "Concat":
        return (
            "a Concat of activations (FINN's StreamingConcat) is not supported by bitfab's "
            "hardware yet; use one path"
        )
    if (
        node.op_type in ("Mul", "Add")
        and any(c.op_type in ("TopK", "Add") for c in consumers)
        or (node.op_type in ("Mul", "Add") and not consumers)
    ):
        return (
            "a per-channel scale/bias after the last layer (e.g. per-output-channel weight "
            "scales on the classifier) cannot be absorbed into the argmax; end the model with a "
            "scalar (TensorNorm-like) affine or none, or give --head values (the scores, their "
            "scale in dataflow.json)"
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

        def rank(node) -> int:  # noqa: ANN001
            if _joins_activations(model, node):  # the root cause of what follows it
                return -1
            return 2 if node.op_type == "TopK" else int(node.op_type in plain)

        rest.sort(key=rank)
        n = rest[0]
        more = f" (and {len(rest) - 1} more non-HW nodes)" if len(rest) > 1 else ""
        raise BitfabError(
            f"{source}: node {n.name} ({n.op_type}) stays outside the HW layers after "
            f"streamlining{more}: {_hint(model, n)}"
        )
    for n in model.graph.node:
        fn = get_by_name(n.attribute, "Function") if n.op_type == "Pool" else None
        if fn is not None and fn.s.decode() not in ("MaxPool", "QuantAvgPool"):
            raise BitfabError(
                f"{source}: node {n.name} is a {fn.s.decode()} pool; bitfab's hardware builds "
                "MaxPool and QuantAvgPool (Brevitas TruncAvgPool2d) pools"
            )
    if not any(n.op_type == "MVAU" for n in model.graph.node):
        raise BitfabError(f"{source}: no MVAU layer after conversion; allowed {HW_OP_TYPES}")


def to_dataflow(
    model: ModelWrapper,
    source: str = "model",
    on_stage: Callable[[int, str], None] | None = None,
    *,
    input_mode: str = "auto",
    head: str = "auto",
) -> ModelWrapper:
    """Convert a loaded QONNX model into a FINN HW-layer graph (all nodes in ``HW_OP_TYPES``).

    ``input_mode`` (:data:`INPUT_MODES`) and ``head`` (:data:`HEAD_MODES`) choose what the graph
    input and output are (see the module docstring); the choice is recorded in the model's
    metadata (``bitfab_input``, ``bitfab_head``, ``bitfab_tail``, ``bitfab_output_affine``).
    ``on_stage(i, label)`` is called before stage ``i`` (progress display). FINN's own warnings
    and prints are silenced. Failures inside FINN become a :class:`BitfabError` naming
    ``source`` and the stage.
    """
    choose_input([1, 1], input_mode)  # validate the options before any work
    choose_head([1, 2], [], head)
    finn_log = logging.getLogger("finn_logger")
    level = finn_log.level
    finn_log.setLevel(logging.ERROR)
    try:
        return _run_stages(model, source, on_stage, {"input": input_mode, "head": head})
    finally:
        finn_log.setLevel(level)


def _from_hw(model: ModelWrapper, source: str, opts: dict) -> ModelWrapper:
    """A graph that is already HW layers (e.g. a dataflow.onnx) enters at the folding stage."""
    model = copy.deepcopy(model)  # the records are added to a copy
    if not model.get_metadata_prop(INPUT_META):
        inp = model.graph.input[0].name
        if model.get_tensor_datatype(inp).name == "UINT8":
            # a dataflow.onnx written before the input record existed: a pixel graph
            from bitfab.dataflow.inputs import input_record

            rec = input_record(model)
        else:
            try:
                rec = annotated_input(model, "hw")
            except BitfabError as e:
                raise BitfabError(f"{source}: {e}") from None
        model.set_metadata_prop(INPUT_META, json.dumps(rec))
    if not model.get_metadata_prop(HEAD_META):
        has_label = any(n.op_type == "LabelSelect" for n in model.graph.node)
        model.set_metadata_prop(HEAD_META, "class" if has_label else "values")
    check_all_hw(model, source)
    return model


def _run_stages(
    model: ModelWrapper, source: str, on_stage: Callable[[int, str], None] | None, opts: dict
) -> ModelWrapper:
    if model_format(model.graph) == "hw":
        return _from_hw(model, source, opts)
    for i, (label, fn) in enumerate(STAGES):
        if on_stage is not None:
            on_stage(i, label)
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")
                model = fn(model, opts)
        except BitfabError as e:
            msg = str(e)
            raise BitfabError(msg if msg.startswith(source) else f"{source}: {msg}") from None
        except Exception as e:  # FINN asserts on graphs it cannot streamline
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise BitfabError(
                f"{source}: FINN failed in stage '{label}' ({type(e).__name__}: {msg[:160]})"
            ) from None
    check_all_hw(model, source)
    return model
