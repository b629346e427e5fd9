"""Small Amaranth designs for the flow tests (with independently known register counts)."""

from __future__ import annotations

from amaranth import Elaboratable, Module, Signal, signed
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out


class ToyMac(wiring.Component):
    """``lanes`` signed ``width``-bit products summed into one ``acc_width``-bit register.

    Exactly ``acc_width`` flip-flops of its own; output ``o`` is that register.
    """

    def __init__(self, lanes: int = 4, width: int = 4, acc_width: int = 12):
        self.lanes, self.width, self.acc_width = lanes, width, acc_width
        super().__init__(
            {"a": In(lanes * width), "b": In(lanes * width), "o": Out(signed(acc_width))}
        )

    def elaborate(self, platform):
        m = Module()
        w = self.width
        acc = Signal(signed(self.acc_width))
        prods = [
            self.a[i * w : (i + 1) * w].as_signed() * self.b[i * w : (i + 1) * w].as_signed()
            for i in range(self.lanes)
        ]
        m.d.sync += acc.eq(acc + sum(prods))
        m.d.comb += self.o.eq(acc)
        return m


class ToyPassThrough(wiring.Component):
    """Combinational ``y = a`` (``width`` bits) plus ``z = ~a[0]``: no logic worth keeping."""

    def __init__(self, width: int = 8):
        self.width = width
        super().__init__({"a": In(width), "y": Out(width), "z": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.y.eq(self.a), self.z.eq(~self.a[0])]
        return m


class Blinky(Elaboratable):
    """A ``width``-bit counter whose top bit drives LED 0 (board builds)."""

    def __init__(self, width: int = 24):
        self.width = width

    def elaborate(self, platform):
        m = Module()
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        ctr = Signal(self.width)
        m.d.sync += ctr.eq(ctr + 1)
        m.d.comb += led.o.eq(ctr[-1])
        return m
