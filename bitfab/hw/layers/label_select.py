"""FINN ``LabelSelect`` (from ONNX ``TopK``) with ``K=1`` as a streaming Amaranth component.

FINN semantics (``LabelSelect.execute_node`` runs ONNX ``TopK``): the index of the largest of
``Labels`` values; among equal values the lowest index wins (ONNX TopK's order, and
finn-hlslib's strict ``>`` update).

Streams: input ``Labels/PE`` words per vector, word ``j`` holding labels ``j*PE .. j*PE+PE-1``
(lane 0 in the LSBs); output one word per vector holding the index as an
``output_bits``-wide unsigned number (FINN's default ``outputDataType`` is the smallest UINT
for ``Labels-1`` rounded up to 8 bits).
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr, lane, n_vectors
from bitfab.hw.types import check_divides, check_kind_bits, check_positive, finn_kind_bits


def default_output_bits(labels: int) -> int:
    """FINN's default output width: bits of ``labels-1`` rounded up to a multiple of 8."""
    bits = max(1, (labels - 1).bit_length())
    return -(-bits // 8) * 8


class LabelSelect(wiring.Component):
    """FINN LabelSelect, K=1 (arg-max, lowest index on ties).

    Parameters (FINN names): Labels, PE (divides Labels), K (must be 1),
    input_kind/input_bits (``inputDataType``, 1..32 bits: it is often an accumulator),
    output_bits (``outputDataType`` width, unsigned; default as FINN), numInputVectors.
    Ports: ``i``: ``PE*input_bits`` bits; ``o``: ``output_bits`` bits.
    """

    def __init__(
        self,
        *,
        Labels: int,
        PE: int,
        input_kind: str,
        input_bits: int,
        K: int = 1,
        output_bits: int | None = None,
        numInputVectors: int | Sequence[int] = 1,
    ) -> None:
        self.Labels = check_positive("Labels", Labels)
        self.PE = check_positive("PE", PE)
        check_divides("PE", self.PE, "Labels", self.Labels)
        if K != 1:
            raise ValueError(f"K: only K=1 (arg-max) is supported, got {K}")
        self.K = 1
        self.input_kind = input_kind
        self.input_bits = check_kind_bits("input_bits", input_kind, input_bits, max_bits=32)
        if output_bits is None:
            output_bits = default_output_bits(self.Labels)
        if output_bits < max(1, (self.Labels - 1).bit_length()) or output_bits > 32:
            raise ValueError(f"output_bits ({output_bits}) cannot hold label {self.Labels - 1}")
        self.output_bits = int(output_bits)
        self.numInputVectors = numInputVectors
        self.n_vectors = n_vectors(numInputVectors)
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(self.PE * self.input_bits))),
                "o": Out(stream.Signature(unsigned(self.output_bits))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> LabelSelect:
        """Build from a FINN ``LabelSelect`` node's attributes."""
        ik, ib = finn_kind_bits(finn_attr(attrs, "inputDataType"))
        odt = finn_attr(attrs, "outputDataType", "")
        ob = finn_kind_bits(odt)[1] if odt else None
        return cls(
            Labels=finn_attr(attrs, "Labels"),
            PE=finn_attr(attrs, "PE"),
            K=finn_attr(attrs, "K"),
            input_kind=ik,
            input_bits=ib,
            output_bits=ob,
            numInputVectors=finn_attr(attrs, "numInputVectors", [1]),
        )

    def cycles_per_image(self) -> int:
        """FINN ``get_exp_cycles``: ``Labels/PE`` (per vector) times the vector count."""
        return self.Labels // self.PE * self.n_vectors

    def elaborate(self, platform):
        m = Module()
        folds = self.Labels // self.PE
        kind = "unsigned" if self.input_kind == "bipolar" else self.input_kind
        fold = Signal(range(folds))
        best = Signal(self.input_bits)  # raw lane bits of the best value so far
        best_idx = Signal(range(self.Labels))
        o_valid = Signal()
        take = Signal()
        last = Signal()
        m.d.comb += [
            last.eq(fold == folds - 1),
            self.o.valid.eq(o_valid),
            self.i.ready.eq(~last | ~o_valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
        ]
        # scan the word's lanes in index order; a later lane wins only if strictly greater
        cand = lane(best, 0, self.input_bits, kind)
        cand_raw = best
        cand_idx = best_idx
        for p in range(self.PE):
            x = lane(self.i.payload, p, self.input_bits, kind)
            raw = self.i.payload[p * self.input_bits : (p + 1) * self.input_bits]
            win = (x > cand) | (fold == 0) if p == 0 else x > cand
            cand = Mux(win, x, cand)
            cand_raw = Mux(win, raw, cand_raw)
            cand_idx = Mux(win, fold * self.PE + p, cand_idx)
        with m.If(take):
            m.d.sync += [best.eq(cand_raw), best_idx.eq(cand_idx)]
            with m.If(last):
                m.d.sync += [fold.eq(0), self.o.payload.eq(cand_idx), o_valid.eq(1)]
            with m.Else():
                m.d.sync += fold.eq(fold + 1)
        with m.If(o_valid & self.o.ready & ~(take & last)):
            m.d.sync += o_valid.eq(0)
        return m
