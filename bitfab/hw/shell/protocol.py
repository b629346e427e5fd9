"""The host link's wire protocol: constants, checksum, frame builders and parsers.

The one place the protocol is written down in code: the hardware engine
(:class:`bitfab.hw.shell.host_link.HostLinkCore`) takes its constants and its checksum
algorithm from here, the host (:mod:`bitfab.host.run`) builds its requests and checks the
replies with the functions here. Human-readable description: ``docs/host_link.md``.

Every multi-byte number is little-endian. The checksum is CRC-8/SMBUS (Amaranth's
:data:`amaranth.lib.crc.catalog.CRC8_SMBUS`: polynomial 0x07, initial value 0x00, no
reflection, no final XOR) over every byte of the frame before it.

Request (host -> board)::

    0xA5 | command | length (2 bytes) | payload (length bytes) | crc8

- ``command``: ``0x01`` classify, ``0x02`` classify and return the output vector, ``0x03`` ping,
  ``0x04`` load weights (boards whose weights sit in SPRAM: the payload is the whole weight
  image, :mod:`bitfab.hw.weight_image`, checked like the boot loader checks it; send it with
  no other request outstanding).
- classify / vector: ``length`` must equal the image size in bytes, ``words x ceil(W_in / 8)``:
  the accelerator's input words for one image (``bitfab.hw.compiler.tensor_words``, lanes
  packed as :mod:`bitfab.hw.packing` lays them out), each word little-endian in
  ``ceil(W_in / 8)`` bytes (unused high bits 0). Ping: ``length`` 0, no payload.

Reply (board -> host), one per request, in request order::

    ok, classify:   0x5A | 0x00 | class | crc8
    ok, vector:     0x5A | 0x00 | class | vector (out words x ceil(W_out / 8) bytes) | crc8
    ok, ping:       0x5A | 0x00 | image bytes (2) | vector bytes (2) | flags | crc8
                    (flags: bit 0 class index, bit 1 loadable weights, bits 2-4 loader status)
    ok, load:       0x5A | 0x00 | loader status (LOADER_STATUS: 1 = loaded) | crc8
    error:          0x5A | code | crc8

``class`` is the accelerator's output when it ends in LabelSelect (``flags`` bit 0,
:data:`FLAG_CLASS_INDEX`, set), else :data:`NO_CLASS` (the host takes the argmax of the vector).
Error codes: :data:`STATUS_NAMES`; what the board does after each one is in
:mod:`bitfab.hw.shell.host_link`.

Imports nothing but Amaranth's CRC library (and :mod:`bitfab.errors`): cheap for the host.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from amaranth.lib.crc import Parameters, catalog

from bitfab.errors import BitfabError

#: first byte of every request
MAGIC = 0xA5
#: first byte of every reply
REPLY_MAGIC = 0x5A
#: request commands (byte 1 of a request)
CMD_CLASSIFY = 0x01
CMD_VECTOR = 0x02
CMD_PING = 0x03
CMD_LOAD = 0x04
COMMANDS = frozenset({CMD_CLASSIFY, CMD_VECTOR, CMD_PING, CMD_LOAD})
#: weight-image loader status codes (the boot loader's, bitfab.hw.shell.flash_loader.Status;
#: the body byte of an ok load reply; on the LEDs of a board whose flash image was refused)
LOADER_BUSY, LOADER_OK, NO_IMAGE, OTHER_DESIGN, WRONG_LENGTH, BAD_CRC = range(6)
LOADER_STATUS = {
    LOADER_BUSY: "loading",
    LOADER_OK: "weights loaded",
    NO_IMAGE: "no weight image (wrong magic; erased flash or other data)",
    OTHER_DESIGN: "the weight image is for another architecture (design id differs)",
    WRONG_LENGTH: "the weight image has another word count than this design",
    BAD_CRC: "the weight image is corrupted or short (CRC-32 mismatch)",
}
#: ``class`` byte of a reply when the accelerator's output is a vector, not a class index
NO_CLASS = 0xFF
#: ping reply ``flags`` bit: the accelerator outputs a class index (ends in LabelSelect)
FLAG_CLASS_INDEX = 0x01
#: ping reply ``flags`` bit 1: the board keeps weights in SPRAM (it takes load requests); then
#: bits 2-4 hold the weight loader's status (:data:`LOADER_STATUS`; 1 = weights loaded)
FLAG_LOADABLE = 0x02
LOADER_SHIFT = 2
#: body bytes of an ok ping reply: image bytes (2), vector bytes (2), flags (1)
PING_BODY_BYTES = 5
#: bytes around a request's payload (magic, command, length 2, crc) and a reply's body
#: (magic, status, crc)
REQUEST_OVERHEAD = 5
REPLY_OVERHEAD = 3
#: largest payload the 16-bit length field can announce (bytes)
MAX_LENGTH = 0xFFFF

#: reply status codes (byte 1 of a reply)
OK, BAD_MAGIC, BAD_COMMAND, BAD_LENGTH, BAD_CHECKSUM, FRAMING, TIMEOUT, OVERRUN = range(8)
STATUS_NAMES = {
    OK: "ok",
    BAD_MAGIC: "bad magic",
    BAD_COMMAND: "bad command",
    BAD_LENGTH: "bad length",
    BAD_CHECKSUM: "bad checksum",
    FRAMING: "UART framing error",
    TIMEOUT: "timeout (truncated frame)",
    OVERRUN: "input overrun (the accelerator did not keep up with the link)",
}

#: the frame checksum: CRC-8/SMBUS over 8-bit words. ``CRC.compute(data)`` in software,
#: ``CRC.create()`` a hardware :class:`amaranth.lib.crc.Processor` (one byte per clock cycle).
CRC: Parameters = catalog.CRC8_SMBUS(data_width=8)


class ProtocolError(BitfabError):
    """A frame that breaks the protocol. ``status`` is the error code the board replies with
    for such a request (:data:`BAD_MAGIC`, :data:`BAD_COMMAND`, :data:`BAD_LENGTH` or
    :data:`BAD_CHECKSUM`)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def crc8(data: Iterable[int]) -> int:
    """CRC-8/SMBUS (8 bits) of the bytes ``data``: :data:`CRC`'s ``compute``."""
    return CRC.compute(data)


