"""Read HW-layer nodes of a FINN dataflow graph: folding shapes and per-layer report records."""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from bitfab.dataflow.folding import HW_OP_TYPES, Fold, LayerShape, exp_cycles, lut_estimate
from bitfab.errors import BitfabError

FINN_HW_DOMAIN = "finn.custom_op.fpgadataflow"


def is_hw_node(node) -> bool:  # noqa: ANN001 - onnx NodeProto
    """True for a FINN HW-layer node of a type bitfab handles."""
    return node.domain == FINN_HW_DOMAIN and node.op_type in HW_OP_TYPES


def _bits(dt) -> int:  # noqa: ANN001 - qonnx DataType
    return int(dt.bitwidth())


def layer_shape(model: ModelWrapper, node) -> LayerShape:  # noqa: ANN001
    """The :class:`LayerShape` of one HW node (its current folding is not part of it)."""
    if not is_hw_node(node):
        raise BitfabError(f"node {node.name} ({node.op_type}) is not a bitfab HW layer")
    inst = getCustomOp(node)
    g = inst.get_nodeattr
    op = node.op_type
    in_bits = _bits(inst.get_input_datatype())
    out_bits = _bits(inst.get_output_datatype())
    if op == "MVAU":
        no_act = g("noActivation") == 1
        steps = 0 if no_act else int(model.get_tensor_shape(node.input[2])[1])
        return LayerShape(
            node.name,
            op,
            pe_dim=g("MH"),
            simd_dim=g("MW"),
            in_bits=in_bits,
            weight_bits=_bits(DataType[g("weightDataType")]),
            acc_bits=_bits(inst.get_accumulator_datatype()),
            out_bits=out_bits,
            thres_steps=steps,
            xnor=bool(g("binaryXnorMode")),
            attrs={"numInputVectors": list(g("numInputVectors"))},
        )
    if op == "Thresholding":
        steps = int(model.get_tensor_shape(node.input[1])[1])
        return LayerShape(
            node.name,
            op,
            pe_dim=g("NumChannels"),
            in_bits=in_bits,
            out_bits=out_bits,
            thres_steps=steps,
            attrs={"numInputVectors": list(g("numInputVectors"))},
        )
    if op == "ConvolutionInputGenerator":
        attrs = {k: list(g(k)) for k in ("ConvKernelDim", "IFMDim", "OFMDim", "Stride", "Dilation")}
        attrs["depthwise"] = g("depthwise")
        tied = None
        if attrs["depthwise"]:  # its window stream goes straight into the consumer's PE lanes
            consumer = model.find_consumer(node.output[0])
            if consumer is not None and is_hw_node(consumer):
                tied = consumer.name
        return LayerShape(
            node.name,
            op,
            simd_dim=g("IFMChannels"),
            in_bits=in_bits,
            out_bits=out_bits,
            attrs=attrs,
            simd_tied_to=tied,
        )
    if op == "Pool":
        attrs = {
            "KernelSize": list(g("KernelSize")),
            "OutImgDims": list(g("OutImgDims")),
            "BatchSize": g("BatchSize"),
            "Function": g("Function"),
        }
        return LayerShape(
            node.name, op, pe_dim=g("Channels"), in_bits=in_bits, out_bits=out_bits, attrs=attrs
        )
    if op == "FMPadding":
        attrs = {
            "ImgDim": list(g("ImgDim")),
            "Padding": list(g("Padding")),
            "numInputVectors": [int(g("numInputVectors"))],  # FINN: one int, not a list
        }
        return LayerShape(
            node.name,
            op,
            simd_dim=g("NumChannels"),
            in_bits=in_bits,
            out_bits=out_bits,
            attrs=attrs,
        )
    # LabelSelect
    return LayerShape(
        node.name,
        op,
        pe_dim=g("Labels"),
        in_bits=in_bits,
        out_bits=out_bits,
        attrs={"numInputVectors": list(g("numInputVectors")), "K": g("K")},
    )


def hw_layers(model: ModelWrapper) -> list[LayerShape]:
    """LayerShapes of every HW node, in graph order."""
    return [layer_shape(model, n) for n in model.graph.node if is_hw_node(n)]


