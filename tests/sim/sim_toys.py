"""Small Amaranth stream components (and numpy references) for the RTL harness self-tests."""

from __future__ import annotations

import numpy as np
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.packing import pack, unpack


class LaneAdder(wiring.Component):
    """Adds the run-time constant ``k`` to every ``width``-bit unsigned lane of each input word,
    through a ``depth``-word FIFO; output lanes are ``width + 1`` bits wide."""

    def __init__(self, lanes: int = 4, width: int = 8, depth: int = 4):
        self.lanes, self.width, self.depth = lanes, width, depth
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(unsigned(width), lanes))),
                "o": Out(stream.Signature(data.ArrayLayout(unsigned(width + 1), lanes))),
                "k": In(width),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.q = q = fifo.SyncFIFOBuffered(width=self.lanes * self.width, depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.i.payload.as_value()),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
            self.o.valid.eq(q.r_rdy),
            q.r_en.eq(self.o.ready),
        ]
        view = data.View(data.ArrayLayout(unsigned(self.width), self.lanes), q.r_data)
        for n in range(self.lanes):
            m.d.comb += self.o.payload[n].eq(view[n] + self.k)
        return m


def lane_adder_ref(words: list[int], k: int, lanes: int, width: int) -> list[int]:
    """numpy reference of :class:`LaneAdder`."""
    a = np.array([unpack(w, width, lanes) for w in words], dtype=np.int64).reshape(-1, lanes)
    return [pack(row, width + 1) for row in (a + k).tolist()]


class DotAcc(wiring.Component):
    """Signed multiply-accumulate over a struct payload ``{a, b, last}``: emits the sum of
    ``a*b`` over the words up to and including one with ``last=1`` (``acc`` bits, signed)."""

    def __init__(self, width: int = 4, acc: int = 16):
        self.w, self.acc = width, acc
        layout = data.StructLayout({"a": signed(width), "b": signed(width), "last": 1})
        super().__init__(
            {"i": In(stream.Signature(layout)), "o": Out(stream.Signature(signed(acc)))}
        )

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(self.acc))
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            s = total + self.i.payload.a * self.i.payload.b
            with m.If(self.i.payload.last):
                m.d.sync += [self.o.payload.eq(s), self.o.valid.eq(1), total.eq(0)]
            with m.Else():
                m.d.sync += total.eq(s)
        return m


def dot_acc_case(rng: np.random.Generator, n_dots: int, width: int, acc: int):
    """Random inputs (struct words) and expected outputs (raw ``acc``-bit words) for DotAcc."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1))
    words, expected = [], []
    for _ in range(n_dots):
        n = int(rng.integers(1, 6))
        a = rng.integers(lo, hi, n)
        b = rng.integers(lo, hi, n)
        for j in range(n):
            last = int(j == n - 1)
            words.append(
                (int(a[j]) & ((1 << width) - 1))
                | ((int(b[j]) & ((1 << width) - 1)) << width)
                | (last << (2 * width))
            )
        expected.append(int(np.dot(a, b)) & ((1 << acc) - 1))
    return words, expected


class SlowIncrement(wiring.Component):
    """Takes one ``width``-bit word, works ``k`` cycles (run-time input, 0..255), then offers the
    word plus one (wrapping); mimics a bit-serial unit that is idle on its streams most cycles."""

    def __init__(self, width: int = 8):
        self.width = width
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(width))),
                "o": Out(stream.Signature(unsigned(width))),
                "k": In(8),
            }
        )

    def elaborate(self, platform):
        m = Module()
        count = Signal(8)
        busy = Signal()
        m.d.comb += self.i.ready.eq(~busy & ~self.o.valid)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [self.o.payload.eq(self.i.payload + 1), busy.eq(1), count.eq(self.k)]
        with m.If(busy):
            with m.If(count == 0):
                m.d.sync += [busy.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count - 1)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m
