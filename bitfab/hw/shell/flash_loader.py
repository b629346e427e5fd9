"""Boot loader: the weight image from the board's SPI configuration flash into SPRAM.

At reset :class:`FlashLoader` wakes the flash (``0xAB``, release from power-down, then
``wake_cycles`` of wait), reads from byte ``offset`` with the plain READ command (``0x03``, 24-bit
address, SPI mode 0, SCK = clock / (2 ``sck_div``)) and checks the image
(:mod:`bitfab.hw.weight_image`) as it streams: the 12 header bytes against the constants of
this design, the payload as 16-bit words out of ``o`` (the accelerator's ``wload``; SCK pauses
while a word waits), the CRC-32 of the payload against the image's last 4 bytes.

``status`` (:class:`Status` codes): ``BUSY`` while loading, ``OK`` when the image was good, or the
first error: ``NO_IMAGE`` (wrong magic: nothing or something else at ``offset``, an erased flash
reads ``0xFF``), ``OTHER_DESIGN`` (the image is for another SPRAM layout), ``WRONG_LENGTH``
(another word count), ``BAD_CRC`` (corrupted or short image). Only ``OK`` lets the board run the
accelerator (the words of a bad image may already sit in SPRAM, so nothing is computed with them).
"""

from __future__ import annotations

import enum

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.shell import protocol
from bitfab.hw.weight_image import CRC_BYTES, HEADER_BYTES

READ = 0x03
RELEASE_POWER_DOWN = 0xAB


class Status(enum.IntEnum):
    """Loader status codes (``status`` port, 3 bits; :data:`bitfab.hw.shell.protocol.LOADER_STATUS`)."""

    BUSY = protocol.LOADER_BUSY
    OK = protocol.LOADER_OK
    NO_IMAGE = protocol.NO_IMAGE
    OTHER_DESIGN = protocol.OTHER_DESIGN
    WRONG_LENGTH = protocol.WRONG_LENGTH
    BAD_CRC = protocol.BAD_CRC


#: one line per status, for reports and the host
STATUS_TEXT = {Status(k): v for k, v in protocol.LOADER_STATUS.items()}


class ImageChecker(wiring.Component):
    """Check a weight image arriving byte by byte and hand its payload on as 16-bit words.

    ``header`` (12 bytes) and ``words`` are this design's constants. Ports: ``i`` (in stream of
    image bytes, always ready unless a word waits on ``o``), ``o`` (out stream, load words),
    ``start`` (in: a pulse begins a new image), ``status`` (out, :class:`Status`: ``BUSY`` from
    ``start`` until the last byte, then ``OK`` or the first error; bytes after an error are
    dropped until the next ``start``). After reset it waits for ``start``."""

    def __init__(self, header: bytes, words: int) -> None:
        if len(header) != HEADER_BYTES:
            raise ValueError(f"header must be {HEADER_BYTES} bytes, got {len(header)}")
        if words < 1:
            raise ValueError("words must be >= 1")
        self.header, self.words = bytes(header), int(words)
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(8))),
                "o": Out(stream.Signature(unsigned(16))),
                "start": In(1),
                "status": Out(3),
            }
        )

    @property
    def image_bytes(self) -> int:
        return HEADER_BYTES + 2 * self.words + CRC_BYTES

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crcp = crc.catalog.CRC32_ISO_HDLC().create()
        nbytes = self.image_bytes
        first_crc = HEADER_BYTES + 2 * self.words  # index of the first CRC byte
        idx = Signal(range(nbytes + 1))
        lo = Signal(8)
        word = Signal(16)
        pending = Signal()
        crc_got = Signal(32)
        status = Signal(3, init=Status.BUSY)
        active = Signal()  # receiving an image
        checking = Signal()
        rx = self.i.payload
        got = self.i.valid & self.i.ready
        m.d.comb += [
            self.status.eq(status),
            self.o.valid.eq(pending),
            self.o.payload.eq(word),
            self.i.ready.eq(~pending),
            crcp.data.eq(rx),
            crcp.start.eq(self.start),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        m.d.sync += checking.eq(0)
        with m.If(self.start):
            m.d.sync += [idx.eq(0), active.eq(1), status.eq(Status.BUSY), pending.eq(0)]
        with m.Elif(got & active):
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx < HEADER_BYTES):
                with m.Switch(idx):
                    for k, b in enumerate(self.header):
                        with m.Case(k):
                            with m.If(rx != b):
                                code = (
                                    Status.NO_IMAGE
                                    if k < 4
                                    else Status.OTHER_DESIGN
                                    if k < 8
                                    else Status.WRONG_LENGTH
                                )
                                m.d.sync += [status.eq(code), active.eq(0)]
            with m.Elif(idx < first_crc):
                m.d.comb += crcp.valid.eq(1)
                with m.If(idx[0] == HEADER_BYTES % 2):  # low byte of a word
                    m.d.sync += lo.eq(rx)
                with m.Else():
                    m.d.sync += [word.eq(Cat(lo, rx)), pending.eq(1)]
            with m.Else():
                m.d.sync += crc_got.eq(Cat(crc_got[8:], rx))
                with m.If(idx == nbytes - 1):
                    m.d.sync += [active.eq(0), checking.eq(1)]
        with m.If(checking):
            m.d.sync += status.eq(Mux(crc_got == crcp.crc, Status.OK, Status.BAD_CRC))
        return m


