"""The host link wire protocol (bitfab.hw.shell.protocol): checksum, frames, corrupt frames.

The CRC is checked against the CRC-8/SMBUS check value of the reveng catalogue and against a
bit-serial shift-register model written here (one input bit per step, no byte-wide XOR); the
hardware CRC (``protocol.CRC.create()``, the Amaranth ``lib.crc`` processor the host link
instantiates) runs in Amaranth's simulator on hypothesis-drawn bytes, with idle cycles between
them as a UART delivers them and restarted the way the link restarts it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from bitfab.errors import BitfabError
from bitfab.hw.shell import protocol as P


# ---- independent reference ------------------------------------------------------------------
def ref_crc_bitserial(data: bytes) -> int:
    """CRC-8, generator x^8 + x^2 + x + 1, register initially 0, message bits MSB first, fed
    one bit at a time into a Galois shift register (feedback = register MSB xor input bit)."""
    reg = 0
    for byte in data:
        for i in range(7, -1, -1):
            fb = (reg >> 7 & 1) ^ (byte >> i & 1)
            reg = (reg << 1) & 0xFF
            if fb:
                reg ^= 0b0000_0111  # x^2 + x + 1 (the x^8 term is the bit shifted out)
    return reg


def test_crc_check_value():
    # reveng catalogue, CRC-8/SMBUS: check = 0xF4 (CRC of the ASCII bytes "123456789")
    assert P.crc8(b"123456789") == 0xF4
    assert ref_crc_bitserial(b"123456789") == 0xF4
    assert P.crc8(b"") == 0
    assert P.CRC.residue() == 0  # a frame with its CRC appended has CRC 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_crc_matches_the_bitserial_model(data):
    assert P.crc8(data) == ref_crc_bitserial(data)
    assert P.crc_ok(data + bytes([P.crc8(data)]))


def _hw_crc(chunks: list[tuple[bytes, list[int]]]) -> list[int]:
    """Run the hardware CRC: for each ``(data, gaps)`` chunk, restart the processor with the
    first byte (``start`` and ``valid`` together, as the link's idle state does) and feed the
    rest, ``gaps[k]`` idle cycles before byte ``k``; returns the CRC output after each chunk."""
    proc = P.CRC.create()
    out: list[int] = []

    async def tb(ctx):
        for data, gaps in chunks:
            if not data:
                ctx.set(proc.start, 1)  # start alone: back to the initial value
                await ctx.tick()
                ctx.set(proc.start, 0)
            for k, b in enumerate(data):
                if gaps[k]:
                    await ctx.tick().repeat(gaps[k])
                ctx.set(proc.start, k == 0)
                ctx.set(proc.data, b)
                ctx.set(proc.valid, 1)
                await ctx.tick()
                ctx.set(proc.start, 0)
                ctx.set(proc.valid, 0)
            out.append(ctx.get(proc.crc))

    sim = Simulator(proc)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out


@st.composite
def _chunks(draw):
    n = draw(st.integers(1, 3))
    out = []
    for _ in range(n):
        data = draw(st.binary(max_size=24))
        gaps = draw(st.lists(st.integers(0, 3), min_size=len(data), max_size=len(data)))
        out.append((data, gaps))
    return out


@settings(max_examples=30, deadline=None)
@given(_chunks())
def test_hardware_crc_matches_software(chunks):
    assert _hw_crc(chunks) == [P.crc8(d) for d, _ in chunks]


# ---- frames -----------------------------------------------------------------------------------
def test_request_layout():
    f = P.request(P.CMD_CLASSIFY, b"\x01\x02\x03")
    assert f[:7] == bytes([0xA5, 0x01, 0x03, 0x00, 0x01, 0x02, 0x03])
    assert f[7] == ref_crc_bitserial(f[:7]) and len(f) == 8
    ping = P.request(P.CMD_PING)
    assert ping == bytes([0xA5, 0x03, 0, 0, ref_crc_bitserial(bytes([0xA5, 3, 0, 0]))])
    assert P.reply(P.BAD_CHECKSUM) == bytes([0x5A, 4, ref_crc_bitserial(bytes([0x5A, 4]))])
    with pytest.raises(BitfabError, match="at most"):
        P.request(P.CMD_CLASSIFY, bytes(P.MAX_LENGTH + 1))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from([P.CMD_CLASSIFY, P.CMD_VECTOR]), st.binary(max_size=300))
def test_request_round_trip(cmd, payload):
    frame = P.request(cmd, payload)
    assert len(frame) == len(payload) + P.REQUEST_OVERHEAD
    assert P.parse_request(frame) == (cmd, payload)
    assert P.parse_request(frame, image_bytes=len(payload)) == (cmd, payload)
    if payload:
        with pytest.raises(P.ProtocolError) as e:
            P.parse_request(frame, image_bytes=len(payload) - 1)
        assert e.value.status == P.BAD_LENGTH
    assert P.parse_request(P.request(P.CMD_PING), image_bytes=len(payload)) == (P.CMD_PING, b"")


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(P.COMMANDS)),
    st.binary(max_size=40),
    st.data(),
)
def test_corrupt_requests_are_rejected(cmd, payload, data):
    """Any single flipped bit, a dropped byte or an extra byte makes the frame fail, with the
    status the board would reply with for the first field that is wrong."""
    if cmd == P.CMD_PING:
        payload = b""
    frame = bytearray(P.request(cmd, payload))
    kind = data.draw(st.sampled_from(["flip", "drop", "extra"]))
    if kind == "flip":
        pos = data.draw(st.integers(0, len(frame) - 1))
        frame[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "drop":
        del frame[data.draw(st.integers(0, len(frame) - 1))]
    else:
        frame.insert(data.draw(st.integers(0, len(frame))), data.draw(st.integers(0, 255)))
    with pytest.raises(P.ProtocolError) as e:
        P.parse_request(bytes(frame))
    status = e.value.status
    if frame[0] != P.MAGIC:
        assert status == P.BAD_MAGIC
    elif frame[1] not in P.COMMANDS:
        assert status == P.BAD_COMMAND
    else:
        assert status in (P.BAD_LENGTH, P.BAD_CHECKSUM)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=40))
def test_reply_round_trip(body):
    frame = P.reply(P.OK, body)
    assert len(frame) == P.reply_length(P.OK, len(body))
    assert P.parse_reply(frame) == (P.OK, body)
    for code in range(1, 8):
        err = P.reply(code)
        assert len(err) == P.reply_length(code, len(body)) == P.REPLY_OVERHEAD
        assert P.parse_reply(err) == (code, b"")
        assert code in P.STATUS_NAMES


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 7), st.binary(max_size=20), st.data())
def test_corrupt_replies_are_rejected(status, body, data):
    frame = bytearray(P.reply(status, body if status == P.OK else b""))
    pos = data.draw(st.integers(0, len(frame) - 1))
    frame[pos] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(P.ProtocolError):
        P.parse_reply(bytes(frame))
    with pytest.raises(P.ProtocolError):
        P.parse_reply(bytes(frame[:2]))


@given(st.integers(0, P.MAX_LENGTH), st.integers(0, P.MAX_LENGTH), st.booleans())
def test_ping_body_round_trip(image_bytes, vector_bytes, class_index):
    body = P.ping_body(image_bytes, vector_bytes, class_index)
    assert len(body) == P.PING_BODY_BYTES
    assert P.parse_ping_body(body) == (image_bytes, vector_bytes, class_index)
    assert body[4] == (P.FLAG_CLASS_INDEX if class_index else 0)
    with pytest.raises(P.ProtocolError):
        P.parse_ping_body(body[:4])


@given(st.integers(1, 40), st.data())
def test_words_bytes_round_trip(width, data):
    words = data.draw(st.lists(st.integers(0, (1 << width) - 1), max_size=10))
    raw = P.words_to_bytes(words, width)
    assert len(raw) == len(words) * P.word_bytes(width) == len(words) * -(-width // 8)
    assert P.bytes_to_words(raw, width) == words


def test_protocol_imports_only_amaranth():
    """The host imports this module: no numpy, no torch, no other bitfab hardware module."""
    code = (
        "import sys, bitfab.hw.shell.protocol as p; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('bitfab', 'numpy', "
        "'torch', 'amaranth.lib.fifo', 'amaranth.back')))))"
    )
    mods = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert mods == [
        "bitfab",
        "bitfab.errors",
        "bitfab.hw",
        "bitfab.hw.shell",
        "bitfab.hw.shell.protocol",
    ]
