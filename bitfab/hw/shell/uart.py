"""8N1 UART transmitter and receiver (one start bit, 8 data bits LSB first, one stop bit).

Both take ``divisor``: clock cycles per bit (e.g. 12 MHz / 115200 baud -> 104). Bytes travel on
Amaranth ``lib.stream`` interfaces with an 8-bit payload.

- :class:`UartTx`: ``i`` (byte stream in), ``tx`` (serial line out, idles high). A byte is taken
  when the transmitter is idle; each bit lasts exactly ``divisor`` cycles; bytes follow each
  other with one extra clock cycle of stop bit.
- :class:`UartRx`: ``rx`` (serial line in, asynchronous: a 2-flop synchroniser first), ``o``
  (byte stream out). A falling edge starts a frame; the start bit is re-checked half a bit
  later (a shorter low pulse is a glitch and ignored) and every following bit is sampled in
  its middle, ``divisor`` cycles apart. A stop bit sampled low is a framing error: the byte is
  dropped and ``ferr`` pulses for one cycle. The byte waits in an output register until taken;
  a new byte arriving before that overwrites it and pulses ``overrun``. The synchroniser
  delays the start edge and the samples alike, so samples land ``divisor // 2`` cycles into
  each bit (+ up to one cycle of edge quantisation). The stop bit is sampled 9.5 bits after
  the start edge, so a clock/baud mismatch of a few percent is tolerated (tested at +-2 %).
"""

from __future__ import annotations

from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from bitfab.errors import BitfabError

#: smallest supported divisor (the receiver needs a half-bit wait of at least one cycle)
MIN_DIVISOR = 8


def check_divisor(divisor: int) -> int:
    """Validate ``divisor`` (clock cycles per bit) and return it as an int."""
    if int(divisor) != divisor or divisor < MIN_DIVISOR:
        raise BitfabError(
            f"UART divisor {divisor!r}: need an integer >= {MIN_DIVISOR} clock cycles per bit; "
            "lower the baud rate or raise the clock"
        )
    return int(divisor)


def divisor_for(clock_hz: float, baud: int) -> int:
    """Clock cycles per bit for ``baud`` at ``clock_hz`` (rounded; error below 2 % checked)."""
    div = round(clock_hz / baud)
    if div < MIN_DIVISOR or abs(clock_hz / div - baud) / baud > 0.02:
        raise BitfabError(
            f"baud {baud} at {clock_hz / 1e6:g} MHz: no divisor within 2 % "
            f"(nearest {div}); pick another baud rate or clock"
        )
    return div


class UartTx(wiring.Component):
    """8N1 transmitter. ``divisor``: clock cycles per bit (>= 8).

    Ports: ``i`` (``In(stream.Signature(8))``, bytes to send), ``tx`` (``Out(1)``, the serial
    line, 1 when idle), ``busy`` (``Out(1)``, a frame is on the line).
    """

    def __init__(self, divisor: int) -> None:
        self.divisor = check_divisor(divisor)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        shreg = Signal(10, init=0x3FF)  # bit 0 is on the line
        bits = Signal(range(11))  # bits left to shift out (0 = idle)
        cnt = Signal(range(d))
        m.d.comb += [
            self.tx.eq(shreg[0]),
            self.i.ready.eq(bits == 0),
            self.busy.eq(bits != 0),
        ]
        with m.If(bits == 0):
            with m.If(self.i.valid):
                m.d.sync += [
                    shreg.eq(Cat(C(0, 1), self.i.payload, C(1, 1))),
                    bits.eq(10),
                    cnt.eq(d - 1),
                ]
        with m.Elif(cnt == 0):
            m.d.sync += [shreg.eq(Cat(shreg[1:], C(1, 1))), bits.eq(bits - 1), cnt.eq(d - 1)]
        with m.Else():
            m.d.sync += cnt.eq(cnt - 1)
        return m


class UartRx(wiring.Component):
    """8N1 receiver with a 2-flop synchroniser and mid-bit sampling. ``divisor``: clock cycles
    per bit (>= 8).

    Ports: ``rx`` (``In(1)``, the serial line, asynchronous), ``o`` (``Out(stream.Signature(8))``,
    received bytes), ``ferr`` (``Out(1)``, one-cycle pulse: stop bit was 0, byte dropped),
    ``overrun`` (``Out(1)``, one-cycle pulse: a byte arrived while the previous one was still
    waiting in ``o``; the old byte is lost), ``busy`` (``Out(1)``, inside a frame).
    """

    def __init__(self, divisor: int) -> None:
        self.divisor = check_divisor(divisor)
        super().__init__(
            {
                "rx": In(1, init=1),
                "o": Out(stream.Signature(8)),
                "ferr": Out(1),
                "overrun": Out(1),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1, stages=2)
        cnt = Signal(range(d))
        bit = Signal(range(8))
        shreg = Signal(8)
        m.d.sync += [self.ferr.eq(0), self.overrun.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("idle"):
                with m.If(~line):
                    m.d.sync += cnt.eq(d // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                m.d.comb += self.busy.eq(1)
                with m.If(cnt == 0):
                    with m.If(~line):
                        m.d.sync += [cnt.eq(d - 1), bit.eq(0)]
                        m.next = "data"
                    with m.Else():
                        m.next = "idle"  # a glitch, not a start bit
                with m.Else():
                    m.d.sync += cnt.eq(cnt - 1)
            with m.State("data"):
                m.d.comb += self.busy.eq(1)
                with m.If(cnt == 0):
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), cnt.eq(d - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
                with m.Else():
                    m.d.sync += cnt.eq(cnt - 1)
            with m.State("stop"):
                m.d.comb += self.busy.eq(1)
                with m.If(cnt == 0):
                    with m.If(line):
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                        m.d.sync += self.overrun.eq(self.o.valid & ~self.o.ready)
                    with m.Else():
                        m.d.sync += self.ferr.eq(1)
                    m.next = "idle"
                with m.Else():
                    m.d.sync += cnt.eq(cnt - 1)
        return m