class FlashLoader(wiring.Component):
    """Read the weight image (``header`` + ``words`` 16-bit words + CRC) from SPI flash at
    byte ``offset`` into an :class:`ImageChecker`.

    Ports: ``o`` (out stream, 16-bit load words), ``status`` (out, 3 bits, :class:`Status`),
    ``sck``, ``cs_n``, ``mosi`` (out), ``miso`` (in). ``bytes_o`` (out stream of the image
    bytes read) and ``start`` (out, the checker's start pulse) are for a caller that puts its
    own checker between (``own_checker=True``: no checker inside, and no ``o``/``status``).
    """

    def __init__(
        self,
        header: bytes,
        words: int,
        offset: int,
        *,
        sck_div: int = 2,
        wake_cycles: int = 64,
        own_checker: bool = False,
    ) -> None:
        if not 0 <= offset < 1 << 24:
            raise ValueError(f"offset must fit 24 bits, got {offset:#x}")
        if sck_div < 1 or wake_cycles < 1:
            raise ValueError("sck_div and wake_cycles must be >= 1")
        self.checker = None if own_checker else ImageChecker(header, words)
        self.header, self.words, self.offset = bytes(header), int(words), int(offset)
        if len(self.header) != HEADER_BYTES:
            raise ValueError(f"header must be {HEADER_BYTES} bytes, got {len(header)}")
        self.sck_div, self.wake_cycles = int(sck_div), int(wake_cycles)
        ports = {
            "bytes_o": Out(stream.Signature(unsigned(8))),
            "start": Out(1),
            "sck": Out(1),
            "cs_n": Out(1, init=1),
            "mosi": Out(1),
            "miso": In(1),
        }
        if not own_checker:
            ports.update(o=Out(stream.Signature(unsigned(16))), status=Out(3))
        super().__init__(ports)

    @property
    def image_bytes(self) -> int:
        return HEADER_BYTES + 2 * self.words + CRC_BYTES

    def boot_cycles(self) -> int:
        """Clock cycles from reset to ``status`` = OK when ``o`` is always ready: a command
        byte takes ``16 sck_div + 2`` cycles (start, 16 SCK phases, done), an image byte one
        more (handed to the checker before the next starts); the wake-up byte, the wait, the
        command and address bytes, the image, and the CRC check."""
        per_byte = 16 * self.sck_div + 2
        return 5 * per_byte + self.wake_cycles + self.image_bytes * (per_byte + 1) + 1

    def elaborate(self, platform):
        m = Module()
        # ---- byte engine: shifts `tx` out on MOSI and MISO into `rx`, MSB first, mode 0
        tx = Signal(8)
        rx = Signal(8)
        bit = Signal(range(8))
        div = Signal(range(self.sck_div + 1))
        high = Signal()  # SCK phase
        go = Signal()  # start a byte (engine idle)
        busy = Signal()
        done = Signal()  # one cycle: `rx` holds a whole byte
        m.d.comb += [self.sck.eq(high), self.mosi.eq(tx[7])]
        m.d.sync += done.eq(0)
        with m.If(go & ~busy):
            m.d.sync += [busy.eq(1), bit.eq(0), div.eq(0), high.eq(0)]
        with m.Elif(busy):
            with m.If(div == self.sck_div - 1):
                m.d.sync += div.eq(0)
                with m.If(~high):
                    m.d.sync += high.eq(1)
                with m.Else():
                    # end of the high phase: sample MISO (stable since the last falling edge)
                    m.d.sync += [high.eq(0), rx.eq(Cat(self.miso, rx[:7])), tx.eq(tx << 1)]
                    with m.If(bit == 7):
                        m.d.sync += [busy.eq(0), done.eq(1)]
                    with m.Else():
                        m.d.sync += bit.eq(bit + 1)
            with m.Else():
                m.d.sync += div.eq(div + 1)

        # ---- the image bytes go to the checker (inside, or the caller's)
        if self.checker is not None:
            m.submodules.checker = chk = self.checker
            wiring.connect(m, chk.o, wiring.flipped(self.o))
            m.d.comb += [
                chk.i.payload.eq(self.bytes_o.payload),
                chk.i.valid.eq(self.bytes_o.valid),
                self.bytes_o.ready.eq(chk.i.ready),
                chk.start.eq(self.start),
                self.status.eq(chk.status),
            ]
        nbytes = self.image_bytes
        idx = Signal(range(nbytes + 1))  # image bytes read
        cmd_i = Signal(range(5))
        wait = Signal(range(self.wake_cycles + 1))
        held = Signal()  # `rx` holds a byte not yet taken by the checker
        m.d.comb += [self.bytes_o.payload.eq(rx), self.bytes_o.valid.eq(held)]
        with m.If(self.bytes_o.valid & self.bytes_o.ready):
            m.d.sync += held.eq(0)
        cmd = [READ, (self.offset >> 16) & 0xFF, (self.offset >> 8) & 0xFF, self.offset & 0xFF]

        with m.FSM():
            with m.State("WAKE"):
                m.d.comb += [self.cs_n.eq(0), go.eq(1)]
                m.d.sync += tx.eq(RELEASE_POWER_DOWN)
                with m.If(busy):  # byte started
                    m.next = "WAKE_SHIFT"
            with m.State("WAKE_SHIFT"):
                m.d.comb += self.cs_n.eq(0)
                with m.If(done):
                    m.d.sync += wait.eq(0)
                    m.next = "WAKE_WAIT"
            with m.State("WAKE_WAIT"):
                m.d.sync += wait.eq(wait + 1)
                with m.If(wait == self.wake_cycles - 1):
                    m.d.sync += [tx.eq(cmd[0]), cmd_i.eq(0)]
                    m.next = "CMD"
            with m.State("CMD"):
                # command and address bytes
                m.d.comb += [self.cs_n.eq(0), go.eq(~busy & ~done)]
                with m.If(done):
                    with m.If(cmd_i == 3):
                        m.d.sync += [tx.eq(0), idx.eq(0)]
                        m.d.comb += self.start.eq(1)
                        m.next = "DATA"
                    with m.Else():
                        m.d.sync += cmd_i.eq(cmd_i + 1)
                        with m.Switch(cmd_i):
                            for k in range(3):
                                with m.Case(k):
                                    m.d.sync += tx.eq(cmd[k + 1])
            with m.State("DATA"):
                m.d.comb += self.cs_n.eq(0)
                # the next byte only when the checker has taken the last one
                m.d.comb += go.eq(~busy & ~done & ~held & (idx != nbytes))
                with m.If(done):
                    m.d.sync += [held.eq(1), idx.eq(idx + 1)]
                with m.If((idx == nbytes) & ~held & ~busy):
                    m.next = "STOP"
            with m.State("STOP"):
                pass
        return m
