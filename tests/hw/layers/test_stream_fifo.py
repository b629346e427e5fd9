"""StreamFIFO (FINN StreamingFIFO): order kept under back-pressure, full-rate, fills to depth."""

import numpy as np
import pytest

from bitfab.hw.layers.stream_fifo import StreamFIFO
from bitfab.sim.amaranth_stream import run_streams

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.mark.parametrize(
    "width, depth, gap, stall",
    [(8, 4, 0.3, 0.6), (1, 1, 0.5, 0.5), (13, 16, 0.6, 0.2), (64, 2, 0.0, 0.0)],
)
def test_words_pass_in_order(width, depth, gap, stall):
    words = [int(w) for w in np.random.default_rng(width).integers(0, 1 << min(width, 62), size=40)]
    run = run_streams(
        StreamFIFO(width=width, depth=depth),
        {"i": words},
        {"o": len(words)},
        gap=gap,
        stall=stall,
        seed=depth,
    )
    assert run.outputs["o"] == words


def test_full_rate_and_capacity():
    words = list(range(32))
    run = run_streams(StreamFIFO(width=6, depth=8), {"i": words}, {"o": 32})
    assert run.outputs["o"] == words
    assert run.cycles <= 32 + 3

    # with the output stalled, the FIFO takes exactly `depth` words (plus none more)
    from amaranth.sim import Simulator

    dut = StreamFIFO(width=6, depth=8)
    taken = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for k in range(20):
            ctx.set(dut.i.payload, k)
            if ctx.get(dut.i.ready):  # a transfer happens at the coming edge
                taken.append(k)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(taken) == 8


def test_from_finn_attributes():
    dut = StreamFIFO.from_finn(dict(depth=32, folded_shape=[1, 49, 16], dataType=b"INT4"))
    assert (dut.width, dut.depth) == (64, 32)


@pytest.mark.parametrize(
    "kwargs, match", [(dict(width=0, depth=2), "width"), (dict(width=8, depth=0), "depth")]
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StreamFIFO(**kwargs)