def current_folding(node) -> Fold:  # noqa: ANN001
    """The node's ``(PE, SIMD, parallel_window)`` attributes (1, 1, 0 where the op has none)."""
    inst = getCustomOp(node)
    attrs = inst.get_nodeattr_types()
    pe = inst.get_nodeattr("PE") if "PE" in attrs else 1
    simd = inst.get_nodeattr("SIMD") if "SIMD" in attrs else 1
    pw = inst.get_nodeattr("parallel_window") if "parallel_window" in attrs else 0
    return Fold(int(pe), int(simd), int(pw))


def _dt(dt) -> dict:  # noqa: ANN001
    return {"dtype": dt.name, "bits": _bits(dt)}


def layer_record(model: ModelWrapper, node) -> dict:  # noqa: ANN001
    """A JSON-ready description of one HW node (see docs/dataflow.md for the fields)."""
    inst = getCustomOp(node)
    shape = layer_shape(model, node)
    fold = current_folding(node)
    pe, simd = fold.pe, fold.simd
    op = node.op_type
    rec: dict = {
        "name": node.name,
        "op_type": op,
        "input_shape": list(model.get_tensor_shape(node.input[0])),
        "output_shape": list(model.get_tensor_shape(node.output[0])),
        "input": _dt(inst.get_input_datatype()),
        "output": _dt(inst.get_output_datatype()),
        "weight": None,
        "accumulator": None,
        "PE": pe,
        "SIMD": simd,
        "numInputVectors": None,
        "thresholds": 0,
        "threshold_steps": shape.thres_steps,
    }
    g = inst.get_nodeattr
    if op == "MVAU":
        rec["weight"] = _dt(DataType[g("weightDataType")])
        rec["accumulator"] = _dt(inst.get_accumulator_datatype())
        rec.update(
            MW=g("MW"),
            MH=g("MH"),
            binaryXnorMode=int(g("binaryXnorMode")),
            noActivation=int(g("noActivation")),
            ActVal=int(g("ActVal")),
        )
        rec["numInputVectors"] = list(g("numInputVectors"))
        if shape.thres_steps:
            rec["threshold_dtype"] = model.get_tensor_datatype(node.input[2]).name
    elif op == "Thresholding":
        rec.update(NumChannels=g("NumChannels"), ActVal=int(g("ActVal")))
        rec["numInputVectors"] = list(g("numInputVectors"))
        rec["threshold_dtype"] = g("weightDataType")
    elif op == "ConvolutionInputGenerator":
        rec.update(
            {
                k: shape.attrs[k]
                for k in ("ConvKernelDim", "IFMDim", "OFMDim", "Stride", "Dilation", "depthwise")
            }
        )
        rec["IFMChannels"] = g("IFMChannels")
        rec["parallel_window"] = fold.parallel_window
    elif op == "Pool":
        rec.update(
            Channels=g("Channels"),
            Function=g("Function"),
            KernelSize=list(g("KernelSize")),
            OutImgDims=list(g("OutImgDims")),
        )
    elif op == "FMPadding":
        rec.update(
            NumChannels=g("NumChannels"),
            ImgDim=shape.attrs["ImgDim"],
            Padding=shape.attrs["Padding"],
        )
        rec["numInputVectors"] = shape.attrs["numInputVectors"]
    else:
        rec.update(Labels=g("Labels"), K=g("K"))
        rec["numInputVectors"] = list(g("numInputVectors"))
    if shape.thres_steps:
        thr_in = node.input[2] if op == "MVAU" else node.input[1]
        rec["thresholds"] = int(np.prod(model.get_tensor_shape(thr_in)))
    # FINN's stream widths (bits per word); the SWG's come from the RTL variant, whose
    # get_outstream_width knows parallel_window (the HW-layer base class cannot compute them)
    streams = inst
    if op == "ConvolutionInputGenerator":
        from finn.custom_op.fpgadataflow.rtl.convolutioninputgenerator_rtl import (
            ConvolutionInputGenerator_rtl,
        )

        streams = ConvolutionInputGenerator_rtl(node)
    rec["instream_width"] = int(streams.get_instream_width())
    rec["outstream_width"] = int(streams.get_outstream_width())
    rec["est_cycles"] = exp_cycles(shape, *fold)
    rec["est_luts"] = lut_estimate(shape, *fold)
    return rec
