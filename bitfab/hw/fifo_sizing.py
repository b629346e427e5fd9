"""FIFO depths between the units of a streaming accelerator, by analysis.

A linear chain of units with valid/ready back-pressure cannot deadlock: every unit, given
output space, eventually takes all input of an image (no unit waits for two streams). The
FIFOs therefore only decide whether the pipeline reaches its steady-state initiation
interval (the slowest unit's cycles per image, :mod:`bitfab.hw.perf`). The rules, per boundary
(depths in words of the boundary's stream):

- into an MVAU: ``SF + 2`` words (one whole input vector). The MVAU takes input only during
  its first neuron fold and replays the vector from its buffer for the other ``NF - 1`` folds;
  the FIFO lets the producer write the next vector meanwhile, so the MVAU never waits
  longer than the producer's own period (finn-hlslib's input FIFO does the same job);
- into a sliding window: one input row (``IFMDim[1] * IFMChannels / SIMD`` words) + 2, so the
  producer keeps running while the window generator emits a row of windows without reading;
- into a width converter, Thresholding, Pool, LabelSelect, FMPadding (one word per cycle,
  steady rate): 3 words;
- everything is capped at one image's words at the boundary + 2 (a whole image decouples
  the two sides completely) and at least :data:`MIN_DEPTH` = 3: ``StreamFIFO`` is
  ``lib.fifo.SyncFIFOBuffered``, whose inner FIFO has ``depth - 1`` entries; at depth 2 that
  is one entry, which cannot be written and read in the same cycle, so a depth-2 FIFO passes
  only one word every two cycles (measured: it halves a sliding window's rate).

:func:`fifo_depths` returns the depths and the rule that chose each one, recorded in
``accelerator.json``. The tests and ``bitfab verify`` check the resulting initiation interval
against the model in RTL simulation.
"""

from __future__ import annotations

from dataclasses import dataclass

from bitfab.hw.compiler import LayerSpec

#: Smallest depth that passes one word per cycle (see the module docstring).
MIN_DEPTH = 3


@dataclass(frozen=True)
class FifoChoice:
    """Depth (words) of the FIFO after layer ``after`` and why."""

    after: str
    depth: int
    width: int
    rule: str

    @property
    def bits(self) -> int:
        return self.depth * self.width


def _need(consumer: LayerSpec, unit) -> tuple[int, str]:  # noqa: ANN001
    op = consumer.op_type
    if op == "MVAU":
        return unit.SF + 2, "one input vector of the MVAU (SF + 2)"
    if op == "ConvolutionInputGenerator":
        row = unit.IFMDim[1] * (unit.IFMChannels // unit.SIMD)
        return row + 2, "one input row of the sliding window + 2"
    return MIN_DEPTH, f"steady-rate consumer: {MIN_DEPTH} words (full rate)"


def fifo_depths(specs: list[LayerSpec], units: list) -> list[FifoChoice]:
    """One :class:`FifoChoice` per boundary between consecutive units."""
    out = []
    for k in range(len(specs) - 1):
        prod, cons = specs[k], specs[k + 1]
        need, rule = _need(cons, units[k + 1])
        cap = prod.fmt_out.words + 2
        depth = max(MIN_DEPTH, min(need, cap))
        if depth == cap and cap < need:
            rule += f", capped at one image ({prod.fmt_out.words} words) + 2"
        out.append(FifoChoice(prod.name, depth, prod.fmt_out.width, rule))
    return out
