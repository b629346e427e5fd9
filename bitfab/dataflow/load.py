"""Load a QONNX model file and reject what the dataflow stage cannot use (one-line errors)."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper

from bitfab.errors import BitfabError

#: QONNX quantizer op types; a model without any is a float model.
QUANT_OPS = ("Quant", "BipolarQuant", "BinaryQuant", "Trunc")
#: QONNX's minifloat quantizers (fp8 and the like): quantized, but not to integers
FLOAT_QUANT_OPS = ("FloatQuant",)


def model_format(graph: onnx.GraphProto) -> str:
    """``"qonnx"`` (Quant nodes), ``"finn"`` (FINN-ONNX: MultiThreshold nodes, already converted),
    ``"hw"`` (FINN HW layers, e.g. a dataflow.onnx), ``"floatquant"`` or ``"float"``."""
    ops = {n.op_type for n in graph.node}
    if any(n.domain.startswith("finn.custom_op.fpgadataflow") for n in graph.node):
        return "hw"
    if ops & set(QUANT_OPS):
        return "qonnx"
    if "MultiThreshold" in ops:
        return "finn"
    if ops & set(FLOAT_QUANT_OPS):
        return "floatquant"
    return "float"


def load_qonnx(path: str | os.PathLike[str]) -> ModelWrapper:
    """Read ``path`` as a QONNX model with one input and one output and at least one quantizer
    (or an already converted FINN-ONNX or HW-layer graph, :func:`model_format`).

    Raises :class:`BitfabError` for a missing, unreadable/truncated, float (no quantizer) or
    minifloat (FloatQuant) file.
    """
    p = Path(path)
    if p.is_dir():
        hint = f" ({p / 'model.onnx'})" if (p / "model.onnx").is_file() else ""
        raise BitfabError(f"{p}: is a folder; pass the model file in it{hint}")
    if not p.is_file():
        raise BitfabError(f"{p}: no such file; pass the model.onnx written by 'bitfab train'")
    try:
        proto = onnx.load(str(p))
    except Exception as e:  # protobuf DecodeError, missing external data, ...
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BitfabError(
            f"{p}: not a readable ONNX model ({type(e).__name__}: {reason[:120]}); "
            "the file is truncated or corrupt, re-export it"
        ) from None
    graph = proto.graph
    if len(graph.node) == 0:
        raise BitfabError(f"{p}: the ONNX graph has no nodes; the file is truncated or not a model")
    if len(graph.input) < 1 or len(graph.output) != 1:
        raise BitfabError(
            f"{p}: expected one graph input and one output, found {len(graph.input)} and "
            f"{len(graph.output)}"
        )
    fmt = model_format(graph)
    if fmt == "floatquant":
        raise BitfabError(
            f"{p}: minifloat model (FloatQuant nodes, e.g. fp8); bitfab's hardware computes on "
            "integers: re-export it with integer quantizers (Quant/BipolarQuant, 1-8 bits)"
        )
    if fmt == "float":
        raise BitfabError(
            f"{p}: float (unquantized) model, no Quant, MultiThreshold or HW-layer nodes; export "
            "a Brevitas QAT model with brevitas.export.export_qonnx"
        )
    check_bit_widths(proto.graph, p)
    try:
        return ModelWrapper(proto)
    except Exception as e:
        raise BitfabError(f"{p}: qonnx cannot wrap this model ({type(e).__name__}: {e})") from None


#: bit widths bitfab's hardware takes for weights and activations
MIN_BITS, MAX_BITS = 1, 8
#: quantizer op type -> (input index of a bit width, what it is, checked against MAX_BITS);
#: Trunc (QONNX opset 1: X, scale, zeropt, in_bits, out_bits); "Trunc6" is opset 2's Trunc
#: (X, scale, zeropt, in_bits, out_scale, out_bits)
_BIT_INPUTS = {
    "Quant": ((3, "bit width", True),),
    "Trunc": ((3, "input bit width", False), (4, "output bit width", True)),
    "Trunc6": ((3, "input bit width", False), (5, "output bit width", True)),
}


def check_bit_widths(graph: onnx.GraphProto, path: Path) -> None:
    """BitfabError naming the first quantizer whose constant bit width bitfab cannot build: not a
    whole number >= 1, or above :data:`MAX_BITS` for a weight or activation (a bias quantizer,
    a constant only added, may be wider; BipolarQuant and BinaryQuant are 1 bit by
    definition)."""
    from onnx import numpy_helper

    consts = {t.name: t for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = a.t
    consumers: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    for node in graph.node:
        # a bias quantizer (a constant only added) may be wide: streamlining folds it away
        bias = (
            bool(node.input)
            and node.input[0] in consts
            and node.output
            and all(op == "Add" for op in consumers.get(node.output[0], ["?"]))
        )
        kind = "Trunc6" if node.op_type == "Trunc" and len(node.input) >= 6 else node.op_type
        for index, what, capped in _BIT_INPUTS.get(kind, ()):
            capped = capped and not bias
            if len(node.input) <= index or node.input[index] not in consts:
                continue  # computed at run time: left to the conversion
            values = numpy_helper.to_array(consts[node.input[index]]).reshape(-1)
            for v in {float(x) for x in values}:
                name = f"{node.op_type} node {node.name or node.output[0]}"
                if not v.is_integer() or v < MIN_BITS:
                    raise BitfabError(
                        f"{path}: {name} has {what} {v:g}; quantizers need a whole number of "
                        f"bits >= {MIN_BITS} (re-export the model with {MIN_BITS}-{MAX_BITS} bits)"
                    )
                if capped and v > MAX_BITS:
                    raise BitfabError(
                        f"{path}: {name} has {what} {v:g}; bitfab's hardware takes "
                        f"{MIN_BITS}-{MAX_BITS} bit weights and activations (re-train or "
                        f"re-export it at {MAX_BITS} bits or fewer)"
                    )
