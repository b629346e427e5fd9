"""Boot loader (bitfab.hw.shell.flash_loader) against a Python SPI-flash model, in Amaranth's
simulator: good, corrupted, short, foreign and missing images, with back-pressure."""

import struct
import zlib

import numpy as np
import pytest
from amaranth.sim import Simulator

from bitfab.hw.shell.flash_loader import READ, RELEASE_POWER_DOWN, FlashLoader, Status
from bitfab.hw.weight_image import MAGIC

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

OFFSET = 0x100000


def make_image(words, design=0x1234ABCD, n=None):
    payload = struct.pack(f"<{len(words)}H", *words)
    head = MAGIC + struct.pack("<II", design, len(words) if n is None else n)
    return head + payload + struct.pack("<I", zlib.crc32(payload))


def run_loader(flash: dict[int, int], header: bytes, nwords: int, rng, stall=0.0, sck_div=1):
    """Simulate the loader against a mode-0 SPI flash holding ``flash`` (address -> byte,
    0xFF elsewhere). Returns (status, words, commands seen, cycles to a final status)."""
    dut = FlashLoader(header, nwords, OFFSET, sck_div=sck_div, wake_cycles=5)
    words, cmds, res = [], [], {}

    async def bench(ctx):
        prev_sck = 0
        nbit = nbyte = 0
        rx = cmd = addr = 0
        out = 0xFF
        for cycle in range(200_000):
            sck, cs = ctx.get(dut.sck), ctx.get(dut.cs_n)
            if cs:
                nbit = nbyte = 0
                rx = 0
            if not cs and sck and not prev_sck:  # rising: sample MOSI
                rx = ((rx << 1) | ctx.get(dut.mosi)) & 0xFF
                nbit += 1
                if nbit == 8:
                    if nbyte == 0:
                        cmd = rx
                        cmds.append(rx)
                    elif nbyte <= 3:
                        addr = (addr << 8 | rx) & 0xFFFFFF
                    nbit, nbyte = 0, nbyte + 1
            if not cs and not sck and prev_sck and cmd == READ and nbyte >= 4:  # falling
                out = flash.get(addr + nbyte - 4, 0xFF)
                ctx.set(dut.miso, (out >> (7 - nbit)) & 1)
            prev_sck = sck
            ready = rng.random() >= stall
            ctx.set(dut.o.ready, ready)
            if ctx.get(dut.o.valid) and ready:
                words.append(ctx.get(dut.o.payload))
            st = ctx.get(dut.status)
            if st != Status.BUSY:
                res["status"], res["cycles"] = Status(st), cycle
                return
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return res.get("status"), words, cmds, res.get("cycles"), dut


def place(image: bytes) -> dict[int, int]:
    return {OFFSET + k: b for k, b in enumerate(image)}


@pytest.mark.parametrize("seed,stall", [(0, 0.0), (1, 0.5)])
def test_good_image_streams_every_word(seed, stall):
    rng = np.random.default_rng(seed)
    words = [int(x) for x in rng.integers(0, 1 << 16, 23)]
    image = make_image(words)
    st, got, cmds, cycles, dut = run_loader(place(image), image[:12], len(words), rng, stall)
    assert st == Status.OK
    assert got == words
    assert cmds == [RELEASE_POWER_DOWN, READ]
    if stall == 0:
        assert abs(cycles - dut.boot_cycles()) <= 3


@pytest.mark.parametrize(
    "fault,status",
    [
        ("payload_bit", Status.BAD_CRC),
        ("crc_byte", Status.BAD_CRC),
        ("short", Status.BAD_CRC),
        ("erased", Status.NO_IMAGE),
        ("other_design", Status.OTHER_DESIGN),
        ("other_length", Status.WRONG_LENGTH),
    ],
)
def test_bad_images_are_refused_by_name(fault, status):
    rng = np.random.default_rng(7)
    words = [int(x) for x in rng.integers(0, 1 << 16, 17)]
    good = make_image(words)
    img = bytearray(good)
    if fault == "payload_bit":
        img[12 + 9] ^= 0x10
    elif fault == "crc_byte":
        img[-1] ^= 0x01
    elif fault == "short":
        img = img[: len(img) - 9]  # the rest of the flash is erased (0xFF)
    elif fault == "erased":
        img = bytearray()
    elif fault == "other_design":
        img = bytearray(make_image(words, design=0x1234ABCE))
    elif fault == "other_length":
        img = bytearray(make_image(words, n=18))
    st, _, _, _, _ = run_loader(place(bytes(img)), good[:12], len(words), rng)
    assert st == status


def test_bad_parameters_raise():
    with pytest.raises(ValueError, match="header"):
        FlashLoader(b"xx", 4, 0)
    with pytest.raises(ValueError, match="offset"):
        FlashLoader(b"x" * 12, 4, 1 << 24)
