"""The LUT and memory cost model of one HW layer: the one model folding, the accelerator report,
the fit to a board, mixed precision and explore all use.

A deliberately simple, documented estimate in LUT4-equivalents; it ranks foldings and, through
the per-family calibration of :mod:`bitfab.fpga.fit` (logic cells = ``a + b x`` the summed
estimate, fitted on measured builds), predicts what a board build places. Widths are in bits:
weight width ``w``, activation (input) width ``a``, accumulator width ``acc``, ``T`` threshold
steps per channel (0 without activation).

- MVAU: control ``40``, the accumulators and one ``acc``-bit comparator per threshold step
  ``PE*acc*(1 + T)``, plus the PE array: bit-parallel (also the model before an array is
  chosen, at folding time) ``PE*SIMD*(w*a + w + a)`` (``w*a`` partial-product and ``w + a``
  adder-tree LUTs per lane), or ``2*PE*SIMD`` as an XNOR popcount; bit-serial
  ``2*PE*SIMD + PE*acc`` (one AND and one adder bit per lane, a shift-add); bit-fusion
  ``6*PE*bricks``.
- Thresholding: ``20 + PE*T*a + PE*out_bits`` (a comparator per step, the step count).
- ConvolutionInputGenerator: ``30 + 2*SIMD*a`` (window multiplexers; line buffers are RAM);
  with ``parallel_window=1`` ``40 + 2*K_h*K_w*SIMD*a``: every window element is a register
  (one LUT4-equivalent per bit, as an iCE40 logic cell) plus a 2:1 multiplexer per bit.
- Pool, LabelSelect: ``20 + 2*PE*a``.
- FMPadding: ``30 + SIMD*a`` (the zero gate in front of the output register, the counters).
- StreamingDataWidthConverter: ``1.5*(in + out)`` stream bits; StreamingFIFO: ``10 + width``.

Memory bits (:func:`memory_bits`): MVAU weights ``MW*MH*w``, thresholds ``MH*T*tbits`` and the
input replay buffer ``SF*SIMD*a``; Thresholding ``C*T*tbits``; sliding-window line buffers
``words*SIMD*a``; FIFO ``depth*width``. Block RAM and DSP counts are the device rules of
:mod:`bitfab.fpga.fit` applied to these memories and to the multipliers.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitfab.errors import BitfabError

#: op types the model covers
COST_OPS: tuple[str, ...] = (
    "MVAU",
    "Thresholding",
    "ConvolutionInputGenerator",
    "Pool",
    "LabelSelect",
    "FMPadding",
    "StreamingDataWidthConverter",
    "StreamingFIFO",
)


@dataclass(frozen=True)
class LayerCost:
    """What the cost model needs to know about one HW layer at one folding (widths in bits).

    ``array`` is the MVAU's PE array kind (``None``: not chosen yet, costed as bit-parallel);
    ``bricks`` the bit-fusion array's brick count (default ``SIMD*ceil(w/2)*ceil(a/2)``);
    ``taps`` the window size ``K_h*K_w`` of a parallel-window sliding window; ``in_width``,
    ``out_width``, ``depth`` the stream widths and depth of width converters and FIFOs.
    """

    op_type: str
    pe: int = 1
    simd: int = 1
    in_bits: int = 1
    weight_bits: int = 0
    acc_bits: int = 0
    out_bits: int = 1
    steps: int = 0
    xnor: bool = False
    parallel_window: bool = False
    taps: int = 1
    array: str | None = None
    bricks: int | None = None
    in_width: int = 0
    out_width: int = 0


def mvau_array_luts(c: LayerCost) -> int:
    """LUT4-equivalents of an MVAU's PE array (the term that depends on the array kind)."""
    pe, simd, w, a = c.pe, c.simd, c.weight_bits, c.in_bits
    if c.array == "bitserial":
        return 2 * pe * simd + pe * c.acc_bits
    if c.array == "bitfusion":
        bricks = c.bricks if c.bricks is not None else simd * ((w + 1) // 2) * ((a + 1) // 2)
        return 6 * pe * bricks
    if c.array not in (None, "parallel"):
        raise BitfabError(f"cost model: no PE array kind {c.array!r}")
    if c.xnor:
        return 2 * pe * simd
    return pe * simd * (w * a + w + a)


def luts(c: LayerCost) -> int:
    """Estimated LUT4-equivalents of one HW layer (the model of the module doc)."""
    op = c.op_type
    if op == "MVAU":
        return 40 + c.pe * c.acc_bits * (1 + c.steps) + mvau_array_luts(c)
    if op == "Thresholding":
        return 20 + c.pe * c.steps * c.in_bits + c.pe * c.out_bits
    if op == "ConvolutionInputGenerator":
        if c.parallel_window:
            return 40 + 2 * c.taps * c.simd * c.in_bits
        return 30 + 2 * c.simd * c.in_bits
    if op in ("Pool", "LabelSelect"):
        return 20 + 2 * c.pe * c.in_bits
    if op == "FMPadding":
        return 30 + c.simd * c.in_bits
    if op == "StreamingDataWidthConverter":
        return int((c.in_width + c.out_width) * 1.5)
    if op == "StreamingFIFO":
        return 10 + c.in_width
    raise BitfabError(f"cost model: no LUT model for op type {op}")


def memory_bits(
    op_type: str,
    *,
    weights: int = 0,
    weight_bits: int = 0,
    channels: int = 0,
    steps: int = 0,
    tbits: int = 0,
    replay_words: int = 0,
    simd: int = 1,
    in_bits: int = 0,
    buffer_words: int = 0,
    depth: int = 0,
    width: int = 0,
) -> int:
    """Bits of memory of one HW layer: weights, thresholds, input replay buffer, line buffers,
    FIFO storage (the module doc); 0 for layers without memory."""
    if op_type == "MVAU":
        return weights * weight_bits + channels * steps * tbits + replay_words * simd * in_bits
    if op_type == "Thresholding":
        return channels * steps * tbits
    if op_type == "ConvolutionInputGenerator":
        return buffer_words * simd * in_bits
    if op_type == "StreamingFIFO":
        return depth * width
    return 0
