"""Out-of-context harness: put any Amaranth component on a device with three pins.

A PE array has thousands of port bits (a 16x64 W8A8 array takes 8,704 input bits per fold), far
more than any package has pins, and logic whose inputs are constants or whose outputs go nowhere
is deleted by synthesis. The harness keeps every bit of the design alive and honest:

* **Inputs**: every input port bit of the design is driven by its own flip-flop of one long shift
  chain fed from a single pin ``sin``. Each input is thus an independent register output, exactly
  what a real accelerator's input registers / memory read ports look like to the design, so
  synthesis can neither constant-fold nor share logic across inputs (an LFSR or a few pins fanned
  out would let ABC simplify the design's logic against correlated inputs).
* **Outputs**: every output port bit feeds a *pipelined* XOR-reduction tree (4 inputs per LUT,
  one register level per LUT level) ending in ``out_pins`` registered pins ``sout``. Every output
  bit is observable (nothing is optimized away) and the tree adds exactly one LUT level after
  the design's own outputs, so it does not set the clock unless the design is trivial.
* **Cost**: the harness cost is measured, not estimated: the flow synthesizes the same harness
  a second time with the design replaced by a Yosys black box (which still consumes every signal,
  so the chain and the tree survive) and subtracts. See :mod:`bitfab.fpga.synth`.

Clock and reset: the design and the harness share Amaranth's ``sync`` domain, so the top level
has ``clk`` and ``rst`` pins besides ``sin`` and ``sout``.
"""

from __future__ import annotations

from amaranth import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow

from bitfab.hw.elaboratable import unused_ok

#: Name of the design's submodule inside the harness (Yosys module ``<top>.dut``).
DUT_NAME = "dut"


def _port_bits(component: wiring.Component) -> tuple[list[Value], list[Value]]:
    """The component's input and output port values (flows resolved through nested signatures)."""
    ins, outs = [], []
    for _path, member, value in component.signature.flatten(component):
        raw = value.as_value() if hasattr(value, "as_value") else Value.cast(value)
        (ins if member.flow == Flow.In else outs).append(raw)
    return ins, outs


def xor_tree_levels(n_bits: int, out_pins: int, fan_in: int = 4) -> list[int]:
    """Register counts per level of the pipelined XOR tree reducing ``n_bits`` to ``out_pins``.

    Level sizes shrink by ``fan_in`` (rounding up) until at most ``out_pins`` remain; an empty
    list means the outputs already fit on the pins.
    """
    levels = []
    n = n_bits
    while n > out_pins:
        n = -(-n // fan_in)
        levels.append(n)
    return levels


class OutOfContextHarness(Elaboratable):
    """Wrap ``dut`` (a ``wiring.Component``) for synthesis without board pins.

    Pins: ``sin`` (1 bit, in), ``sout`` (``n_sout`` <= ``out_pins`` bits, out), plus the ``sync``
    domain's ``clk`` and ``rst``.

    Attributes:
        n_in: input port bits of the design (= shift-chain flip-flops).
        n_out: output port bits of the design (= XOR-tree leaves).
        n_sout: output pins actually used (``min(out_pins, n_out)`` or the tree's last level).
    """

    def __init__(self, dut: wiring.Component, *, out_pins: int = 4) -> None:
        unused_ok(self)  # no "unused" warning if construction fails below
        if not isinstance(dut, wiring.Component):
            raise TypeError(f"the harness needs an amaranth wiring.Component, got {type(dut)!r}")
        if out_pins < 1:
            raise ValueError(f"out_pins must be >= 1, got {out_pins}")
        self.dut = dut
        self.out_pins = out_pins
        ins, outs = _port_bits(dut)
        self._ins, self._outs = ins, outs
        self.n_in = sum(len(v) for v in ins)
        self.n_out = sum(len(v) for v in outs)
        if self.n_out == 0:
            raise ValueError("the design has no output ports: synthesis would remove all of it")
        levels = xor_tree_levels(self.n_out, out_pins)
        self.n_sout = levels[-1] if levels else self.n_out
        unused_ok(self, False)
        self.sin = Signal(name="sin")
        self.sout = Signal(self.n_sout, name="sout")

    @property
    def ports(self) -> list[Signal]:
        """Top-level pins besides the clock domain's ``clk``/``rst``."""
        return [self.sin, self.sout]

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules[DUT_NAME] = self.dut

        if self.n_in:
            chain = Signal(self.n_in, name="harness_chain")
            if self.n_in == 1:
                m.d.sync += chain.eq(self.sin)
            else:
                m.d.sync += chain.eq(Cat(self.sin, chain[:-1]))
            pos = 0
            for port in self._ins:
                m.d.comb += port.eq(chain[pos : pos + len(port)])
                pos += len(port)

        level: Value = Cat(*self._outs)
        for i, size in enumerate(xor_tree_levels(self.n_out, self.out_pins)):
            nxt = Signal(size, name=f"harness_xor{i}")
            for j in range(size):
                m.d.sync += nxt[j].eq(level[4 * j : 4 * j + 4].xor())
            level = nxt
        pins = Signal(self.n_sout, name="harness_out")
        m.d.sync += pins.eq(level)
        m.d.comb += self.sout.eq(pins)
        return m

    def harness_ffs(self) -> int:
        """Flip-flops the harness itself adds (chain + XOR tree + output registers)."""
        return self.n_in + sum(xor_tree_levels(self.n_out, self.out_pins)) + self.n_sout
