"""SPRAM-backed weight memory (bitfab.hw.spram) and the MVAU on it, against numpy references."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.layers.mvau import MVAU
from bitfab.hw.spram import SPRAMStore, load_words, spram_blocks, spram_grid
from tests.hw.layers.cases import make_case, run_case
from tests.hw.layers.test_mvau import random_params

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


def test_grid_and_load_order():
    assert spram_grid(2, 100) == (1, 1)
    assert spram_grid(17, 16384) == (2, 1)
    assert spram_grid(16, 16385) == (1, 2)
    assert spram_blocks(40, 40000) == 9
    # word a, column c = bits 16c..16c+15
    assert load_words([0x123456789, 0x1], 33) == [0x6789, 0x2345, 0x1, 0x1, 0, 0]


@pytest.mark.parametrize(
    "width,depth,block_depth,gap", [(5, 7, 16384, 0.0), (20, 11, 4, 0.3), (33, 9, 4, 0.5)]
)
def test_store_reads_back_what_was_loaded(width, depth, block_depth, gap):
    """Random content through the load stream (with gaps), then random reads: every read
    returns the loaded word one cycle after its address; reload starts over."""
    rng = np.random.default_rng(width * depth)
    dut = SPRAMStore(width, depth, model="behavioural", block_depth=block_depth)
    images = [[int(x) for x in rng.integers(0, 1 << width, depth)] for _ in range(2)]
    reads = [int(a) for a in rng.integers(0, depth, 3 * depth)]
    got: list[list[int]] = [[], []]

    async def bench(ctx):
        for k, words in enumerate(images):
            if k:
                ctx.set(dut.reload, 1)
                await ctx.tick()
                ctx.set(dut.reload, 0)
                assert not ctx.get(dut.loaded)
            for w in load_words(words, width):
                while rng.random() < gap:
                    ctx.set(dut.wload.valid, 0)
                    await ctx.tick()
                ctx.set(dut.wload.valid, 1)
                ctx.set(dut.wload.payload, w)
                assert ctx.get(dut.wload.ready)
                await ctx.tick()
            ctx.set(dut.wload.valid, 0)
            assert ctx.get(dut.loaded) and not ctx.get(dut.wload.ready)
            for a in reads:
                ctx.set(dut.raddr, a)
                await ctx.tick()
                got[k].append(ctx.get(dut.rdata))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for k, words in enumerate(images):
        assert got[k] == [words[a] for a in reads]


@pytest.mark.parametrize("seed", range(6))
def test_mvau_on_spram_matches_reference(seed):
    """An MVAU whose weights come through the load stream computes what the numpy reference
    of its case says (random folding, data types, activations; gaps and stalls)."""
    params = random_params(seed)
    case = make_case("MVAU", params, np.random.default_rng(seed))
    rom = unused_ok(case.build())
    dut = MVAU(
        MW=rom.MW,
        MH=rom.MH,
        PE=rom.PE,
        SIMD=rom.SIMD,
        weights=rom.weights,
        input_kind=rom.input_kind,
        input_bits=rom.input_bits,
        weight_kind=rom.weight_kind,
        weight_bits=rom.weight_bits,
        binaryXnorMode=rom.binaryXnorMode,
        noActivation=rom.noActivation,
        thresholds=rom.thresholds,
        ActVal=rom.ActVal,
        output_kind=rom.output_kind,
        output_bits=rom.output_bits,
        numInputVectors=rom.numInputVectors,
        weight_store="spram",
        spram_model="behavioural",
    )
    case.inputs = {**case.inputs, "wload": dut.weight_load_words()}
    run = run_case(case, dut=dut, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected
    assert "wload" not in rom.signature.members


def test_mvau_waits_for_its_weights():
    """No output before the last load word: the input stream is not taken while loading."""
    case = make_case("MVAU", random_params(2), np.random.default_rng(2))
    rom = unused_ok(case.build())
    kw = {
        k: getattr(rom, k)
        for k in (
            "MW",
            "MH",
            "PE",
            "SIMD",
            "weights",
            "input_kind",
            "input_bits",
            "weight_kind",
            "weight_bits",
            "binaryXnorMode",
            "noActivation",
            "thresholds",
            "ActVal",
            "output_kind",
            "output_bits",
            "numInputVectors",
        )
    }
    dut = MVAU(**kw, weight_store="spram", spram_model="behavioural")
    words = dut.weight_load_words()
    seen = {}

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for k, w in enumerate(words):
            ctx.set(dut.wload.valid, 1)
            ctx.set(dut.wload.payload, w)
            assert not ctx.get(dut.i.ready), f"input taken while loading word {k}"
            await ctx.tick()
        ctx.set(dut.wload.valid, 0)
        for c in range(4):
            if ctx.get(dut.i.ready):
                seen["ready_after"] = c
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen.get("ready_after") in (1, 2)
