"""cocotb 2 stream drivers for Amaranth ``lib.stream`` ports: sources, sinks, clock and reset.

A transfer happens on a rising clock edge where ``valid`` and ``ready`` are both high. Sources
insert random idle cycles (``valid`` low, probability ``gap`` per cycle, seeded) and, once
``valid`` is high, hold it and the payload until the word is taken. Sinks pull ``ready`` low
on random cycles (probability ``stall``, seeded). Payloads are plain non-negative integers: the
raw bits of the payload port (lanes as in :mod:`bitfab.hw.packing`).

Speed: all streams of a design are stepped by ONE coroutine (:func:`run_streams`) with two
awaits per clock cycle (``RisingEdge`` to drive, ``ReadOnly`` to sample), handles are looked
up once, signals are written only when they change and values are read through the raw GPI
handle (no ``LogicArray`` objects on the hot path). The clock itself runs in C (cocotb's GPI
clock) so cycles with no Python work cost nothing extra.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from bitfab.sim.verilog import PortMap, StreamPort

__all__ = [
    "StreamMismatch",
    "StreamSource",
    "StreamSink",
    "StreamsResult",
    "start_clock",
    "reset",
    "set_inputs",
    "run_streams",
]

CLOCK_PERIOD_NS = 10


class StreamMismatch(AssertionError):
    """An output word differs from the expected one (raised at the first mismatching word)."""


def _raw_read(handle) -> int:
    """Unsigned integer value of a handle; raises ``ValueError`` on X/Z bits."""
    binstr = handle._handle.get_signal_val_binstr()
    return int(binstr, 2)


def _fmt(v: int, width: int) -> str:
    return f"{v} (0x{v:0{max(1, (width + 3) // 4)}x})"


class _Writer:
    """Writes a signal only when its value changes."""

    __slots__ = ("handle", "last")

    def __init__(self, handle):
        self.handle = handle
        self.last: int | None = None

    def write(self, v: int) -> None:
        if v != self.last:
            self.handle.value = v
            self.last = v


class StreamSource:
    """Drives the words of ``words`` into an input stream of the DUT.

    ``gap`` is the probability (per cycle) of an idle cycle before a word is offered.
    """

    def __init__(self, dut, port: StreamPort, words: Sequence[int], gap: float, rng: random.Random):
        if port.direction != "in":
            raise ValueError(f"stream {port.attr!r} is an output of the DUT, not an input")
        self.port = port
        self.words = [int(w) for w in words]
        self.gap = float(gap)
        self.rng = rng
        self.index = 0  # next word to transfer
        self.offered = False
        mask = (1 << port.width) - 1
        for i, w in enumerate(self.words):
            if w < 0 or w > mask:
                raise ValueError(
                    f"word {i} for stream {port.attr!r} ({w}) does not fit its {port.width}-bit payload"
                )
        if port.payload is not None:
            self._payload = [_Writer(getattr(dut, port.payload))]
            self._fields = [(0, port.width)]
        else:
            self._payload = [_Writer(getattr(dut, n)) for n, _, _ in port.payload_fields]
            self._fields = [(off, w) for _, off, w in port.payload_fields]
        self._valid = _Writer(getattr(dut, port.valid)) if port.valid else None
        self._ready = getattr(dut, port.ready) if port.ready else None

    @property
    def done(self) -> bool:
        return self.index >= len(self.words)

    def _put(self, word: int) -> None:
        for wr, (off, w) in zip(self._payload, self._fields, strict=True):
            wr.write((word >> off) & ((1 << w) - 1))

    def drive(self) -> None:
        """Set valid/payload for the coming cycle (called right after a rising edge)."""
        if self.offered:  # still waiting for ready: hold valid and payload
            return
        if self.index >= len(self.words) or (self.gap and self.rng.random() < self.gap):
            if self._valid is not None:
                self._valid.write(0)
            return
        self._put(self.words[self.index])
        if self._valid is not None:
            self._valid.write(1)
        self.offered = True

    def sample(self) -> None:
        """In the read-only phase: was the offered word taken at the coming edge?"""
        if self.offered and (self._ready is None or _raw_read(self._ready)):
            self.offered = False
            self.index += 1

    def wake_trigger(self):
        """After :meth:`sample`: ``None`` if nothing can change for this stream until the DUT
        raises ``ready`` (then the trigger to wait for), ``False`` if it must be stepped."""
        if self.index >= len(self.words):
            return None
        if self.offered and self._ready is not None:
            return self._ready.rising_edge
        return False

    def reset(self) -> None:
        self.offered = False
        if self._valid is not None:
            self._valid.write(0)


class StreamSink:
    """Collects ``count`` words from an output stream of the DUT.

    ``stall`` is the probability (per cycle) that ``ready`` is held low. With ``expected``, each
    word is compared on arrival and :class:`StreamMismatch` is raised at the first difference.
    """

    def __init__(
        self,
        dut,
        port: StreamPort,
        count: int,
        stall: float,
        rng: random.Random,
        expected: Sequence[int] | None = None,
        label: str = "",
    ):
        if port.direction != "out":
            raise ValueError(f"stream {port.attr!r} is an input of the DUT, not an output")
        self.port = port
        self.count = int(count)
        self.stall = float(stall)
        self.rng = rng
        self.expected = None if expected is None else [int(e) for e in expected]
        self.label = label
        self.got: list[int] = []
        self.last_cycle = 0
        if port.payload is not None:
            self._payload = [getattr(dut, port.payload)]
            self._fields = [(0, port.width)]
        else:
            self._payload = [getattr(dut, n) for n, _, _ in port.payload_fields]
            self._fields = [(off, w) for _, off, w in port.payload_fields]
        self._valid = getattr(dut, port.valid) if port.valid else None
        self._ready = _Writer(getattr(dut, port.ready)) if port.ready else None
        self._ready_now = False
        self._valid_now = False

    @property
    def done(self) -> bool:
        return len(self.got) >= self.count

    def drive(self) -> None:
        """Set ready for the coming cycle (called right after a rising edge)."""
        r = not self.done and not (self.stall and self.rng.random() < self.stall)
        self._ready_now = r
        if self._ready is not None:
            self._ready.write(int(r))

    def _get(self) -> int:
        word = 0
        for h, (off, _) in zip(self._payload, self._fields, strict=True):
            word |= _raw_read(h) << off
        return word

    def wake_trigger(self):
        """After :meth:`sample`: ``None`` when done, the trigger to wait for when valid is low
        (nothing can transfer until it rises, whatever ready does), else ``False`` (must be
        stepped). Random stalls resume when valid rises."""
        if self.done:
            return None
        if self._valid is None or self._valid_now:
            return False
        return self._valid.rising_edge

    def sample(self, cycle: int) -> None:
        """In the read-only phase: take the word if valid and ready are both high."""
        self._valid_now = self._valid is None or bool(_raw_read(self._valid))
        if not (self._ready_now and self._valid_now):
            return
        word = self._get()
        i = len(self.got)
        self.got.append(word)
        self.last_cycle = cycle
        if self.expected is not None and i < len(self.expected) and word != self.expected[i]:
            w = self.port.width
            raise StreamMismatch(
                f"{self.label}stream {self.port.attr!r} word {i} of {self.count}: "
                f"expected {_fmt(self.expected[i], w)}, got {_fmt(word, w)}"
            )

    def reset(self) -> None:
        self._ready_now = False
        if self._ready is not None:
            self._ready.write(0)


@dataclass
class StreamsResult:
    """What :func:`run_streams` observed: output words per stream and clock cycles.

    ``cycles`` counts rising edges from the first driven cycle to the edge that transferred the
    last output word; ``last_cycle`` gives that count per output stream.
    """

    outputs: dict[str, list[int]]
    cycles: int
    last_cycle: dict[str, int] = field(default_factory=dict)
    unsent: dict[str, int] = field(default_factory=dict)


def start_clock(dut, ports: PortMap, period_ns: int = CLOCK_PERIOD_NS) -> Clock:
    """Start a free-running clock on the DUT's clock port (implemented in C where possible)."""
    if ports.clk is None:
        raise ValueError("the design has no clock port (no sync domain)")
    clock = Clock(getattr(dut, ports.clk), period_ns, unit="ns")
    clock.start(start_high=False)
    return clock


