"""FINN ``StreamingFIFO`` as an Amaranth stream FIFO (``lib.fifo.SyncFIFOBuffered``).

FINN inserts FIFOs between dataflow layers to absorb rate differences; the element sequence
is unchanged. Streams: ``i``/``o`` of ``folded_shape[-1] * data_bits`` bits per word.
``lib.fifo.SyncFIFOBuffered`` keeps its storage in a memory (block RAM for large depths) and
registers the output, so ``o.valid``/``o.payload`` never depend combinationally on ``i``.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr
from bitfab.hw.types import check_kind_bits, check_positive, finn_kind_bits


class StreamFIFO(wiring.Component):
    """A stream FIFO of ``depth`` words of ``width`` bits (FINN StreamingFIFO).

    Parameters: ``width`` (bits per word, >= 1), ``depth`` (words, >= 1). One word in and one
    word out per cycle; the first word appears at ``o`` one cycle after it entered.
    """

    def __init__(self, *, width: int, depth: int) -> None:
        self.width = check_positive("width", width)
        self.depth = check_positive("depth", depth)
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(self.width))),
                "o": Out(stream.Signature(unsigned(self.width))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> StreamFIFO:
        """Build from a FINN ``StreamingFIFO`` node: ``depth`` and the word width
        ``folded_shape[-1] * bits(dataType)``."""
        folded: Sequence[int] = finn_attr(attrs, "folded_shape")
        kind, bits = finn_kind_bits(finn_attr(attrs, "dataType"))
        check_kind_bits("dataType", kind, bits, max_bits=64)
        return cls(width=int(folded[-1]) * bits, depth=int(finn_attr(attrs, "depth")))

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.width, depth=self.depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]
        return m
