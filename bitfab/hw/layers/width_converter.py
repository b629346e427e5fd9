"""FINN ``StreamingDataWidthConverter`` as a streaming Amaranth component.

FINN semantics: the element sequence is unchanged, only regrouped into words of a different
width; ``inWidth`` and ``outWidth`` are multiples of the element width and need not divide each
other (FINN's HLS variant goes through their LCM). bitfab words put the first element in the
LSBs, so the converter is a bit-level FIFO: input bits are appended above the held bits and
output words are taken from the bottom.

Throughput: one word per cycle on the wider side, i.e. about ``max(in words, out words)``
cycles per tensor (at most one bubble per ``lcm(inWidth, outWidth)`` bits when neither width
divides the other).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr
from bitfab.hw.types import check_kind_bits, check_positive, finn_kind_bits


class StreamingDataWidthConverter(wiring.Component):
    """FINN StreamingDataWidthConverter (general widths).

    Parameters (FINN names): inWidth, outWidth (bits, multiples of the element width),
    data_kind/data_bits (``dataType``; elements may be up to 64 bits), inShape (tensor shape,
    used for the word counts and checked to fill whole words on both sides).
    Ports: ``i``: ``inWidth`` bits; ``o``: ``outWidth`` bits.
    """

    def __init__(
        self,
        *,
        inWidth: int,
        outWidth: int,
        data_kind: str,
        data_bits: int,
        inShape: Sequence[int] | None = None,
    ) -> None:
        self.data_kind = data_kind
        self.data_bits = check_kind_bits("data_bits", data_kind, data_bits, max_bits=64)
        self.inWidth = check_positive("inWidth", inWidth)
        self.outWidth = check_positive("outWidth", outWidth)
        for name, w in (("inWidth", self.inWidth), ("outWidth", self.outWidth)):
            if w % self.data_bits:
                raise ValueError(
                    f"{name} ({w}) must be a multiple of the element width {self.data_bits}"
                )
        self.inShape = None if inShape is None else [int(v) for v in inShape]
        if self.inShape is not None:
            total = int(np.prod(self.inShape)) * self.data_bits
            for name, w in (("inWidth", self.inWidth), ("outWidth", self.outWidth)):
                if total % w:
                    raise ValueError(
                        f"{name} ({w}) must divide the tensor's {total} bits (inShape)"
                    )
        # buffer: holds < outWidth bits when it accepts a word, so in+out bits always fit
        self.buffer_bits = self.inWidth + self.outWidth
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(self.inWidth))),
                "o": Out(stream.Signature(unsigned(self.outWidth))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> StreamingDataWidthConverter:
        """Build from a FINN ``StreamingDataWidthConverter`` node's attributes."""
        kind, bits = finn_kind_bits(finn_attr(attrs, "dataType"))
        return cls(
            inWidth=finn_attr(attrs, "inWidth"),
            outWidth=finn_attr(attrs, "outWidth"),
            data_kind=kind,
            data_bits=bits,
            inShape=finn_attr(attrs, "inShape"),
        )

    def words(self) -> tuple[int, int]:
        """(input words, output words) per tensor of ``inShape``."""
        if self.inShape is None:
            raise ValueError("inShape is needed to count words")
        total = int(np.prod(self.inShape)) * self.data_bits
        return total // self.inWidth, total // self.outWidth

    def cycles_per_image(self) -> int:
        """Cycles per tensor at full rate: ``max(input words, output words)``."""
        return max(self.words())

    def elaborate(self, platform):
        m = Module()
        iw, ow, nb = self.inWidth, self.outWidth, self.buffer_bits
        step = math.gcd(iw, ow)
        buf = Signal(nb)
        count = Signal(range(nb + 1))  # valid bits held in buf (a multiple of `step`)
        out_fire = Signal()
        in_fire = Signal()
        after_out = Signal(range(nb + 1))
        m.d.comb += [
            self.o.valid.eq(count >= ow),
            self.o.payload.eq(buf[:ow]),
            out_fire.eq(self.o.valid & self.o.ready),
            after_out.eq(count - (out_fire * ow)),
            self.i.ready.eq(after_out + iw <= nb),
            in_fire.eq(self.i.valid & self.i.ready),
        ]
        shifted = Signal(nb)
        m.d.comb += shifted.eq(buf >> (out_fire * ow))
        with m.If(in_fire):
            # place the new word at bit `after_out` (a multiple of `step`)
            placed = Signal(nb)
            slots = nb // step
            with m.Switch(after_out):
                for s in range(slots + 1):
                    pos = s * step
                    if pos + iw > nb:
                        break
                    with m.Case(pos):
                        m.d.comb += placed.eq(self.i.payload << pos)
            m.d.sync += [buf.eq(shifted | placed), count.eq(after_out + iw)]
        with m.Else():
            m.d.sync += [buf.eq(shifted), count.eq(after_out)]
        return m