def set_inputs(dut, ports: PortMap, values: Mapping[str, int]) -> None:
    """Set plain input ports (setup constants such as ``wbits_rt``) by Verilog name."""
    for name, v in values.items():
        p = ports.plain.get(name)
        if p is None or p.direction != "in":
            known = sorted(n for n, q in ports.plain.items() if q.direction == "in")
            raise ValueError(f"no plain input port {name!r} on the DUT; known: {known}")
        v = int(v)
        lo = -(1 << (p.width - 1)) if p.signed else 0
        hi = (1 << (p.width - 1)) - 1 if p.signed else (1 << p.width) - 1
        if not lo <= v <= hi:
            raise ValueError(f"value {v} for port {name!r} outside [{lo}, {hi}] ({p.width} bits)")
        getattr(dut, name).value = v & ((1 << p.width) - 1)


async def reset(dut, ports: PortMap, cycles: int = 2) -> None:
    """Hold the synchronous reset (active high) for ``cycles`` rising edges, with every input
    stream's valid and every output stream's ready low."""
    for sp in ports.streams.values():
        if sp.direction == "in" and sp.valid:
            getattr(dut, sp.valid).value = 0
        if sp.direction == "out" and sp.ready:
            getattr(dut, sp.ready).value = 0
    clk = getattr(dut, ports.clk)
    if ports.rst is not None:
        getattr(dut, ports.rst).value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    if ports.rst is not None:
        getattr(dut, ports.rst).value = 0


