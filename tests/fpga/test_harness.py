"""The out-of-context harness: port accounting, XOR tree shape, and cycle-accurate behaviour."""

from __future__ import annotations

import random
from functools import reduce

import pytest
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from fpga_toys import ToyMac, ToyPassThrough

from bitfab.fpga.harness import OutOfContextHarness, xor_tree_levels
from bitfab.hw.elaboratable import unused_ok


@pytest.mark.parametrize("n,pins", [(1, 4), (4, 4), (5, 4), (17, 4), (100, 3), (4096, 1)])
def test_xor_tree_levels_reduce_to_the_pins(n, pins):
    levels = xor_tree_levels(n, pins)
    prev = n
    for size in levels:
        assert size == -(-prev // 4)  # each register takes at most 4 bits of the level below
        prev = size
    assert prev <= pins
    assert (levels == []) == (n <= pins)


def test_port_accounting_follows_the_signature():
    class Streamy(wiring.Component):
        def __init__(self):
            super().__init__(
                {"i": In(stream.Signature(13)), "o": Out(stream.Signature(7)), "k": In(range(9))}
            )

        def elaborate(self, platform):  # pragma: no cover - never elaborated here
            raise AssertionError

    dut = Streamy()
    unused_ok(dut)
    h = OutOfContextHarness(dut, out_pins=2)
    unused_ok(h)
    # inputs: i.payload 13 + i.valid 1 + o.ready 1 + k 4; outputs: i.ready 1 + o.payload 7 + o.valid 1
    assert (h.n_in, h.n_out) == (19, 9)
    assert h.n_sout == 1 and h.harness_ffs() == 19 + 3 + 1 + 1


def test_rejects_designs_without_outputs():
    class Sink(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(4)})

        def elaborate(self, platform):  # pragma: no cover
            raise AssertionError

    dut = Sink()
    unused_ok(dut)
    with pytest.raises(ValueError, match="no output"):
        OutOfContextHarness(dut)


def test_chain_feeds_inputs_and_tree_reduces_outputs():
    """Shift bits in; the pins must show the XOR groups of the design's outputs, delayed."""
    width = 8
    h = OutOfContextHarness(ToyPassThrough(width), out_pins=2)
    assert (h.n_in, h.n_out) == (width, width + 1)
    levels = xor_tree_levels(h.n_out, 2)
    assert levels == [3, 1]
    rng = random.Random(7)
    bits = [rng.randint(0, 1) for _ in range(60)]
    seen = []

    async def bench(ctx):
        for b in bits:
            ctx.set(h.sin, b)
            await ctx.tick()
            seen.append(ctx.get(h.sout))

    sim = Simulator(h)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()

    def expected(t):
        # after tick t the chain holds bits[t], bits[t-1], ... (chain[0] = newest)
        a = [bits[t - k] if t - k >= 0 else 0 for k in range(width)]
        outs = a + [1 - a[0]]  # y (8 bits) then z
        return reduce(lambda x, y: x ^ y, outs)

    # chain (1) + two tree levels (2) + pin register (1) = the value of tick t appears at t + 3
    for t in range(width, len(bits) - 3):
        assert seen[t + 3] == expected(t), t


def test_harness_accepts_only_components():
    with pytest.raises(TypeError):
        OutOfContextHarness(object())
    dut = ToyMac()
    unused_ok(dut)
    with pytest.raises(ValueError):
        OutOfContextHarness(dut, out_pins=0)
