"""Performance model of a streaming accelerator, evaluated before any simulation.

Per layer (all figures in clock cycles):

- ``cycles``: cycles per image of the unit when it is never starved nor stalled. MVAU:
  ``MH/PE * MW/SIMD * prod(numInputVectors) * array.cycles_per_fold(wbits, abits)`` (1 per fold
  bit-parallel, ``wbits*abits`` bit-serial, bit-fusion's brick schedule); Thresholding,
  Pool, LabelSelect, FMPadding: FINN's ``get_exp_cycles`` (one word per cycle); width
  converters: ``max(in words, out words)``. Sliding windows: FINN's ``get_exp_cycles`` (the
  buffer fill plus the output rows; measured within 0.2 % on cnv's 28x28 first layer);
  parallel-window sliding windows (``parallel_window=1``): ``IFMDim_h * IFMDim_w`` (one
  pixel per cycle, a whole window per output word).
- ``first_own``/``need``/``tail``/``lat``: when the first and last output words come relative
  to the input (see :class:`LayerPerf`).

Whole model: the initiation interval (cycles per image, images back to back) is the largest
``cycles`` of any unit, which the FIFO sizing (:mod:`bitfab.hw.fifo_sizing`) makes reachable.
The latency of one image (first input word accepted -> last output word) follows the chain
(:func:`model_perf`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from bitfab.dataflow import cost
from bitfab.errors import BitfabError
from bitfab.hw.compiler import LayerSpec
from bitfab.hw.layers.sliding_window import SlidingWindowParallel

#: Extra cycles of a StreamFIFO (``SyncFIFOBuffered``: one cycle in, registered output).
FIFO_LATENCY = 1


@dataclass
class LayerPerf:
    """Performance figures of one unit (clock cycles; ``per_fold`` cycles per fold of an
    MVAU's PE array, 1 otherwise). ``first_own``: cycles from the first input word to the
    first output word when the input is never late; ``need``: the fraction of an image's
    input words that must have arrived before the first output (one vector for an MVAU, the
    line-buffer fill for a sliding window, all for LabelSelect); ``tail``: cycles from the
    last input word to the last output word; ``lat``: pipeline latency added to both;
    ``need_last``: the fraction of the input words up to the last one the unit uses (a sliding
    window whose last rows or columns fall outside every window ends that much earlier)."""

    name: str
    op_type: str
    cycles: int
    finn_cycles: int
    first_own: int
    need: float
    tail: int
    lat: int = 1
    per_fold: int = 1
    need_last: float = 1.0

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class ModelPerf:
    """Whole-accelerator estimate: ``ii`` cycles per image (back to back), ``latency`` cycles
    of one image through the empty pipeline (first input word to last output word),
    ``bottleneck`` the unit setting ``ii``."""

    layers: list[LayerPerf]
    ii: int
    latency: int
    bottleneck: str

    def total_cycles(self, n_images: int) -> int:
        """Estimated cycles until the last output of ``n_images`` back-to-back images."""
        return self.latency + max(0, n_images - 1) * self.ii

    def to_json(self) -> dict:
        return {
            "cycles_per_image": self.ii,
            "latency": self.latency,
            "bottleneck": self.bottleneck,
            "layers": [ly.to_json() for ly in self.layers],
        }


def layer_perf(spec: LayerSpec, unit) -> LayerPerf:  # noqa: ANN001 - an Amaranth component
    """Performance figures of one built unit (``spec.build()``)."""
    op = spec.op_type
    finn = int(unit.cycles_per_image()) if hasattr(unit, "cycles_per_image") else 0
    w_in, w_out = spec.fmt_in.words, spec.fmt_out.words
    if op == "MVAU":
        pf = int(unit.array.cycles_per_fold(unit.weight_bits, unit.input_bits))
        fold = unit.SF * pf
        lat = int(unit.array.latency) + 2  # array pipeline + threshold stage + output FIFO
        return LayerPerf(
            spec.name, op, finn, finn, fold, 1 / unit.n_vectors, (unit.NF - 1) * fold + pf, lat, pf
        )
    if op == "ConvolutionInputGenerator":
        (kh, kw), (_, w) = unit.ConvKernelDim, unit.IFMDim
        cf = unit.IFMChannels // unit.SIMD
        (dh, dw), (sh, sw) = unit.Dilation, unit.Stride
        (oh, ow) = unit.OFMDim
        # the last input word any window uses (rows/columns past it are read and dropped)
        last_px = ((oh - 1) * sh + (kh - 1) * dh) * w + (ow - 1) * sw + (kw - 1) * dw
        need_last = ((last_px + 1) * cf - 1) / max(1, w_in - 1)
        if isinstance(unit, SlidingWindowParallel):
            # one pixel per cycle in; a window leaves one cycle after its last pixel
            span = unit.span
            return LayerPerf(spec.name, op, finn, finn, span, span / w_in, 1, 0, 1, need_last)
        fill = ((kh - 1) * dh * w + (kw - 1) * dw + 1) * cf
        # after the last used input word, the windows that need it remain: the last window
        # (KH*KW*CF words) when the input is the slower side (otherwise `cycles` dominates)
        window = w_out // max(1, oh * ow)
        return LayerPerf(spec.name, op, finn, finn, fill, fill / w_in, window, 2, 1, need_last)
    if op == "Pool":
        kk = int(np.prod(unit.KernelSize))
        return LayerPerf(spec.name, op, finn, finn, kk, kk / w_in, 1, 1)
    if op == "LabelSelect":
        return LayerPerf(spec.name, op, finn, finn, w_in, 1.0, 1, 1)
    if op == "StreamingDataWidthConverter":
        ratio = max(1, math.ceil(unit.outWidth / unit.inWidth))
        cyc = max(w_in, w_out)
        return LayerPerf(
            spec.name, op, cyc, cyc, ratio, ratio / w_in, max(1, w_out // max(1, w_in)), 1
        )
    # Thresholding, FMPadding, StreamingFIFO: one word per cycle, registered output
    return LayerPerf(spec.name, op, finn or w_in, finn or w_in, 1, 1 / max(1, w_in), 1, 1)


def model_perf(specs: list[LayerSpec], units: list, fifo_depths: list[int]) -> ModelPerf:
    """Whole-model estimate for built ``units`` of ``specs`` and the FIFO depths between them.

    Latency recurrence over the chain (times from the first input word of the image): unit
    ``l`` sees its first input word at ``S_l`` (the previous unit's first output, plus one
    cycle through a FIFO) and its last at ``L_l`` (the previous unit's last output); its
    first output comes at ``max(S_l + first_own, S_l + need * (L_l - S_l)) + lat`` and its
    last at ``max(S_l + cycles, S_l + need_last * (L_l - S_l) + tail) + lat``."""
    layers = [layer_perf(s, u) for s, u in zip(specs, units, strict=True)]
    s_in, l_in = 0.0, float(max(0, specs[0].fmt_in.words - 1))  # input words back to back
    for k, ly in enumerate(layers):
        first = max(s_in + ly.first_own, s_in + ly.need * (l_in - s_in)) + ly.lat
        last = max(s_in + ly.cycles, s_in + ly.need_last * (l_in - s_in) + ly.tail) + ly.lat
        hop = FIFO_LATENCY if k < len(fifo_depths) and fifo_depths[k] > 0 else 0
        s_in, l_in = first + hop, last + hop
    bottleneck = max(layers, key=lambda ly: ly.cycles)
    return ModelPerf(layers, bottleneck.cycles, int(round(l_in)), bottleneck.name)


# --------------------------------------------------------------------------------------------
# resources: memory bits and a LUT4 estimate (a documented ranking model, not synthesis)
# --------------------------------------------------------------------------------------------


def layer_cost(spec: LayerSpec, unit) -> cost.LayerCost:  # noqa: ANN001 - an Amaranth component
    """The cost model's view (:class:`bitfab.dataflow.cost.LayerCost`) of one built unit."""
    op = spec.op_type
    if op == "MVAU":
        return cost.LayerCost(
            op,
            pe=unit.PE,
            simd=unit.SIMD,
            in_bits=unit.input_bits,
            weight_bits=unit.weight_bits,
            acc_bits=int(unit.acc_width),
            steps=int(unit.numSteps),
            xnor=bool(unit.popcount),
            array=unit.array_kind,
            bricks=getattr(unit.array, "bricks", None),
        )
    if op == "Thresholding":
        return cost.LayerCost(
            op,
            pe=unit.PE,
            in_bits=unit.input_bits,
            out_bits=unit.output_bits,
            steps=int(unit.numSteps),
        )
    if op == "ConvolutionInputGenerator":
        parallel = isinstance(unit, SlidingWindowParallel)
        taps = int(np.prod(unit.ConvKernelDim)) if parallel else 1
        return cost.LayerCost(
            op, simd=unit.SIMD, in_bits=unit.input_bits, parallel_window=parallel, taps=taps
        )
    if op in ("Pool", "LabelSelect"):
        return cost.LayerCost(op, pe=unit.PE, in_bits=unit.input_bits)
    if op == "FMPadding":
        return cost.LayerCost(op, simd=unit.SIMD, in_bits=unit.input_bits)
    if op == "StreamingDataWidthConverter":
        return cost.LayerCost(op, in_width=unit.inWidth, out_width=unit.outWidth)
    if op == "StreamingFIFO":
        return cost.LayerCost(op, in_width=unit.width)
    raise BitfabError(f"layer {spec.name}: no cost model for op type {op}")


def memory_bits(spec: LayerSpec, unit) -> int:  # noqa: ANN001
    """Bits of memory (weights, thresholds, line buffers, FIFO storage) of one unit
    (:func:`bitfab.dataflow.cost.memory_bits`)."""
    op = spec.op_type
    if op == "MVAU":
        steps = int(unit.numSteps) if unit.thresholds is not None else 0
        return cost.memory_bits(
            op,
            weights=unit.MW * unit.MH,
            weight_bits=unit.weight_bits,
            channels=unit.MH,
            steps=steps,
            tbits=int(unit.tbits) if steps else 0,
            replay_words=unit.SF,
            simd=unit.SIMD,
            in_bits=unit.input_bits,
        )
    if op == "Thresholding":
        return cost.memory_bits(
            op, channels=unit.NumChannels, steps=int(unit.numSteps), tbits=int(unit.tbits)
        )
    if op == "ConvolutionInputGenerator":
        return cost.memory_bits(
            op, buffer_words=unit.buffer_words, simd=unit.SIMD, in_bits=unit.input_bits
        )
    if op == "StreamingFIFO":
        return cost.memory_bits(op, depth=unit.depth, width=unit.width)
    return 0


def lut_estimate(spec: LayerSpec, unit) -> int:  # noqa: ANN001
    """Estimated LUT4s of one unit (:func:`bitfab.dataflow.cost.luts`, with its PE array)."""
    return cost.luts(layer_cost(spec, unit))
