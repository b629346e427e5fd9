"""UART transmitter and receiver (bitfab.hw.shell.uart) against a Python bit-level model of 8N1.

The model draws the serial line cycle by cycle from the sender's own bit time (a float number
of receiver clock cycles, so a +-2 % clock/baud mismatch is exact), and decodes a captured line
by checking that every bit holds for exactly ``divisor`` cycles.
"""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from bitfab.errors import BitfabError
from bitfab.hw.shell.uart import UartRx, UartTx, divisor_for


def model_line(frames: list[tuple[int, int]], bit_cycles: float, gaps: list[float]) -> list[int]:
    """Per-cycle line level for ``frames`` of ``(byte, stop_bit)``, each after an idle gap of
    ``gaps[k]`` bit times; a line idle for 12 bits precedes the first and follows the last."""
    levels: list[tuple[float, float, int]] = []  # (start, end, level) in cycles
    t = 12 * bit_cycles
    for (byte, stop), gap in zip(frames, gaps, strict=True):
        t += gap * bit_cycles
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [stop]
        for b in bits:
            levels.append((t, t + bit_cycles, b))
            t += bit_cycles
        if not stop:  # a low stop bit: release the line so the next frame has an edge
            levels.append((t, t + bit_cycles, 1))
            t += bit_cycles
    n = int(t + 12 * bit_cycles)
    line = [1] * n
    for s, e, b in levels:
        for c in range(int(s) + (s != int(s)), min(n, int(e) + (e != int(e)))):
            if s <= c < e:
                line[c] = b
    return line


def model_decode(line: list[int], divisor: int) -> list[int]:
    """Bytes on a captured transmitter line; asserts exact bit lengths and a high stop bit."""
    out = []
    c = 0
    while c < len(line):
        if line[c] == 1:
            c += 1
            continue
        bits = [line[c + k * divisor : c + (k + 1) * divisor] for k in range(10)]
        for k, seg in enumerate(bits[:9]):
            assert len(set(seg)) == 1 and len(seg) == divisor, f"bit {k} at cycle {c}: {seg}"
        assert bits[9] == [1] * divisor, f"stop bit at cycle {c}: {bits[9]}"
        out.append(sum(seg[0] << (k - 1) for k, seg in enumerate(bits[1:9], start=1)))
        c += 10 * divisor
    return out


def run_rx(divisor: int, line: list[int]) -> tuple[list[int], int, int]:
    dut = UartRx(divisor)
    got: list[int] = []
    counts = {"ferr": 0, "overrun": 0}

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for level in line:
            ctx.set(dut.rx, level)
            _, _, valid, payload, ferr, ovr = await ctx.tick().sample(
                dut.o.valid, dut.o.payload, dut.ferr, dut.overrun
            )
            if valid:
                got.append(int(payload))
            counts["ferr"] += ferr
            counts["overrun"] += ovr

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return got, counts["ferr"], counts["overrun"]


@pytest.mark.parametrize("seed", range(6))
def test_rx_decodes_random_bytes_with_baud_mismatch(seed):
    rng = random.Random(seed)
    divisor = rng.randint(8, 40)
    mismatch = rng.choice([-0.02, 0.02, rng.uniform(-0.02, 0.02)])
    data = [rng.randrange(256) for _ in range(12)] + [0x00, 0xFF, 0x55]
    gaps = [rng.choice([0.0, 0.0, rng.uniform(0, 3)]) for _ in data]
    line = model_line([(b, 1) for b in data], divisor * (1 + mismatch), gaps)
    got, ferr, ovr = run_rx(divisor, line)
    assert (got, ferr, ovr) == (data, 0, 0), f"divisor {divisor}, mismatch {mismatch:+.3f}"


@pytest.mark.parametrize("seed", range(3))
def test_rx_flags_framing_errors_and_recovers(seed):
    rng = random.Random(100 + seed)
    divisor = rng.randint(8, 24)
    frames = [(rng.randrange(256), rng.choice([1, 1, 0])) for _ in range(12)]
    frames[-1] = (frames[-1][0], 1)
    gaps = [rng.uniform(0, 2) for _ in frames]
    line = model_line(frames, divisor * (1 + rng.uniform(-0.02, 0.02)), gaps)
    got, ferr, ovr = run_rx(divisor, line)
    assert got == [b for b, stop in frames if stop]
    assert ferr == sum(1 for _, stop in frames if not stop)


def test_rx_ignores_a_glitch_shorter_than_half_a_bit():
    divisor = 16
    line = [1] * 40 + [0] * 5 + [1] * 200 + model_line([(0xA5, 1)], divisor, [0.0])
    got, ferr, _ = run_rx(divisor, line)
    assert (got, ferr) == ([0xA5], 0)


def test_rx_reports_overrun_when_bytes_are_not_taken():
    divisor = 8
    dut = UartRx(divisor)
    line = model_line([(1, 1), (2, 1), (3, 1)], divisor, [0.0, 0.0, 0.0])
    seen = {"overrun": 0}

    async def tb(ctx):
        ctx.set(dut.o.ready, 0)
        for level in line:
            ctx.set(dut.rx, level)
            _, _, ovr = await ctx.tick().sample(dut.overrun)
            seen["overrun"] += ovr
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 3

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert seen["overrun"] == 2


def tx_line(
    divisor: int, data: list[int], cycles: int, gaps: random.Random | None = None
) -> list[int]:
    """The ``tx`` level of a ``UartTx(divisor)`` over ``cycles`` clock cycles while it sends
    ``data``; with ``gaps``, the source idles a random 1..3 bit times before some bytes."""
    dut = UartTx(divisor)
    line: list[int] = []

    async def src(ctx):
        for b in data:
            while gaps is not None and gaps.random() < 0.3:
                await ctx.tick().repeat(gaps.randint(1, 3 * divisor))
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def mon(ctx):
        for _ in range(cycles):
            _, _, level = await ctx.tick().sample(dut.tx)
            line.append(int(level))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(src, background=True)
    sim.add_testbench(mon)
    sim.run()
    return line


@pytest.mark.parametrize("seed", range(4))
def test_tx_line_matches_the_bit_model(seed):
    rng = random.Random(200 + seed)
    divisor = rng.randint(8, 33)
    data = [rng.randrange(256) for _ in range(10)]
    line = tx_line(divisor, data, 14 * divisor * len(data) + 40 * divisor, gaps=rng)
    assert model_decode(line, divisor) == data


def test_tx_to_rx_loopback_with_mismatch():
    """A transmitter at one clock and a receiver whose clock is 2 % off: resample the line."""
    rng = random.Random(7)
    divisor = 13
    data = [rng.randrange(256) for _ in range(20)]
    line = tx_line(divisor, data, 11 * divisor * len(data) + 20 * divisor)
    resampled = [line[int(c * 1.02)] for c in range(int(len(line) / 1.02))]
    got, ferr, _ = run_rx(divisor, resampled)
    assert (got, ferr) == (data, 0)


def test_bad_divisor_and_baud_are_refused():
    with pytest.raises(BitfabError, match="divisor"):
        UartTx(3)
    with pytest.raises(BitfabError, match="baud"):
        divisor_for(1e6, 250_000)
    assert divisor_for(12e6, 115200) == 104
