"""Accelerator compiler front end: a FINN dataflow graph (``dataflow.onnx``) -> a layer list.

:func:`compile_graph` reads the HW-layer graph that ``bitfab dataflow`` writes, checks that it
is a linear chain of supported FINN HW layers, and returns a :class:`CompiledGraph`: one
:class:`LayerSpec` per FINN node (op type, FINN attributes, initializers, PE array kind for
MVAUs) plus a ``StreamingDataWidthConverter`` wherever a producer's output word and the
consumer's input word differ (FINN's ``InsertDWC``). Every spec knows the stream format on
both sides (:class:`StreamFormat`: element kind, bits, lanes per word, elements per image), so
the accelerator top (:mod:`bitfab.hw.accelerator`) wires them, the performance model
(:mod:`bitfab.hw.perf`) counts them, and a test bench packs golden tensors into words
(:func:`tensor_words`).

Errors are :class:`bitfab.errors.BitfabError` naming the node: an unsupported op type (with the
supported set), a folding the hardware cannot realise (layer and constraint), a bad array
config. This module may import :mod:`bitfab.dataflow` but never :mod:`bitfab.sim`.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bitfab.dataflow import inputs
from bitfab.errors import BitfabError
from bitfab.hw.elaboratable import unused_ok
from bitfab.kinds import array_kind

#: FINN op type -> (module, class) of the bitfab streaming layer.
COMPONENTS: dict[str, tuple[str, str]] = {
    "MVAU": ("bitfab.hw.layers.mvau", "MVAU"),
    "Thresholding": ("bitfab.hw.layers.thresholding", "Thresholding"),
    "ConvolutionInputGenerator": ("bitfab.hw.layers.sliding_window", "SlidingWindow"),
    "FMPadding": ("bitfab.hw.layers.fmpadding", "FMPadding"),
    "Pool": ("bitfab.hw.layers.pool", "Pool"),
    "LabelSelect": ("bitfab.hw.layers.label_select", "LabelSelect"),
    "StreamingDataWidthConverter": (
        "bitfab.hw.layers.width_converter",
        "StreamingDataWidthConverter",
    ),
    "StreamingFIFO": ("bitfab.hw.layers.stream_fifo", "StreamFIFO"),
}
SUPPORTED_OPS: tuple[str, ...] = tuple(COMPONENTS)


@dataclass(frozen=True)
class StreamFormat:
    """One stream between layers: ``lanes`` elements of ``bits`` bits (``kind`` as in
    :mod:`bitfab.hw.packing`) per word, ``elements`` per image. ``dw_window`` is set
    (``(K, C)``) when the stream is a depthwise sliding-window output whose hardware order
    ``(C/lanes, K, lanes)`` differs from FINN's tensor order ``(K, C)``."""

    kind: str
    bits: int
    lanes: int
    elements: int
    dw_window: tuple[int, int] | None = None

    @property
    def width(self) -> int:
        """Word width in bits."""
        return self.lanes * self.bits

    @property
    def words(self) -> int:
        """Words per image."""
        return self.elements // self.lanes


@dataclass
class LayerSpec:
    """One streaming unit of the accelerator: FINN ``op_type``/``attrs``/``inits``, the PE
    array kind (MVAU only), stream formats in and out, ``inserted`` for width converters the
    compiler added."""

    name: str
    op_type: str
    attrs: dict
    inits: list[np.ndarray] = field(default_factory=list)
    array: str | None = None
    fmt_in: StreamFormat | None = None
    fmt_out: StreamFormat | None = None
    inserted: bool = False
    golden_name: str | None = None  # golden tensor key of this layer's output (None: inserted)
    #: MVAU weight memory: "rom" (initialised) or "spram" (loaded at run time; memory planner)
    weight_store: str = "rom"

    def build(self, array_options: dict | None = None, spram_model: str = "ice40"):
        """The Amaranth component of this layer (``from_finn`` of its class)."""
        mod, cls = COMPONENTS[self.op_type]
        klass = getattr(importlib.import_module(mod), cls)
        try:
            if self.op_type == "MVAU":
                unit = klass.from_finn(
                    self.attrs,
                    *self.inits,
                    array=self.array,
                    array_options=array_options,
                    weight_store=self.weight_store,
                    spram_model=spram_model,
                )
            else:
                unit = klass.from_finn(self.attrs, *self.inits)
            unused_ok(unit)  # a layer may be built only to read its parameters
            return unit
        except ValueError as e:
            raise BitfabError(
                f"layer {self.name} ({self.op_type}): the hardware cannot realise this "
                f"configuration: {e}"
            ) from None