async def run_streams(
    dut,
    ports: PortMap,
    inputs: Mapping[str, Sequence[int]],
    outputs: Mapping[str, int],
    *,
    expected: Mapping[str, Sequence[int]] | None = None,
    gap: float = 0.0,
    stall: float = 0.0,
    seed: int = 0,
    max_cycles: int = 1_000_000,
    label: str = "",
    skip_idle: bool = True,
    period_ns: int = CLOCK_PERIOD_NS,
) -> StreamsResult:
    """Feed ``inputs`` (stream name -> words) and collect ``outputs`` (stream name -> count),
    all streams concurrently, in one coroutine.

    Call after :func:`start_clock` and :func:`reset`, right after a rising edge. With
    ``expected`` (stream name -> words) a mismatching word raises :class:`StreamMismatch`
    immediately. Raises ``TimeoutError`` after ``max_cycles`` cycles without all outputs.
    Each stream gets its own ``random.Random`` derived from ``seed``, so a run is reproducible.

    With ``skip_idle`` (default), cycles in which every stream just waits for the DUT (sources
    done or holding a word with ``ready`` low, sinks done or seeing ``valid`` low) cost no
    Python: the coroutine sleeps until one of those signals rises. ``period_ns`` must
    be the clock period given to :func:`start_clock` (cycle counts are derived from sim time).
    """
    rng = random.Random(seed)
    expected = expected or {}
    sources = [
        StreamSource(dut, _port(ports, n, "in"), w, gap, random.Random(rng.getrandbits(64)))
        for n, w in inputs.items()
    ]
    sinks = [
        StreamSink(
            dut,
            _port(ports, n, "out"),
            c,
            stall,
            random.Random(rng.getrandbits(64)),
            expected.get(n),
            label,
        )
        for n, c in outputs.items()
    ]
    edge = RisingEdge(getattr(dut, ports.clk))
    ro = ReadOnly()
    t0 = get_sim_time("ns")
    cycle = 0
    pending = [s for s in sinks if not s.done]
    while pending:
        for s in sources:
            s.drive()
        for k in sinks:
            k.drive()
        await ro
        cycle += 1
        for s in sources:
            s.sample()
        for k in pending:
            k.sample(cycle)
        pending = [k for k in pending if not k.done]
        if cycle >= max_cycles and pending:
            _timeout(label, max_cycles, sources, sinks)
        wake = _idle_wait(sources, pending) if skip_idle and pending else None
        if wake:
            # Every stream waits for the DUT: sleep until one of its signals rises (always at
            # a clock edge, as the DUT's inputs are constant meanwhile) or the cycle budget ends.
            budget = Timer((max_cycles - cycle) * period_ns, "ns")
            if await First(*wake, budget) is budget:
                _timeout(label, max_cycles, sources, sinks)
            cycle = round((get_sim_time("ns") - t0) / period_ns)
        else:
            await edge
    for s in sources:
        s.reset()
    for k in sinks:
        k.reset()
    return StreamsResult(
        outputs={k.port.attr: k.got for k in sinks},
        cycles=cycle,
        last_cycle={k.port.attr: k.last_cycle for k in sinks},
        unsent={s.port.attr: len(s.words) - s.index for s in sources},
    )


def _idle_wait(sources: list[StreamSource], sinks: list[StreamSink]) -> list | None:
    """Triggers to sleep on if no stream needs per-cycle stepping, else ``None``."""
    wake = []
    for x in (*sources, *sinks):
        t = x.wake_trigger()
        if t is False:
            return None
        if t is not None:
            wake.append(t)
    return wake or None


def _timeout(label: str, max_cycles: int, sources, sinks) -> None:
    raise TimeoutError(
        f"{label}no complete output after {max_cycles} cycles: "
        + ", ".join(f"{k.port.attr}: {len(k.got)}/{k.count} words" for k in sinks)
        + "; "
        + ", ".join(f"{s.port.attr}: {s.index}/{len(s.words)} sent" for s in sources)
    )


def _port(ports: PortMap, name: str, direction: str) -> StreamPort:
    sp = ports.streams.get(name)
    if sp is None or sp.direction != direction:
        known = sorted(n for n, q in ports.streams.items() if q.direction == direction)
        kind = "input" if direction == "in" else "output"
        raise ValueError(f"no {kind} stream {name!r} on the DUT; known {kind} streams: {known}")
    return sp
