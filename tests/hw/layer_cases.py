"""Test cases for bitfab's FINN-style streaming layers: numpy references and stream words.

Every reference here is written from FINN's documented semantics (qonnx ``multithreshold``,
``xnorpopcountmatmul``, ``im2col``, ``np.pad``, ONNX ``TopK``), independently of the hardware
code. :func:`make_case` draws random parameters content (weights, thresholds, data) for given
structural parameters and returns a JSON-serialisable :class:`Case`: constructor kwargs, setup
constants, input words per stream port and expected output words per port. The Amaranth tests
(``tests/hw/test_*.py``) and the Verilator harness replay the same cases.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bitfab.hw import packing
from bitfab.hw.elaboratable import unused_ok
from tests.hw.arrays.pe_cases import rand_values, value_range  # noqa: F401  (shared value helpers)

# component name -> (module, class)
COMPONENTS = {
    "Thresholding": ("bitfab.hw.layers.thresholding", "Thresholding"),
    "MVAU": ("bitfab.hw.layers.mvau", "MVAU"),
    "SlidingWindow": ("bitfab.hw.layers.sliding_window", "SlidingWindow"),
    "FMPadding": ("bitfab.hw.layers.fmpadding", "FMPadding"),
    "Pool": ("bitfab.hw.layers.pool", "Pool"),
    "LabelSelect": ("bitfab.hw.layers.label_select", "LabelSelect"),
    "StreamingDataWidthConverter": (
        "bitfab.hw.layers.width_converter",
        "StreamingDataWidthConverter",
    ),
    "StreamFIFO": ("bitfab.hw.layers.stream_fifo", "StreamFIFO"),
}


@dataclass
class Case:
    """One replayable test case for a streaming layer (all fields JSON-serialisable)."""

    component: str
    params: dict  # constructor keyword arguments
    inputs: dict[str, list[int]]  # stream port name -> payload words, in order
    expected: dict[str, list[int]]  # stream port name -> expected payload words
    setup: dict[str, int] = field(default_factory=dict)  # constant input signals
    note: str = ""

    def build(self):
        """Instantiate the component under test."""
        mod, cls = COMPONENTS[self.component]
        return getattr(importlib.import_module(mod), cls)(**self.params)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        return cls(**json.loads(text))


# --------------------------------------------------------------------------------------------
# value helpers
# --------------------------------------------------------------------------------------------


def words_of(values: np.ndarray, lanes: int, bits: int, kind: str) -> list[int]:
    """Pack a flat sequence of values (in stream order) into words of ``lanes`` lanes."""
    flat = np.asarray(values).reshape(-1, lanes)
    return [packing.pack(row, bits, kind) for row in flat.tolist()]


def _l(a) -> list:
    return np.asarray(a).tolist()


# --------------------------------------------------------------------------------------------
# numpy references (FINN semantics)
# --------------------------------------------------------------------------------------------


def ref_multithreshold(x: np.ndarray, thr: np.ndarray, act_val: int) -> np.ndarray:
    """qonnx multithreshold, channels last: count of thresholds ``t`` with ``x >= t``, + bias.

    ``x``: [..., C]; ``thr``: [C or 1, steps] (one row = shared by all channels).
    """
    x = np.asarray(x, dtype=np.int64)
    thr = np.asarray(thr, dtype=np.int64)
    if thr.shape[0] == 1:
        thr = np.broadcast_to(thr, (x.shape[-1], thr.shape[1]))
    counts = np.zeros(x.shape, dtype=np.int64)
    for s in range(thr.shape[1]):
        counts += x >= thr[:, s]
    return counts + act_val


def ref_mvau_acc(x: np.ndarray, w: np.ndarray, popcount: bool) -> np.ndarray:
    """MVAU accumulator: ``x`` [N, MW] @ ``w`` [MW, MH]; in XNOR mode the number of positions
    where the activation bit equals the weight bit (bits as FINN's BINARY: 1 = +1)."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    if popcount:
        xb = x > 0  # works for both BINARY (0/1) and BIPOLAR (-1/+1) values
        wb = w > 0
        return (xb[:, :, None] == wb[None, :, :]).sum(axis=1)
    return x @ w


def ref_sliding_window(img: np.ndarray, k, stride, dilation, simd: int, depthwise: bool):
    """FINN ConvolutionInputGenerator stream for one NHWC image ``img`` [H, W, C], as a flat
    list of element values in stream order.

    Non-depthwise (qonnx Im2Col order): for each output pixel (oy, ox), kernel row ky, kernel
    column kx, channel c. Depthwise (FINN HW layout ``(OH, OW, C/SIMD, KH, KW, SIMD)``): channel
    fold outermost inside the pixel.
    """
    h, w, c = img.shape
    kh, kw = k
    sh, sw = stride
    dh, dw = dilation
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    out = []
    for oy in range(oh):
        for ox in range(ow):
            if depthwise:
                for cf in range(c // simd):
                    for ky in range(kh):
                        for kx in range(kw):
                            px = img[oy * sh + ky * dh, ox * sw + kx * dw]
                            out.extend(px[cf * simd : (cf + 1) * simd])
            else:
                for ky in range(kh):
                    for kx in range(kw):
                        out.extend(img[oy * sh + ky * dh, ox * sw + kx * dw])
    return np.array(out, dtype=np.int64)


def ref_maxpool_stream(x: np.ndarray) -> np.ndarray:
    """Pool(MaxPool) on the depthwise window stream ``x`` [pixels, C/PE, K, PE]: max over K."""
    return np.asarray(x).max(axis=2)


def ref_fmpadding(img: np.ndarray, padding) -> np.ndarray:
    """FINN FMPadding on [N, H, W, C]: zeros, ``padding = [top, left, bottom, right]``."""
    t, left, b, r = padding
    return np.pad(img, ((0, 0), (t, b), (left, r), (0, 0)), mode="constant")


def ref_label_select(x: np.ndarray) -> np.ndarray:
    """TopK K=1 index per row of ``x`` [N, Labels], ties to the lowest index."""
    x = np.asarray(x)
    out = []
    for row in x:
        best = 0
        for j in range(1, len(row)):
            if row[j] > row[best]:
                best = j
        out.append(best)
    return np.array(out, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# case generators
# --------------------------------------------------------------------------------------------


def _sorted_thresholds(rng, channels, steps, lo, hi):
    thr = rng.integers(lo, hi + 1, size=(channels, steps))
    return np.sort(thr, axis=1)


def case_thresholding(p: dict, rng: np.random.Generator) -> Case:
    """p: NumChannels, PE, input_kind, input_bits, numSteps, [shared], [ActVal],
    [output_kind], [numInputVectors]."""
    c, pe = p["NumChannels"], p["PE"]
    ik, ib = p["input_kind"], p["input_bits"]
    steps = p["numSteps"]
    vecs = p.get("numInputVectors", [1])
    n = int(np.prod(vecs))
    lo, hi = value_range(ik, ib)
    thr = _sorted_thresholds(rng, 1 if p.get("shared") else c, steps, lo - 1, hi + 1)
    ok = p.get("output_kind", "unsigned")
    act = p.get("ActVal", 0)
    ob = 1 if ok == "bipolar" else p.get("output_bits", max(1, (steps + max(act, 0)).bit_length()))
    if ok == "signed":
        ob = p.get("output_bits", max((steps + act).bit_length(), (-act).bit_length()) + 1)
    x = rand_values(rng, ik, ib, (n, c))
    y = ref_multithreshold(x, thr, act)
    if ok == "bipolar":
        y = 2 * y - 1
    params = dict(
        NumChannels=c,
        PE=pe,
        thresholds=_l(thr),
        input_kind=ik,
        input_bits=ib,
        output_kind=ok,
        output_bits=ob,
        ActVal=act,
        numInputVectors=list(vecs),
    )
    return Case(
        "Thresholding",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, pe, ob, ok)},
    )


def case_fmpadding(p: dict, rng) -> Case:
    """p: ImgDim, Padding, NumChannels, SIMD, input_kind, input_bits, [numInputVectors]."""
    h, w = p["ImgDim"]
    c, simd = p["NumChannels"], p["SIMD"]
    ik, ib = p["input_kind"], p["input_bits"]
    n = p.get("numInputVectors", 1)
    img = rand_values(rng, ik, ib, (n, h, w, c))
    out = ref_fmpadding(img, p["Padding"])
    params = dict(
        ImgDim=[h, w],
        Padding=list(p["Padding"]),
        NumChannels=c,
        SIMD=simd,
        input_kind=ik,
        input_bits=ib,
        numInputVectors=n,
    )
    return Case(
        "FMPadding",
        params,
        inputs={"i": words_of(img, simd, ib, ik)},
        expected={"o": words_of(out, simd, ib, ik)},
    )


def case_pool(p: dict, rng) -> Case:
    """p: Channels, PE, KernelSize, OutImgDims, input_kind, input_bits, [BatchSize]."""
    c, pe = p["Channels"], p["PE"]
    kh, kw = p["KernelSize"]
    oh, ow = p["OutImgDims"]
    ik, ib = p["input_kind"], p["input_bits"]
    nb = p.get("BatchSize", 1)
    x = rand_values(rng, ik, ib, (nb * oh * ow, c // pe, kh * kw, pe))
    y = ref_maxpool_stream(x)
    params = dict(
        Channels=c,
        PE=pe,
        KernelSize=[kh, kw],
        OutImgDims=[oh, ow],
        input_kind=ik,
        input_bits=ib,
        Function="MaxPool",
        BatchSize=nb,
    )
    return Case(
        "Pool",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, pe, ib, ik)},
    )


def case_label_select(p: dict, rng) -> Case:
    """p: Labels, PE, input_kind, input_bits, [numInputVectors], [ties]."""
    labels, pe = p["Labels"], p["PE"]
    ik, ib = p["input_kind"], p["input_bits"]
    vecs = p.get("numInputVectors", [1])
    n = int(np.prod(vecs))
    if p.get("ties"):
        lo, hi = value_range(ik, ib)
        x = rng.integers(lo, min(hi, lo + 2) + 1, size=(n, labels))  # few values: many ties
    else:
        x = rand_values(rng, ik, ib, (n, labels))
    y = ref_label_select(x)
    ob = p.get("output_bits", max(8, -(-max(1, (labels - 1).bit_length()) // 8) * 8))
    params = dict(
        Labels=labels,
        PE=pe,
        K=1,
        input_kind=ik,
        input_bits=ib,
        output_bits=ob,
        numInputVectors=list(vecs),
    )
    return Case(
        "LabelSelect",
        params,
        inputs={"i": words_of(x, pe, ib, ik)},
        expected={"o": words_of(y, 1, ob, "unsigned")},
    )


def case_width_converter(p: dict, rng) -> Case:
    """p: inWidth, outWidth, data_kind, data_bits, inShape."""
    k, b = p["data_kind"], p["data_bits"]
    shape = list(p["inShape"])
    x = rand_values(rng, k, b, shape).reshape(-1)
    params = dict(
        inWidth=p["inWidth"], outWidth=p["outWidth"], data_kind=k, data_bits=b, inShape=shape
    )
    return Case(
        "StreamingDataWidthConverter",
        params,
        inputs={"i": words_of(x, p["inWidth"] // b, b, k)},
        expected={"o": words_of(x, p["outWidth"] // b, b, k)},
    )


def case_sliding_window(p: dict, rng) -> Case:
    """p: ConvKernelDim, IFMChannels, IFMDim, SIMD, Stride, [Dilation], [depthwise],
    input_kind, input_bits, [images]."""
    kh, kw = p["ConvKernelDim"]
    h, w = p["IFMDim"]
    c, simd = p["IFMChannels"], p["SIMD"]
    sh, sw = p.get("Stride", [1, 1])
    dh, dw = p.get("Dilation", [1, 1])
    dwise = int(p.get("depthwise", 0))
    ik, ib = p["input_kind"], p["input_bits"]
    nimg = p.get("images", 1)
    oh = (h - dh * (kh - 1) - 1) // sh + 1
    ow = (w - dw * (kw - 1) - 1) // sw + 1
    imgs = rand_values(rng, ik, ib, (nimg, h, w, c))
    out = np.concatenate(
        [ref_sliding_window(im, (kh, kw), (sh, sw), (dh, dw), simd, bool(dwise)) for im in imgs]
    )
    params = dict(
        ConvKernelDim=[kh, kw],
        IFMChannels=c,
        IFMDim=[h, w],
        OFMDim=[oh, ow],
        SIMD=simd,
        Stride=[sh, sw],
        Dilation=[dh, dw],
        depthwise=dwise,
        input_kind=ik,
        input_bits=ib,
    )
    return Case(
        "SlidingWindow",
        params,
        inputs={"i": words_of(imgs, simd, ib, ik)},
        expected={"o": words_of(out, simd, ib, ik)},
    )


def case_mvau(p: dict, rng) -> Case:
    """p: MW, MH, PE, SIMD, input_kind, input_bits, weight_kind, weight_bits,
    [binaryXnorMode], [noActivation], [numSteps], [ActVal], [output_kind], [output_bits],
    [numInputVectors], [array], [array_options]."""
    mw, mh, pe, simd = p["MW"], p["MH"], p["PE"], p["SIMD"]
    ik, ib, wk, wb = p["input_kind"], p["input_bits"], p["weight_kind"], p["weight_bits"]
    xnor = int(p.get("binaryXnorMode", 0))
    noact = int(p.get("noActivation", 0))
    vecs = p.get("numInputVectors", [1])
    n = int(np.prod(vecs))
    if xnor:  # FINN's BINARY values 0/1, read as bipolar
        x = rng.integers(0, 2, size=(n, mw))
        w = rng.integers(0, 2, size=(mw, mh))
    else:
        x = rand_values(rng, ik, ib, (n, mw))
        w = rand_values(rng, wk, wb, (mw, mh))
    popcount = bool(xnor) or (ik == "bipolar" and wk == "bipolar")
    acc = ref_mvau_acc(x, w, popcount)
    if popcount:
        alo, ahi = 0, mw
    else:
        lo_x, hi_x = value_range(ik, ib)
        lo_w, hi_w = value_range(wk, wb)
        prods = [a * b for a in (lo_x, hi_x) for b in (lo_w, hi_w)]
        alo, ahi = mw * min(min(prods), 0), mw * max(max(prods), 0)
    params = dict(
        MW=mw,
        MH=mh,
        PE=pe,
        SIMD=simd,
        weights=_l(w),
        input_kind=ik,
        input_bits=ib,
        weight_kind=wk,
        weight_bits=wb,
        binaryXnorMode=xnor,
        noActivation=noact,
        numInputVectors=list(vecs),
        array=p.get("array", "parallel"),
        array_options=dict(p.get("array_options", {})),
    )
    in_kind = "unsigned" if xnor else ik
    if noact:
        ok = "unsigned" if alo >= 0 else "signed"
        ob = p.get("output_bits")
        if ob is None:
            ob = (
                max(1, ahi.bit_length())
                if ok == "unsigned"
                else (max(ahi.bit_length(), (-alo - 1).bit_length()) + 1)
            )
        y = acc
    else:
        steps = p.get("numSteps", 3)
        ok = p.get("output_kind", "unsigned")
        act = p.get("ActVal", 0)
        thr = _sorted_thresholds(rng, mh, steps, alo - 1, ahi + 1)
        if popcount:
            thr = np.clip(thr, 0, None)  # FINN asserts non-negative thresholds in XNOR mode
        y = ref_multithreshold(acc, thr, act)
        if ok == "bipolar":
            ob = 1
            y = 2 * y - 1
        else:
            ob = p.get("output_bits", max(1, (steps + max(act, 0)).bit_length()) + (ok == "signed"))
        params.update(thresholds=_l(thr), ActVal=act)
    params.update(output_kind=ok, output_bits=ob)
    return Case(
        "MVAU",
        params,
        inputs={"i": words_of(x, simd, ib, in_kind)},
        expected={"o": words_of(y, pe, ob, ok)},
    )


_MAKERS = {
    "Thresholding": case_thresholding,
    "FMPadding": case_fmpadding,
    "Pool": case_pool,
    "LabelSelect": case_label_select,
    "StreamingDataWidthConverter": case_width_converter,
    "SlidingWindow": case_sliding_window,
    "MVAU": case_mvau,
}


def make_case(component: str, params: dict, rng: np.random.Generator) -> Case:
    """Random case for ``component`` with structural ``params`` (see each ``case_*``)."""
    return _MAKERS[component](params, rng)


def run_case(case: Case, *, seed: int = 0, gap: float = 0.3, stall: float = 0.3, dut=None, **kw):
    """Simulate ``case`` (on ``dut``, default ``case.build()``) in Amaranth's simulator with
    random input gaps and output stalls; return the :class:`~bitfab.sim.amaranth_stream.StreamRun`."""
    from bitfab.sim.amaranth_stream import run_streams

    dut = case.build() if dut is None else dut
    return run_streams(
        dut,
        case.inputs,
        {k: len(v) for k, v in case.expected.items()},
        seed=seed,
        gap=gap,
        stall=stall,
        setup=case.setup,
        **kw,
    )


# --------------------------------------------------------------------------------------------
# FINN's own Python execution of a one-node graph (for cross-checks)
# --------------------------------------------------------------------------------------------


def finn_dtype(kind: str, bits: int) -> str:
    """FINN/qonnx data type name of a (kind, bits) pair."""
    if kind == "bipolar":
        return "BIPOLAR"
    if kind == "unsigned":
        return "BINARY" if bits == 1 else f"UINT{bits}"
    return f"INT{bits}"


def finn_execute(
    op_type: str,
    attrs: dict,
    x: np.ndarray,
    out_shape,
    *,
    in_dtype: str,
    out_dtype: str | None = None,
    params: tuple = (),
) -> np.ndarray:
    """Run one FINN HW node (``finn.custom_op.fpgadataflow``) with qonnx ``execute_onnx``.

    ``params`` are ``(array, dtype_name)`` initializers for the node's inputs after the data
    input (weights, thresholds).
    """

    importlib.import_module("finn.custom_op.fpgadataflow")  # registers FINN's HW ops with qonnx
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    inp = helper.make_tensor_value_info("inp", TensorProto.FLOAT, list(x.shape))
    outp = helper.make_tensor_value_info("outp", TensorProto.FLOAT, list(out_shape))
    pnames = [f"param{k}" for k in range(len(params))]
    node = helper.make_node(
        op_type,
        ["inp", *pnames],
        ["outp"],
        domain="finn.custom_op.fpgadataflow",
        backend="fpgadataflow",
        **attrs,
    )
    graph = helper.make_graph([node], f"single_{op_type}", [inp], [outp])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="bitfab-tests"))
    model.set_tensor_datatype("inp", DataType[in_dtype])
    if out_dtype:
        model.set_tensor_datatype("outp", DataType[out_dtype])
    for name, (arr, dt) in zip(pnames, params, strict=True):
        model.set_initializer(name, np.asarray(arr, dtype=np.float32))
        model.set_tensor_datatype(name, DataType[dt])
    out = execute_onnx(model, {"inp": np.asarray(x, dtype=np.float32)})
    return np.asarray(out["outp"])


def onnx_execute(
    op_type: str,
    attrs: dict,
    x: np.ndarray,
    out_shape,
    *,
    domain: str = "",
    in_dtype: str | None = None,
    params: tuple = (),
    aux_outputs: int = 0,
    out_int64: bool = False,
) -> np.ndarray:
    """Run one standard ONNX or qonnx node (``domain="qonnx.custom_op.general"``) with qonnx
    ``execute_onnx`` - the functions FINN's HW ops delegate their Python execution to.
    ``params``: ``(array, dtype_name or None, numpy dtype)`` for the inputs after ``x``;
    ``aux_outputs`` node outputs (same shape) come before the returned one (TopK: values)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.basic import qonnx_make_model

    inp = helper.make_tensor_value_info("inp", TensorProto.FLOAT, list(x.shape))
    elem = TensorProto.INT64 if out_int64 else TensorProto.FLOAT
    outp = helper.make_tensor_value_info("outp", elem, list(out_shape))
    aux = [f"aux{k}" for k in range(aux_outputs)]
    aux_vi = [helper.make_tensor_value_info(a, TensorProto.FLOAT, list(out_shape)) for a in aux]
    pnames = [f"param{k}" for k in range(len(params))]
    kwargs = {"domain": domain} if domain else {}
    node = helper.make_node(op_type, ["inp", *pnames], [*aux, "outp"], **attrs, **kwargs)
    graph = helper.make_graph([node], f"single_{op_type}", [inp], [*aux_vi, outp])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="bitfab-tests"))
    if in_dtype:
        model.set_tensor_datatype("inp", DataType[in_dtype])
    for name, (arr, dt, np_type) in zip(pnames, params, strict=True):
        model.set_initializer(name, np.asarray(arr, dtype=np_type))
        if dt:
            model.set_tensor_datatype(name, DataType[dt])
    out = execute_onnx(model, {"inp": np.asarray(x, dtype=np.float32)})
    return np.asarray(out["outp"])


# --------------------------------------------------------------------------------------------
# cycle figures for docs/hw_layers.md:  .venv/bin/python -m tests.hw.layer_cases
# --------------------------------------------------------------------------------------------

FIGURE_CONFIGS = [
    (
        "Thresholding",
        dict(
            NumChannels=16,
            PE=4,
            input_kind="unsigned",
            input_bits=8,
            numSteps=3,
            numInputVectors=[1, 4, 4],
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            numInputVectors=[4],
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=1,
            weight_kind="unsigned",
            weight_bits=1,
            binaryXnorMode=1,
            numSteps=1,
            output_kind="bipolar",
            numInputVectors=[4],
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            numInputVectors=[4],
            array="bitserial",
        ),
        1,
    ),
    (
        "MVAU",
        dict(
            MW=32,
            MH=16,
            PE=4,
            SIMD=8,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            numInputVectors=[4],
            array="bitfusion",
        ),
        1,
    ),
    (
        "SlidingWindow",
        dict(
            ConvKernelDim=[3, 3],
            IFMChannels=4,
            IFMDim=[8, 8],
            SIMD=2,
            input_kind="unsigned",
            input_bits=4,
            images=2,
        ),
        2,
    ),
    (
        "SlidingWindow",
        dict(
            ConvKernelDim=[2, 2],
            IFMChannels=4,
            IFMDim=[8, 8],
            SIMD=2,
            Stride=[2, 2],
            depthwise=1,
            input_kind="unsigned",
            input_bits=4,
            images=2,
        ),
        2,
    ),
    (
        "FMPadding",
        dict(
            ImgDim=[8, 8],
            Padding=[1, 1, 1, 1],
            NumChannels=4,
            SIMD=2,
            input_kind="unsigned",
            input_bits=4,
            numInputVectors=2,
        ),
        1,
    ),
    (
        "Pool",
        dict(
            Channels=4,
            PE=2,
            KernelSize=[2, 2],
            OutImgDims=[4, 4],
            input_kind="unsigned",
            input_bits=4,
            BatchSize=2,
        ),
        1,
    ),
    (
        "LabelSelect",
        dict(Labels=10, PE=2, input_kind="signed", input_bits=16, numInputVectors=[4]),
        1,
    ),
    (
        "StreamingDataWidthConverter",
        dict(inWidth=12, outWidth=8, data_kind="unsigned", data_bits=4, inShape=[1, 96]),
        1,
    ),
]


def cycle_figures() -> list[dict]:
    """Simulate each :data:`FIGURE_CONFIGS` entry without gaps/stalls; return the figures."""
    rng = np.random.default_rng(0)
    rows = []
    for comp, p, runs in FIGURE_CONFIGS:
        case = make_case(comp, p, rng)
        run = run_case(case, gap=0, stall=0)
        if run.outputs != case.expected:
            raise AssertionError(f"{comp} {p}: wrong outputs")
        dut = case.build()
        unused_ok(dut)  # built only for its cycle formula
        rows.append(
            dict(
                layer=comp,
                params=p,
                words_in=len(case.inputs["i"]),
                words_out=len(case.expected["o"]),
                measured_cycles=run.cycles,
                finn_cycles=dut.cycles_per_image() * runs,
            )
        )
    return rows


#: Layers synthesized for docs/hw_layers.md (name, component, structural params).
SYNTH_CONFIGS = [
    (
        "MVAU_w1a1_32x32_pe8_simd8",
        "MVAU",
        dict(
            MW=32,
            MH=32,
            PE=8,
            SIMD=8,
            input_kind="unsigned",
            input_bits=1,
            weight_kind="unsigned",
            weight_bits=1,
            binaryXnorMode=1,
            numSteps=1,
            output_kind="unsigned",
            output_bits=1,
        ),
    ),
    (
        "MVAU_w2a2_72x8_pe8_simd8",
        "MVAU",
        dict(
            MW=72,
            MH=8,
            PE=8,
            SIMD=8,
            input_kind="signed",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            ActVal=-2,
            output_kind="signed",
            output_bits=2,
            numInputVectors=[1, 24, 24],
        ),
    ),
    (
        "MVAU_w2a2_72x8_pe8_simd8_bitserial",
        "MVAU",
        dict(
            MW=72,
            MH=8,
            PE=8,
            SIMD=8,
            input_kind="signed",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            ActVal=-2,
            output_kind="signed",
            output_bits=2,
            numInputVectors=[1, 24, 24],
            array="bitserial",
        ),
    ),
    (
        "MVAU_w2a2_256x64_pe4_simd16",
        "MVAU",
        dict(
            MW=256,
            MH=64,
            PE=4,
            SIMD=16,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=2,
            numSteps=3,
            output_kind="unsigned",
            output_bits=2,
        ),
    ),
    (
        "SWG_3x3_c8_26x26_simd8",
        "SlidingWindow",
        dict(
            ConvKernelDim=[3, 3],
            IFMChannels=8,
            IFMDim=[26, 26],
            SIMD=8,
            input_kind="signed",
            input_bits=2,
        ),
    ),
    (
        "Thresholding_c64_pe4_15steps_u8",
        "Thresholding",
        dict(NumChannels=64, PE=4, input_kind="unsigned", input_bits=8, numSteps=15),
    ),
    (
        "Pool_c16_pe8_2x2",
        "Pool",
        dict(
            Channels=16,
            PE=8,
            KernelSize=[2, 2],
            OutImgDims=[4, 4],
            input_kind="signed",
            input_bits=2,
        ),
    ),
]


def synth_figures(target: str = "ecp5-25f", out_root: str = "/tmp/bitfab-layer-synth"):
    """Synthesize and place-and-route each :data:`SYNTH_CONFIGS` layer with
    :func:`bitfab.fpga.synth.synthesize` (LUT fabric, out-of-context harness); yield rows."""
    from bitfab.fpga.synth import synthesize

    rng = np.random.default_rng(0)
    for name, comp, p in SYNTH_CONFIGS:
        dut = make_case(comp, p, rng).build()
        rep = synthesize(dut, target, f"{out_root}/{target}/{name}", name=name)
        d = rep.design_only
        yield dict(
            name=name,
            target=target,
            lut=d.lut,
            ff=d.ff,
            carry=d.carry,
            bram=d.bram,
            fmax_mhz=round(rep.fmax_mhz, 1),
        )


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["synth"]:
        for row in synth_figures(*sys.argv[2:3]):
            print(json.dumps(row), flush=True)
    else:
        for row in cycle_figures():
            print(json.dumps(row))


# --------------------------------------------------------------------------------------------
# layers of a real FINN dataflow graph (tests/dataflow/zoo_small models, FINN golden tensors)
# --------------------------------------------------------------------------------------------


@functools.cache
def finn_graph(family: str):
    """Export ``tests.dataflow.zoo_small`` model ``family``, convert it with
    ``bitfab.dataflow.make_dataflow`` (FINN streamlining + HW layers) and run FINN's golden
    model on one digit. Returns ``(model, tensors)``: ``tensors[node name]`` is the node's
    output (``"input"``: the graph input). Cached per process."""
    import tempfile

    import torch

    from bitfab.dataflow import make_dataflow
    from bitfab.dataflow.golden import GoldenModel
    from tests.dataflow import zoo_small

    tmp = Path(tempfile.mkdtemp(prefix="bitfab-layer-cases-"))
    torch.manual_seed(zoo_small.SEEDS[family])
    path = zoo_small.export(
        zoo_small.FAMILIES[family](), tmp / f"{family}.onnx", seed=zoo_small.SEEDS[family]
    )
    model, _ = make_dataflow(path)
    try:
        from bitfab.models.data import load_dataset

        image = load_dataset("digits", "test")[0][:1].reshape(1, 28, 28)
    except Exception:  # the models stage is optional here
        image = np.random.default_rng(0).integers(0, 256, size=(1, 28, 28))
    _, tensors = GoldenModel(model).layer_tensors(image.astype(np.uint8))
    return model, tensors


def _swg_dw_to_stream(t: np.ndarray, kk: int, c: int, simd: int) -> np.ndarray:
    """FINN's Python layout ``(..., K, C)`` of a depthwise window tensor -> the hardware stream
    order ``(..., C/SIMD, K, SIMD)`` (FINN pool.py: ``(1, OH, OW, C/PE, K, K, PE)``)."""
    lead = t.shape[:-1]
    t = t.reshape(*lead, kk, c // simd, simd)
    return np.moveaxis(t, -3, -2).reshape(*lead, kk * c)


def graph_layer(family: str, node_name: str, fold: dict | None = None, **build_kw):
    """The hardware layer for one node of a FINN dataflow graph, built with ``from_finn`` from
    the node's attributes (PE/SIMD overridden by ``fold``), and its stream words from FINN's
    golden tensors. Returns ``(dut, inputs, expected)`` for ``run_streams``."""
    from onnx import helper
    from qonnx.core.datatype import DataType

    from bitfab.hw.types import finn_kind_bits

    model, tensors = finn_graph(family)
    node = model.get_node_from_name(node_name)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    attrs.update(fold or {})
    producer = model.find_producer(node.input[0])
    x = tensors[producer.name if producer is not None else "input"]
    y = tensors[node.name]
    ikind, ibits = finn_kind_bits(model.get_tensor_datatype(node.input[0]))
    okind, obits = finn_kind_bits(model.get_tensor_datatype(node.output[0]))
    if model.get_tensor_datatype(node.output[0]) == DataType["BIPOLAR"]:
        okind = "bipolar"
    inits = [model.get_initializer(name) for name in node.input[1:]]
    op = node.op_type
    mod, cls = COMPONENTS.get(
        op, COMPONENTS.get({"ConvolutionInputGenerator": "SlidingWindow"}.get(op, op), (None, None))
    )
    if mod is None:
        raise ValueError(f"no bitfab layer for FINN op {op}")
    klass = getattr(importlib.import_module(mod), cls)
    dut = klass.from_finn(attrs, *inits, **build_kw)
    if op == "MVAU":
        in_lanes, out_lanes = attrs["SIMD"], attrs["PE"]
    elif op in ("ConvolutionInputGenerator", "FMPadding"):
        in_lanes = out_lanes = attrs["SIMD"]
        if op == "ConvolutionInputGenerator" and attrs.get("depthwise", 0):
            kk = int(np.prod(attrs["ConvKernelDim"]))
            y = _swg_dw_to_stream(y, kk, attrs["IFMChannels"], attrs["SIMD"])
    elif op == "Pool":
        in_lanes = out_lanes = attrs["PE"]
        x = _swg_dw_to_stream(x, int(np.prod(attrs["KernelSize"])), attrs["Channels"], in_lanes)
    elif op == "LabelSelect":
        in_lanes, out_lanes = attrs["PE"], 1
    else:  # Thresholding
        in_lanes = out_lanes = attrs["PE"]
    xi = np.rint(x).astype(np.int64)
    yi = np.rint(y).astype(np.int64)
    inputs = {"i": words_of(xi, in_lanes, ibits, ikind)}
    expected = {"o": words_of(yi, out_lanes, obits, okind)}
    return dut, inputs, expected


#: Folding used for the graph-layer tests (PE/SIMD per node of the zoo_small graphs).
GRAPH_FOLDS = {
    "tfc_w1a1": {
        "Thresholding_0": dict(PE=16),
        "MVAU_0": dict(PE=8, SIMD=49),
        "MVAU_1": dict(PE=8, SIMD=8),
        "MVAU_2": dict(PE=5, SIMD=8),
        "LabelSelect_0": dict(PE=5),
    },
    "cnv_w2a2": {
        "Thresholding_0": dict(PE=1),
        "ConvolutionInputGenerator_0": dict(SIMD=1),
        "MVAU_0": dict(PE=8, SIMD=9),
        "ConvolutionInputGenerator_1": dict(SIMD=8),
        "MVAU_1": dict(PE=8, SIMD=24),
        "ConvolutionInputGenerator_2": dict(SIMD=4),
        "Pool_0": dict(PE=4),
        "ConvolutionInputGenerator_3": dict(SIMD=8),
        "MVAU_2": dict(PE=16, SIMD=24),
        "ConvolutionInputGenerator_4": dict(SIMD=16),
        "MVAU_3": dict(PE=16, SIMD=48),
        "ConvolutionInputGenerator_5": dict(SIMD=8),
        "Pool_1": dict(PE=8),
        "MVAU_4": dict(PE=8, SIMD=32),
        "MVAU_5": dict(PE=5, SIMD=8),
        "LabelSelect_0": dict(PE=2),
    },
}


def run_graph_layer(family: str, node_name: str, *, gap: float = 0.2, stall: float = 0.2):
    """Simulate one node of a zoo_small dataflow graph (see :func:`graph_layer`); return
    ``(outputs, expected)`` word lists."""
    from bitfab.sim.amaranth_stream import run_streams

    dut, inputs, expected = graph_layer(family, node_name, GRAPH_FOLDS[family][node_name])
    run = run_streams(dut, inputs, {"o": len(expected["o"])}, gap=gap, stall=stall)
    return run.outputs["o"], expected["o"]