def crc_ok(frame: bytes) -> bool:
    """Whether the last byte of ``frame`` is the CRC-8 of the bytes before it."""
    return len(frame) >= 1 and crc8(frame[:-1]) == frame[-1]


def word_bytes(width: int) -> int:
    """Bytes per stream word of ``width`` bits on the link."""
    return (width + 7) // 8


def words_to_bytes(words: Sequence[int], width: int) -> bytes:
    """Stream words of ``width`` bits as link bytes (each word little-endian)."""
    n = word_bytes(width)
    return b"".join(int(w).to_bytes(n, "little") for w in words)


def bytes_to_words(data: bytes, width: int) -> list[int]:
    """Inverse of :func:`words_to_bytes`."""
    n = word_bytes(width)
    return [int.from_bytes(data[k : k + n], "little") for k in range(0, len(data), n)]


def request(command: int, payload: bytes = b"") -> bytes:
    """One request frame: magic, ``command``, 16-bit length, ``payload``, CRC-8."""
    if len(payload) > MAX_LENGTH:
        raise BitfabError(f"request payload of {len(payload)} bytes: at most {MAX_LENGTH}")
    body = bytes([MAGIC, command]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return body + bytes([crc8(body)])


def parse_request(frame: bytes, image_bytes: int | None = None) -> tuple[int, bytes]:
    """``(command, payload)`` of one whole request frame, checked as the board checks it
    (magic, command, length, checksum, in that order; ``image_bytes``: the payload size a
    classify/vector request must have, ``None``: any). Raises :class:`ProtocolError`."""
    frame = bytes(frame)
    if not frame or frame[0] != MAGIC:
        raise ProtocolError(BAD_MAGIC, "request: bad magic byte")
    if len(frame) < 2 or frame[1] not in COMMANDS:
        raise ProtocolError(BAD_COMMAND, "request: unknown command")
    if len(frame) < 4:
        raise ProtocolError(BAD_LENGTH, "request: truncated header")
    command, length = frame[1], int.from_bytes(frame[2:4], "little")
    if command == CMD_PING:
        want = 0
    elif command == CMD_LOAD:
        want = length
    else:
        want = length if image_bytes is None else image_bytes
    if length != want or len(frame) != REQUEST_OVERHEAD + length:
        raise ProtocolError(
            BAD_LENGTH, f"request: length {length}, frame of {len(frame)} bytes (payload {want})"
        )
    if not crc_ok(frame):
        raise ProtocolError(BAD_CHECKSUM, "request: checksum mismatch")
    return command, frame[4:-1]


def reply(status: int, body: bytes = b"") -> bytes:
    """One reply frame: reply magic, ``status``, ``body`` (empty for an error), CRC-8."""
    msg = bytes([REPLY_MAGIC, status]) + bytes(body)
    return msg + bytes([crc8(msg)])


def reply_length(status: int, body_bytes: int) -> int:
    """Bytes of a reply with ``status`` whose ok body would have ``body_bytes`` bytes (error
    replies have no body)."""
    return REPLY_OVERHEAD + (body_bytes if status == OK else 0)


def parse_reply(frame: bytes) -> tuple[int, bytes]:
    """``(status, body)`` of one whole reply frame. Raises :class:`ProtocolError` for a bad
    magic byte, an error reply with a body, or a checksum mismatch."""
    frame = bytes(frame)
    if len(frame) < REPLY_OVERHEAD or frame[0] != REPLY_MAGIC:
        raise ProtocolError(BAD_MAGIC, "reply: bad magic byte or shorter than 3 bytes")
    status = frame[1]
    if status != OK and len(frame) != REPLY_OVERHEAD:
        raise ProtocolError(BAD_LENGTH, f"reply: error {status} with a body")
    if not crc_ok(frame):
        raise ProtocolError(BAD_CHECKSUM, "reply: checksum mismatch")
    return status, frame[2:-1]


def ping_body(image_bytes: int, vector_bytes: int, class_index: bool) -> bytes:
    """Body of an ok ping reply (:data:`PING_BODY_BYTES` bytes)."""
    flags = FLAG_CLASS_INDEX if class_index else 0
    return image_bytes.to_bytes(2, "little") + vector_bytes.to_bytes(2, "little") + bytes([flags])


def parse_ping_body(body: bytes) -> tuple[int, int, bool]:
    """``(image_bytes, vector_bytes, class_index)`` of an ok ping reply's body."""
    if len(body) != PING_BODY_BYTES:
        raise ProtocolError(BAD_LENGTH, f"ping reply: {len(body)} body bytes, expected 5")
    i, v = int.from_bytes(body[0:2], "little"), int.from_bytes(body[2:4], "little")
    return i, v, bool(body[4] & FLAG_CLASS_INDEX)
