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

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import crc, stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.weight_image import CRC_BYTES, HEADER_BYTES

READ = 0x03
RELEASE_POWER_DOWN = 0xAB


class Status(enum.IntEnum):
    """Loader status codes (``status`` port, 3 bits)."""

    BUSY = 0
    OK = 1
    NO_IMAGE = 2
    OTHER_DESIGN = 3
    WRONG_LENGTH = 4
    BAD_CRC = 5


#: one line per error status, for reports and the host link
STATUS_TEXT = {
    Status.BUSY: "loading",
    Status.OK: "weights loaded",
    Status.NO_IMAGE: "no weight image at the flash offset (wrong magic; erased or other data)",
    Status.OTHER_DESIGN: "the weight image is for another architecture (design id differs)",
    Status.WRONG_LENGTH: "the weight image has another word count than this design",
    Status.BAD_CRC: "the weight image is corrupted or short (CRC-32 mismatch)",
}


class FlashLoader(wiring.Component):
    """Read and check a weight image of ``header`` (12 bytes) + ``words`` 16-bit words + CRC
    from SPI flash at byte ``offset``.

    Ports: ``o`` (out stream, 16-bit load words), ``status`` (out, 3 bits, :class:`Status`),
    ``sck``, ``cs_n``, ``mosi`` (out), ``miso`` (in), ``restart`` (in: a pulse reads again).
    """

    def __init__(
        self,
        header: bytes,
        words: int,
        offset: int,
        *,
        sck_div: int = 2,
        wake_cycles: int = 64,
    ) -> None:
        if len(header) != HEADER_BYTES:
            raise ValueError(f"header must be {HEADER_BYTES} bytes, got {len(header)}")
        if not 0 <= offset < 1 << 24:
            raise ValueError(f"offset must fit 24 bits, got {offset:#x}")
        if sck_div < 1 or wake_cycles < 1 or words < 1:
            raise ValueError("sck_div, wake_cycles and words must be >= 1")
        self.header, self.words, self.offset = bytes(header), int(words), int(offset)
        self.sck_div, self.wake_cycles = int(sck_div), int(wake_cycles)
        super().__init__(
            {
                "o": Out(stream.Signature(unsigned(16))),
                "status": Out(3),
                "sck": Out(1),
                "cs_n": Out(1, init=1),
                "mosi": Out(1),
                "miso": In(1),
                "restart": In(1),
            }
        )

    @property
    def image_bytes(self) -> int:
        return HEADER_BYTES + 2 * self.words + CRC_BYTES

    def boot_cycles(self) -> int:
        """Clock cycles from reset to ``status`` = OK when ``o`` is always ready: a byte takes
        ``16 sck_div + 2`` cycles (start, 16 SCK phases, done), each payload word one more (it
        is handed over before the next byte starts); the wake-up byte, the wait, the command
        and address bytes, the image, one cycle of CRC check."""
        per_byte = 16 * self.sck_div + 2
        return per_byte + self.wake_cycles + (4 + self.image_bytes) * per_byte + self.words + 1

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

        # ---- image check
        m.submodules.crc = crcp = crc.catalog.CRC32_ISO_HDLC().create()
        nbytes = self.image_bytes
        idx = Signal(range(nbytes + 1))  # image byte being received
        cmd_i = Signal(range(5))
        wait = Signal(range(self.wake_cycles + 1))
        lo = Signal(8)  # low byte of the current word
        word = Signal(16)
        pending = Signal()  # a word waits for `o.ready`
        crc_got = Signal(32)
        status = Signal(3, init=Status.BUSY)
        m.d.comb += [
            self.status.eq(status),
            self.o.valid.eq(pending),
            self.o.payload.eq(word),
            crcp.data.eq(rx),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        head = self.header
        cmd = [READ, (self.offset >> 16) & 0xFF, (self.offset >> 8) & 0xFF, self.offset & 0xFF]
        first_crc = HEADER_BYTES + 2 * self.words  # index of the first CRC byte

        def fail(code: Status) -> None:
            m.d.sync += status.eq(code)
            m.next = "STOP"

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
                m.d.comb += self.cs_n.eq(0)
                m.d.comb += go.eq(~busy & ~done)
                with m.If(done):
                    with m.If(cmd_i == 3):
                        m.d.sync += [tx.eq(0), idx.eq(0)]
                        m.d.comb += crcp.start.eq(1)
                        m.next = "DATA"
                    with m.Else():
                        m.d.sync += cmd_i.eq(cmd_i + 1)
                        with m.Switch(cmd_i):
                            for k in range(3):
                                with m.Case(k):
                                    m.d.sync += tx.eq(cmd[k + 1])
            with m.State("DATA"):
                m.d.comb += self.cs_n.eq(0)
                # a new byte only when the last word has gone (or is not yet due)
                m.d.comb += go.eq(~busy & ~done & ~pending)
                with m.If(done):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx < HEADER_BYTES):
                        with m.Switch(idx):
                            for k, b in enumerate(head):
                                with m.Case(k):
                                    with m.If(rx != b):
                                        fail(
                                            Status.NO_IMAGE
                                            if k < 4
                                            else Status.OTHER_DESIGN
                                            if k < 8
                                            else Status.WRONG_LENGTH
                                        )
                    with m.Elif(idx < first_crc):
                        m.d.comb += crcp.valid.eq(1)
                        with m.If(idx[0] == HEADER_BYTES % 2):  # low byte of a word
                            m.d.sync += lo.eq(rx)
                        with m.Else():
                            m.d.sync += [word.eq(Cat(lo, rx)), pending.eq(1)]
                    with m.Else():
                        m.d.sync += crc_got.eq(Cat(crc_got[8:], rx))
                        with m.If(idx == nbytes - 1):
                            m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(crc_got == crcp.crc):
                    m.d.sync += status.eq(Status.OK)
                    m.next = "STOP"
                with m.Else():
                    fail(Status.BAD_CRC)
            with m.State("STOP"):
                with m.If(self.restart):
                    m.d.sync += status.eq(Status.BUSY)
                    m.next = "WAKE"
        return m
