"""Host link protocol engine (bitfab.hw.shell.host_link) in Amaranth's simulator.

The reference is a Python model of the documented protocol (its own CRC-8 by polynomial
division, its own reply layout); the accelerators are toys with a numpy-checkable function
(sum of the image bytes mod 10 as a class, or a two-word vector), and once the tiny trained
tfc against its golden model. Byte-level tests drive :class:`HostLinkCore` directly (fast); one
test runs :class:`HostLink` with its UARTs on the serial pins.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from bitfab.errors import BitfabError
from bitfab.hw.shell.host_link import HostLink, HostLinkCore
from tests.hw.shell.test_uart import model_line
from tests.hw.test_compiler import tiny_dataflow


# ---- independent reference ------------------------------------------------------------------
def ref_crc(data: bytes) -> int:
    """CRC-8 poly x^8+x^2+x+1 as the remainder of a polynomial division (MSB first)."""
    v = int.from_bytes(bytes(data), "big") << 8 if data else 0
    n = v.bit_length()
    for shift in range(n - 9, -1, -1):
        if v >> (shift + 8) & 1:
            v ^= 0x107 << shift
    return v & 0xFF


def ref_request(cmd: int, payload: bytes) -> bytes:
    body = bytes([0xA5, cmd, len(payload) & 0xFF, len(payload) >> 8]) + payload
    return body + bytes([ref_crc(body)])


def ref_reply(status: int, body: bytes = b"") -> bytes:
    msg = bytes([0x5A, status]) + body
    return msg + bytes([ref_crc(msg)])


class ToyAcc(wiring.Component):
    """``in_words`` 16-bit words (two byte lanes) per image; output either the class
    ``sum(bytes) % 10`` (one 8-bit word) or the vector ``[sum & 0xFFF, xor of bytes]`` (two
    12-bit words). Holds its input while it outputs (back-pressure)."""

    def __init__(self, in_words: int, vector: bool, cheap: bool = False) -> None:
        # cheap: class = sum & 0xFF instead of sum % 10 (no divider: for timing-clean builds)
        self.in_words, self.vector, self.cheap = in_words, vector, cheap
        self.out_width = 12 if vector else 8
        super().__init__(
            {"i": In(stream.Signature(16)), "o": Out(stream.Signature(self.out_width))}
        )

    def elaborate(self, platform):
        m = Module()
        acc = Signal(16)
        x = Signal(8)
        n = Signal(range(self.in_words + 1))
        k = Signal()
        s = acc + self.i.payload[:8] + self.i.payload[8:]
        with m.FSM():
            with m.State("in"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [acc.eq(s), x.eq(x ^ self.i.payload[:8] ^ self.i.payload[8:])]
                    m.d.sync += n.eq(n + 1)
                    with m.If(n == self.in_words - 1):
                        m.next = "out"
            with m.State("out"):
                m.d.comb += self.o.valid.eq(1)
                if self.vector:
                    m.d.comb += self.o.payload.eq(acc[:12])
                    with m.If(k):
                        m.d.comb += self.o.payload.eq(x)
                else:
                    m.d.comb += self.o.payload.eq(acc[:8] if self.cheap else acc % 10)
                with m.If(self.o.ready):
                    m.d.sync += k.eq(~k)
                    if not self.vector:
                        m.d.sync += k.eq(0)
                    with m.If(k | (not self.vector)):
                        m.d.sync += [acc.eq(0), x.eq(0), n.eq(0)]
                        m.next = "in"
        return m


def toy_reply(cmd: int, image: bytes, vector: bool) -> bytes:
    total = sum(image)
    xor = 0
    for b in image:
        xor ^= b
    cls = 0xFF if vector else total % 10
    if cmd == 1:
        return ref_reply(0, bytes([cls]))
    vec = [total & 0xFFF, xor] if vector else [cls]
    width = 2 if vector else 1
    return ref_reply(0, bytes([cls]) + b"".join(v.to_bytes(width, "little") for v in vec))


class CoreBench(wiring.Component):
    """HostLinkCore wired to an accelerator, byte streams outside."""

    def __init__(self, acc, core: HostLinkCore) -> None:
        self.acc, self.core = acc, core
        super().__init__(
            {
                "rx": In(stream.Signature(8)),
                "ferr": In(1),
                "tx": Out(stream.Signature(8)),
                "last_class": Out(8),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc, m.submodules.core = self.acc, self.core
        wiring.connect(m, wiring.flipped(self.rx), self.core.rx)
        wiring.connect(m, self.core.tx, wiring.flipped(self.tx))
        wiring.connect(m, self.core.acc_i, self.acc.i)
        wiring.connect(m, self.acc.o, self.core.acc_o)
        m.d.comb += [
            self.core.ferr.eq(self.ferr),
            self.last_class.eq(self.core.last_class),
            self.busy.eq(self.core.busy),
        ]
        return m


def toy_bench(vector: bool, in_words: int = 3, timeout: int = 60) -> CoreBench:
    acc = ToyAcc(in_words, vector)
    core = HostLinkCore(
        in_width=16,
        in_words=in_words,
        out_width=acc.out_width,
        out_words=2 if vector else 1,
        class_index=not vector,
        timeout=timeout,
    )
    return CoreBench(acc, core)


def run_bytes(
    bench,
    script,
    n_reply: int,
    *,
    seed: int = 0,
    gap: float = 0.0,
    stall=0.0,
    spacing: int = 0,
    hold: int = 0,
):
    """Play ``script`` (items: ``bytes``; ``("quiet", cycles)``; ``("ferr",)``) into the bench
    and collect ``n_reply`` reply bytes; returns them with the final ``busy`` and class.
    ``spacing``: idle cycles after every byte (a UART delivers one byte per 10 bit times);
    ``hold``: cycles the reply side is held not ready at the start."""
    rng = random.Random(seed)
    out: list[int] = []
    state = {}

    async def src(ctx):
        for item in script:
            if isinstance(item, tuple) and item[0] == "quiet":
                await ctx.tick().repeat(item[1])
                continue
            if isinstance(item, tuple) and item[0] == "ferr":
                ctx.set(bench.ferr, 1)
                await ctx.tick()
                ctx.set(bench.ferr, 0)
                continue
            for b in item:
                while gap and rng.random() < gap:
                    await ctx.tick()
                ctx.set(bench.rx.payload, b)
                ctx.set(bench.rx.valid, 1)
                await ctx.tick().until(bench.rx.ready)
                ctx.set(bench.rx.valid, 0)
                if spacing:
                    await ctx.tick().repeat(spacing)

    async def sink(ctx):
        budget = 400 * (n_reply + 10) + sum(len(i) for i in script if isinstance(i, bytes)) * (
            20 + spacing
        )
        budget += sum(i[1] for i in script if isinstance(i, tuple) and i[0] == "quiet")
        cycles = 0
        budget += hold
        while len(out) < n_reply:
            ready = cycles >= hold and not (stall and rng.random() < stall)
            ctx.set(bench.tx.ready, ready)
            _, _, v, p = await ctx.tick().sample(bench.tx.valid, bench.tx.payload)
            if v and ready:
                out.append(int(p))
            cycles += 1
            assert cycles < budget, f"only {len(out)}/{n_reply} reply bytes: {bytes(out).hex()}"
        ctx.set(bench.tx.ready, 1)
        await ctx.tick().repeat(300)
        state["busy"] = ctx.get(bench.busy)
        state["class"] = ctx.get(bench.last_class)
        state["extra"] = ctx.get(bench.tx.valid)

    sim = Simulator(bench)
    sim.add_clock(1e-8)
    sim.add_testbench(src, background=True)
    sim.add_testbench(sink)
    sim.run()
    return bytes(out), state


@pytest.mark.parametrize("vector", [False, True])
@pytest.mark.parametrize("seed", range(2))
def test_pipelined_requests_get_the_model_replies(vector, seed):
    rng = np.random.default_rng(seed)
    bench = toy_bench(vector)
    script, expect = [], b""
    for _ in range(6):
        cmd = int(rng.choice([1, 2, 3]))
        if cmd == 3:
            script.append(ref_request(3, b""))
            flags = 0 if vector else 1
            expect += ref_reply(0, bytes([6, 0, 4 if vector else 1, 0, flags]))
        else:
            image = bytes(rng.integers(0, 256, 6, dtype=np.uint8).tolist())
            script.append(ref_request(cmd, image))
            expect += toy_reply(cmd, image, vector)
    got, st = run_bytes(bench, script, len(expect), seed=seed, gap=0.2, stall=0.3)
    assert got == expect
    assert not st["busy"] and not st["extra"]


# (name, frame bytes or script items, expected status)
def _bad_cases(good: bytes):
    image = good[4:-1]
    return [
        ("bad magic", [bytes([0x42]) + good[1:], ("quiet", 80)], 1),
        ("bad command", [bytes([0xA5, 0x07]) + good[2:], ("quiet", 80)], 2),
        ("bad length", [ref_request(1, image[:-2]), ("quiet", 80)], 3),
        ("bad checksum", [good[:-1] + bytes([good[-1] ^ 0x10])], 4),
        ("framing error", [good[:7], ("ferr",), good[7:], ("quiet", 80)], 5),
        ("truncated", [good[:8], ("quiet", 80)], 6),
        ("truncated header", [good[:2], ("quiet", 80)], 6),
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_frames_get_an_error_reply_and_the_link_recovers(case):
    rng = np.random.default_rng(10 + case)
    image = bytes(rng.integers(0, 256, 6, dtype=np.uint8).tolist())
    good = ref_request(1, image)
    name, items, status = _bad_cases(good)[case]
    image2 = bytes(rng.integers(0, 256, 6, dtype=np.uint8).tolist())
    script = [*items, ref_request(1, image2)]
    expect = ref_reply(status) + toy_reply(1, image2, False)
    got, st = run_bytes(toy_bench(False), script, len(expect), seed=case, gap=0.1)
    assert got == expect, name
    assert st["class"] == sum(image2) % 10
    assert not st["busy"]


def test_input_overrun_is_reported_not_lost():
    """A vector reply held up by the host stalls the accelerator; the next image overflows the
    8-word input FIFO: status 7 for it, the earlier reply intact, the link usable after."""
    rng = np.random.default_rng(3)
    acc = ToyAcc(12, True)
    core = HostLinkCore(
        in_width=16, in_words=12, out_width=12, out_words=2, class_index=False, timeout=60
    )
    imgs = [bytes(rng.integers(0, 256, 24, dtype=np.uint8).tolist()) for _ in range(3)]
    script = [ref_request(2, imgs[0]), ref_request(1, imgs[1]), ("quiet", 2000)]
    script.append(ref_request(1, imgs[2]))
    expect = toy_reply(2, imgs[0], True) + ref_reply(7) + toy_reply(1, imgs[2], True)
    got, st = run_bytes(CoreBench(acc, core), script, len(expect), hold=400)
    assert got == expect
    assert not st["busy"]


def test_link_sizes_are_checked():
    with pytest.raises(BitfabError, match="length field"):
        HostLinkCore(
            in_width=128, in_words=5000, out_width=8, out_words=1, class_index=True, timeout=99
        )
    with pytest.raises(BitfabError, match="in_words"):
        HostLink(ToyAcc(3, False), divisor=8)


def test_host_link_on_serial_pins():
    """The whole HostLink: requests drawn on ``rx`` by the UART model (1.5 % slow), replies
    decoded from ``tx``."""
    from tests.hw.shell.test_uart import model_decode

    divisor = 8
    acc = ToyAcc(3, False)
    dut = HostLink(acc, divisor=divisor, in_words=3, out_words=1, class_index=True)
    rng = np.random.default_rng(5)
    imgs = [bytes(rng.integers(0, 256, 6, dtype=np.uint8).tolist()) for _ in range(2)]
    frames = ref_request(3, b"") + b"".join(ref_request(1, im) for im in imgs)
    expect = ref_reply(0, bytes([6, 0, 1, 0, 1])) + b"".join(toy_reply(1, im, False) for im in imgs)
    line = model_line([(b, 1) for b in frames], divisor * 1.015, [0.0] * len(frames))
    line += [1] * (divisor * 10 * (len(expect) + 4))
    tx: list[int] = []

    async def tb(ctx):
        for level in line:
            ctx.set(dut.rx, level)
            _, _, t = await ctx.tick().sample(dut.tx)
            tx.append(int(t))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert bytes(model_decode(tx, divisor)) == expect


@pytest.fixture(scope="module")
def tiny_acc(request):
    from bitfab.hw.compiler import compile_graph

    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    return df, compile_graph(df, "parallel")


def test_tiny_tfc_classes_match_the_golden_model(tiny_acc):
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.hw.accelerator import Accelerator
    from bitfab.hw.compiler import tensor_words
    from bitfab.sim.verify import load_test_images

    df, graph = tiny_acc
    imgs = load_test_images(2)
    classes = GoldenModel(df).classify(imgs)
    acc = Accelerator(graph)
    core = HostLinkCore(
        in_width=graph.input_fmt.width,
        in_words=graph.input_fmt.words,
        out_width=graph.output_fmt.width,
        out_words=graph.output_fmt.words,
        class_index=True,
        timeout=2000,
    )
    nb = graph.input_fmt.width // 8
    script, expect = [], b""
    for k in range(2):
        words = tensor_words(imgs[k : k + 1].reshape(1, -1), graph.input_fmt)
        payload = b"".join(int(w).to_bytes(nb, "little") for w in words)
        assert payload[:16] == imgs[k].reshape(-1)[:16].tobytes()  # lane 0 = first pixel
        script.append(ref_request(1 + k, payload))
        body = bytes([int(classes[k])]) * (1 + k)  # vector = the class word
        expect += ref_reply(0, body)
    # one byte per 10 cycles: a UART at 1 cycle per bit (the real link is >= 8x slower)
    got, _ = run_bytes(CoreBench(acc, core), script, len(expect), spacing=9)
    assert got == expect