@dataclass
class CompiledGraph:
    """The layer list of an accelerator and its graph-level input/output."""

    source: str
    layers: list[LayerSpec]
    input_fmt: StreamFormat
    output_fmt: StreamFormat
    output_meaning: str  # "class index" (TopK/LabelSelect) or "vector"

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "layers": [
                {"name": ly.name, "op_type": ly.op_type, "array": ly.array, "inserted": ly.inserted}
                for ly in self.layers
            ],
            "output_meaning": self.output_meaning,
        }


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------


def load_array_config(path: str | os.PathLike[str]) -> tuple[str | None, dict[str, str]]:
    """Read a TOML array config: optional top-level ``array = "kind"`` (default for every MVAU)
    and a ``[layers]`` table ``LAYER = "kind"``. Returns ``(default, per_layer)``."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise BitfabError(f"{p}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise BitfabError(f"{p}: not valid TOML ({e})") from None
    unknown = set(data) - {"array", "layers"}
    if unknown:
        raise BitfabError(f"{p}: unknown keys {sorted(unknown)}; expected 'array' and [layers]")
    default = array_kind(data["array"]) if "array" in data else None
    layers = data.get("layers", {})
    if not isinstance(layers, dict):
        raise BitfabError(f'{p}: [layers] must be a table LAYER = "kind"')
    return default, {str(k): array_kind(v) for k, v in layers.items()}


# --------------------------------------------------------------------------------------------
# graph -> layers
# --------------------------------------------------------------------------------------------


def _attrs(node) -> dict:  # noqa: ANN001
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _kind_bits(dt) -> tuple[str, int]:  # noqa: ANN001
    from bitfab.hw.types import finn_kind_bits

    try:
        return finn_kind_bits(dt)
    except ValueError as e:
        raise BitfabError(str(e)) from None


def _lanes_in(op: str, a: Mapping) -> int:
    if op in ("MVAU", "ConvolutionInputGenerator", "FMPadding"):
        return int(a.get("SIMD", 1))
    return int(a.get("PE", 1))  # Thresholding, Pool, LabelSelect


def _lanes_out(op: str, a: Mapping) -> int:
    if op == "LabelSelect":
        return 1
    if op == "ConvolutionInputGenerator" and int(a.get("parallel_window", 0)):
        # one whole KH x KW window of SIMD channels per word (FINN get_outstream_width)
        return int(a.get("SIMD", 1)) * int(np.prod(a["ConvKernelDim"]))
    return _lanes_in(op, a) if op != "MVAU" else int(a.get("PE", 1))


def _load_model(path):  # noqa: ANN001, ANN202
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(path, ModelWrapper):
        return path
    p = Path(path)
    if not p.is_file():
        raise BitfabError(f"{p}: no such file (expected a dataflow.onnx from 'bitfab dataflow')")
    try:
        return ModelWrapper(str(p))
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad input file
        raise BitfabError(f"{p}: not a readable ONNX model ({type(e).__name__})") from None


def compile_graph(
    dataflow,  # noqa: ANN001 - path or qonnx ModelWrapper
    array: str = "parallel",
    per_layer: Mapping[str, str] | None = None,
    weight_stores: Mapping[str, str] | None = None,
) -> CompiledGraph:
    """Layer list of the accelerator for ``dataflow`` (path to ``dataflow.onnx`` or a qonnx
    ``ModelWrapper``). ``array`` is the PE array kind of every MVAU unless ``per_layer`` names
    the layer. ``weight_stores``: ``{MVAU name: "rom" | "spram"}`` (default: the memory plan in
    the graph's ``bitfab_memory_plan`` metadata, :data:`MEMORY_PLAN_META`, else all ``rom``).
    Width converters are inserted between layers whose words differ; each layer
    is elaborated once here to check that the hardware can realise its folding."""
    model = _load_model(dataflow)
    if weight_stores is None:
        weight_stores = memory_plan_of(model)
    g = model.graph
    nodes = list(g.node)
    default = array_kind(array)
    per_layer = {str(k): array_kind(v) for k, v in dict(per_layer or {}).items()}
    names = {n.name for n in nodes}
    for lname in per_layer:
        if lname not in names:
            raise BitfabError(
                f"array config names layer {lname!r}, which is not in the graph; "
                f"layers: {', '.join(n.name for n in nodes)}"
            )
        op = next(n.op_type for n in nodes if n.name == lname)
        if op != "MVAU":
            raise BitfabError(f"array config: layer {lname} is a {op}; only MVAU layers use arrays")
    if not nodes:
        raise BitfabError("the dataflow graph has no nodes")
    qonnx_ops = {"Quant", "BipolarQuant", "BinaryQuant", "Trunc", "MultiThreshold"}
    if not any(n.op_type in SUPPORTED_OPS for n in nodes) and any(
        n.op_type in qonnx_ops for n in nodes
    ):
        raise BitfabError(
            "this is a QONNX model, not a dataflow graph: run 'bitfab dataflow MODEL.onnx --out "
            "DIR' first and compile DIR/dataflow.onnx"
        )
    for n in nodes:
        if n.op_type not in SUPPORTED_OPS:
            raise BitfabError(
                f"node {n.name or '?'}: op type {n.op_type} is not supported by the accelerator "
                f"compiler; supported: {', '.join(SUPPORTED_OPS)}"
            )
    if len(g.input) != 1 or len(g.output) != 1:
        raise BitfabError("the dataflow graph must have exactly one input and one output")
    # linear chain check
    cur = g.input[0].name
    ordered = []
    for _ in nodes:
        consumers = [n for n in nodes if n.input and n.input[0] == cur]
        if len(consumers) != 1:
            raise BitfabError(
                f"tensor {cur}: the compiler needs a linear chain of layers, found "
                f"{len(consumers)} consumers"
            )
        ordered.append(consumers[0])
        cur = consumers[0].output[0]
    if cur != g.output[0].name:
        raise BitfabError("the dataflow graph's layers do not form one chain from input to output")

    specs: list[LayerSpec] = []
    prev_out: StreamFormat | None = None
    for n in ordered:
        a = _attrs(n)
        op = n.op_type
        ik, ib = _kind_bits(model.get_tensor_datatype(n.input[0]))
        ok, ob = _kind_bits(model.get_tensor_datatype(n.output[0]))
        n_in = int(np.prod(model.get_tensor_shape(n.input[0])))
        n_out = int(np.prod(model.get_tensor_shape(n.output[0])))
        inits = [model.get_initializer(t) for t in n.input[1:]]
        inits = [np.asarray(t) for t in inits if t is not None]
        dw_in = dw_out = None
        if op == "ConvolutionInputGenerator" and int(a.get("depthwise", 0)):
            kk = int(np.prod(a["ConvKernelDim"]))
            dw_out = (kk, int(a["IFMChannels"]))
        if op == "Pool":
            dw_in = (int(np.prod(a["KernelSize"])), int(a["Channels"]))
        fin = StreamFormat(ik, ib, _lanes_in(op, a), n_in, dw_in)
        fout = StreamFormat(ok, ob, _lanes_out(op, a), n_out, dw_out)
        for fmt, side in ((fin, "input"), (fout, "output")):
            if fmt.elements % fmt.lanes:
                raise BitfabError(
                    f"layer {n.name} ({op}): {fmt.lanes} lanes do not divide its {side}'s "
                    f"{fmt.elements} elements"
                )
        spec = LayerSpec(
            n.name,
            op,
            a,
            inits,
            (per_layer.get(n.name, default) if op == "MVAU" else None),
            fin,
            fout,
            golden_name=n.name,
        )
        if op == "MVAU":
            spec.weight_store = weight_stores.get(n.name, "rom")
        if prev_out is not None:
            if (prev_out.kind, prev_out.bits) != (fin.kind, fin.bits):
                raise BitfabError(
                    f"layer {n.name}: input data type {fin.kind}{fin.bits} differs from its "
                    f"producer's output {prev_out.kind}{prev_out.bits}"
                )
            if prev_out.dw_window != fin.dw_window:
                raise BitfabError(
                    f"layer {n.name} ({op}): a depthwise window stream must go straight from "
                    "a depthwise ConvolutionInputGenerator to a Pool"
                )
            if prev_out.lanes != fin.lanes:
                if fin.dw_window is not None and not _whole_pixels(prev_out, fin):
                    raise BitfabError(
                        f"layer {n.name} ({op}): PE={fin.lanes} must equal the SIMD="
                        f"{prev_out.lanes} of the depthwise sliding window before it"
                    )
                specs.append(_dwc(specs[-1].name, prev_out, fin))
        specs.append(spec)
        prev_out = fout
    unknown = set(weight_stores) - {s.name for s in specs if s.op_type == "MVAU"}
    if unknown:
        raise BitfabError(
            f"memory plan names {', '.join(sorted(unknown))}, which is not an MVAU of the graph"
        )
    for s in specs:  # construction-time checks of every folding, named by layer
        s.build()
    out_meaning = "class index" if ordered[-1].op_type == "LabelSelect" else "vector"
    return CompiledGraph(str(dataflow), specs, specs[0].fmt_in, specs[-1].fmt_out, out_meaning)


#: metadata key of the memory plan in a dataflow graph: JSON ``{MVAU name: "spram"}``, written
#: by the board fit (:mod:`bitfab.fpga.memory_plan`) for the weights it puts in SPRAM
MEMORY_PLAN_META = inputs.MEMORY_PLAN_META


def memory_plan_of(model) -> dict[str, str]:  # noqa: ANN001 - qonnx ModelWrapper
    """The weight stores recorded in ``model``'s metadata (empty: every weight memory a ROM)."""
    import json

    raw = model.get_metadata_prop(MEMORY_PLAN_META)
    if raw is None:
        return {}
    try:
        plan = json.loads(raw)
    except ValueError:
        plan = None
    if not isinstance(plan, dict) or not all(v in ("rom", "spram") for v in plan.values()):
        raise BitfabError(
            f"dataflow graph: metadata {MEMORY_PLAN_META} is not a memory plan "
            f"({raw[:60]!r}); rerun 'bitfab build'"
        )
    return {str(k): str(v) for k, v in plan.items()}


def _whole_pixels(src: StreamFormat, dst: StreamFormat) -> bool:
    """True when both sides of a depthwise window stream carry whole pixels (lanes a multiple
    of the channels: a parallel-window SWG's ``K*C`` lanes into a ``PE == C`` Pool), so the
    hardware order is FINN's ``(K, C)`` on both and a width converter keeps it."""
    c = src.dw_window[1] if src.dw_window else 0
    return c > 0 and src.lanes % c == 0 and dst.lanes % c == 0


def _dwc(after: str, src: StreamFormat, dst: StreamFormat) -> LayerSpec:
    attrs = {
        "inWidth": src.width,
        "outWidth": dst.width,
        "dataType": _dtype_name(src.kind, src.bits),
        "inShape": [1, src.elements],
    }
    return LayerSpec(
        f"DWC_{after}",
        "StreamingDataWidthConverter",
        attrs,
        [],
        None,
        src,
        StreamFormat(dst.kind, dst.bits, dst.lanes, src.elements),
        inserted=True,
    )


def _dtype_name(kind: str, bits: int) -> str:
    if kind == "bipolar":
        return "BIPOLAR"
    if kind == "unsigned":
        return "BINARY" if bits == 1 else f"UINT{bits}"
    return f"INT{bits}"


# --------------------------------------------------------------------------------------------
# tensors <-> stream words
# --------------------------------------------------------------------------------------------


def stream_order(t: np.ndarray, fmt: StreamFormat) -> np.ndarray:
    """Elements of a per-image batch ``t`` (leading dim N) in stream order, shape
    ``[N, elements]`` int64 (depthwise window streams reordered ``(K, C) -> (C/lanes, K,
    lanes)`` when ``lanes < C``; with whole pixels per word both orders are ``(K, C)``)."""
    x = np.rint(np.asarray(t)).astype(np.int64).reshape(len(t), -1)
    if x.shape[1] != fmt.elements:
        raise ValueError(f"tensor has {x.shape[1]} elements per image, stream {fmt.elements}")
    if fmt.dw_window is not None and fmt.lanes < fmt.dw_window[1]:
        kk, c = fmt.dw_window
        lead = x.shape[1] // (kk * c)
        y = x.reshape(len(x), lead, kk, c // fmt.lanes, fmt.lanes)
        x = np.moveaxis(y, 2, 3).reshape(len(x), -1)
    return x


def encode_lanes(x: np.ndarray, kind: str, bits: int) -> np.ndarray:
    """Integer values -> their ``bits``-bit lane codes (bipolar -1/+1 -> 0/1; two's
    complement), int64."""
    x = np.asarray(x, dtype=np.int64)
    if kind == "bipolar":
        return (x > 0).astype(np.int64)
    return x & ((1 << bits) - 1)


def tensor_words(t: np.ndarray, fmt: StreamFormat) -> list[int]:
    """All stream words (Python ints, image after image) of a per-image batch ``t``."""
    x = encode_lanes(stream_order(t, fmt), fmt.kind, fmt.bits).reshape(-1, fmt.lanes)
    if fmt.width <= 62:
        shifts = (np.arange(fmt.lanes, dtype=np.int64) * fmt.bits)[None, :]
        return (x << shifts).sum(axis=1).tolist()
    out = []
    for row in x.tolist():
        w = 0
        for i, v in enumerate(row):
            w |= int(v) << (i * fmt.bits)
        out.append(w)
    return out


def words_tensor(words: Sequence[int], fmt: StreamFormat) -> np.ndarray:
    """Inverse of :func:`tensor_words` up to the order: element values ``[N, elements]`` in
    stream order (bipolar as -1/+1)."""
    from bitfab.hw.packing import unpack

    vals = [v for w in words for v in unpack(int(w), fmt.bits, fmt.lanes, fmt.kind)]
    return np.asarray(vals, dtype=np.int64).reshape(-1, fmt.elements)
