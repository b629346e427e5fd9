"""Drive and watch Amaranth ``lib.stream`` interfaces in Amaranth's simulator.

Sources insert random idle cycles (valid low) and sinks random stalls (ready low), so every
test exercises back-pressure on both sides of a stream. Payloads are plain integers (the raw
bits of the payload, see :mod:`bitfab.hw.packing`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from amaranth.hdl import Value
from amaranth.sim import Simulator


def _raw(v):
    return v.as_value() if hasattr(v, "as_value") else Value.cast(v)


async def stream_put(ctx, stream, payload: int, rng: random.Random, gap: float = 0.0) -> None:
    """Offer ``payload`` on ``stream`` (after random idle cycles) and wait until it is taken."""
    while gap and rng.random() < gap:
        ctx.set(stream.valid, 0)
        await ctx.tick()
    ctx.set(_raw(stream.payload), payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, rng: random.Random, stall: float = 0.0) -> int:
    """Take one payload from ``stream``, holding ready low for random cycles first."""
    while stall and rng.random() < stall:
        ctx.set(stream.ready, 0)
        await ctx.tick()
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(_raw(stream.payload)).until(stream.valid)
    ctx.set(stream.ready, 0)
    return int(payload)


@dataclass
class StreamRun:
    """What a :func:`run_streams` call observed."""

    outputs: dict[str, list[int]]
    cycles: int  # clock cycles until the last expected output was taken
    first_out_cycle: dict[str, int] = field(default_factory=dict)


def run_streams(
    dut,
    inputs: Mapping[str, Sequence[int]],
    outputs: Mapping[str, int],
    *,
    seed: int = 0,
    gap: float = 0.0,
    stall: float = 0.0,
    setup: Mapping[str, int] | None = None,
    max_cycles: int = 200_000,
    vcd: str | None = None,
    extra_testbenches: Sequence[Callable] = (),
) -> StreamRun:
    """Simulate ``dut``: feed each named input stream, collect ``outputs[name]`` words from each
    named output stream, and return them with the cycle count.

    ``inputs`` maps a port attribute name (e.g. ``"i"``) to the payloads to send in order;
    ``outputs`` maps a port name to how many payloads to expect. ``setup`` sets constant input
    signals (by attribute name) before the first clock edge. ``gap``/``stall`` are the per-cycle
    probabilities of an idle input cycle / a stalled output cycle. Raises ``TimeoutError`` if
    the outputs do not all arrive within ``max_cycles``.
    """
    rng = random.Random(seed)
    got: dict[str, list[int]] = {name: [] for name in outputs}
    first: dict[str, int] = {}
    state = {"cycle": 0, "done": 0}
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    for sig_name, val in (setup or {}).items():
        sig = getattr(dut, sig_name)

        async def _set(ctx, sig=sig, val=val):
            ctx.set(sig, val)

        sim.add_testbench(_set)

    for name, words in inputs.items():
        stream = getattr(dut, name)
        r = random.Random(rng.random())

        async def _src(ctx, stream=stream, words=tuple(words), r=r):
            for w in words:
                await stream_put(ctx, stream, int(w), r, gap)

        sim.add_testbench(_src, background=True)

    for name, count in outputs.items():
        stream = getattr(dut, name)
        r = random.Random(rng.random())

        async def _sink(ctx, stream=stream, name=name, count=count, r=r):
            for _ in range(count):
                got[name].append(await stream_get(ctx, stream, r, stall))
                first.setdefault(name, state["cycle"])
            state["done"] += 1

        sim.add_testbench(_sink)

    async def _clock(ctx):
        while state["done"] < len(outputs):
            await ctx.tick()
            state["cycle"] += 1
            if state["cycle"] > max_cycles:
                raise TimeoutError(
                    f"simulation did not finish in {max_cycles} cycles: got "
                    + ", ".join(f"{k}: {len(v)}/{outputs[k]}" for k, v in got.items())
                )

    sim.add_testbench(_clock)
    for tb in extra_testbenches:
        sim.add_testbench(tb, background=True)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return StreamRun(outputs=got, cycles=state["cycle"], first_out_cycle=first)
