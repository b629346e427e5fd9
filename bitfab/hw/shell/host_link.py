"""Host link: the accelerator behind a UART, with a small framed request/reply protocol.

The frames, commands and status codes are :mod:`bitfab.hw.shell.protocol` (and
``docs/host_link.md``); this module is the hardware that speaks them. The checksum is
Amaranth's :class:`amaranth.lib.crc.Processor` for :data:`bitfab.hw.shell.protocol.CRC`
(CRC-8/SMBUS), one on the receive side and one on the reply side, fed one byte per received or
sent byte.

Error handling: after bad magic, bad command, bad length or a framing error the link ignores
bytes until the line has been quiet for ``timeout`` cycles (so a corrupted stream costs one
error reply, not one per byte); after a bad checksum or a timeout (a frame stopped for longer
than ``timeout`` cycles between two bytes: truncated) it is ready at once. Overrun (status 7):
a payload word found the input FIFO full, the accelerator was held up, e.g. by long vector
replies; never seen with classify. A frame that fails after its payload started has already
fed the accelerator: the rest of the image is padded with zero words so the accelerator stays
aligned, and that image's output is dropped. Nothing waits without a bound: every wait ends
with a byte or the timeout.

Requests may be sent back to back (pipelined): the payload streams into the accelerator as it
arrives, and a FIFO of ``tags`` entries (default 8) keeps one tag per frame for the reply side,
so up to ``tags`` requests can be outstanding.

Components: :class:`HostLinkCore` (byte streams <-> accelerator streams, the protocol) and
:class:`HostLink` (an accelerator, a :class:`~bitfab.hw.shell.uart.UartRx`/
:class:`~bitfab.hw.shell.uart.UartTx` pair and the core; serial pins ``rx``/``tx``).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from bitfab.errors import BitfabError
from bitfab.hw.shell.protocol import (
    BAD_CHECKSUM,
    BAD_COMMAND,
    BAD_LENGTH,
    BAD_MAGIC,
    CMD_CLASSIFY,
    CMD_LOAD,
    CMD_PING,
    CMD_VECTOR,
    CRC,
    FLAG_LOADABLE,
    FRAMING,
    LOADER_BUSY,
    LOADER_SHIFT,
    MAGIC,
    MAX_LENGTH,
    NO_CLASS,
    OK,
    OVERRUN,
    REPLY_MAGIC,
    TIMEOUT,
    ping_body,
    word_bytes,
)
from bitfab.hw.shell.uart import UartRx, UartTx


class HostLinkCore(wiring.Component):
    """The protocol engine between UART byte streams and an accelerator's word streams.

    Parameters: ``in_width``/``in_words`` (input word width in bits, words per image),
    ``out_width``/``out_words`` (same for the output), ``class_index`` (the output is a class
    index), ``timeout`` (clock cycles of silence that end a frame), ``tags`` (requests that
    may be outstanding), ``in_fifo`` (input words buffered in front of the accelerator; a word
    that finds it full makes the frame fail with status 7, overrun).

    Ports: ``rx`` (``In(stream.Signature(8))``, received bytes; always ready), ``ferr``
    (``In(1)``, UART framing error pulse), ``tx`` (``Out(stream.Signature(8))``, reply bytes),
    ``acc_i`` (``Out(stream.Signature(in_width))``), ``acc_o`` (``In(stream.Signature(out_width))``),
    ``last_class`` (``Out(8)``, class of the last good reply), ``busy`` (``Out(1)``, a frame or a
    reply is in progress), ``errors`` (``Out(8)``, error replies so far, wrapping).
    """

    def __init__(
        self,
        *,
        in_width: int,
        in_words: int,
        out_width: int,
        out_words: int,
        class_index: bool,
        timeout: int,
        tags: int = 8,
        in_fifo: int = 8,
        load_bytes: int = 0,
    ) -> None:
        #: weight-image bytes of a load request (0: no load command, bad command)
        self.load_bytes = int(load_bytes)
        self.in_fifo = int(in_fifo)
        self.in_width, self.in_words = int(in_width), int(in_words)
        self.out_width, self.out_words = int(out_width), int(out_words)
        self.class_index = bool(class_index)
        self.timeout = int(timeout)
        self.tags = int(tags)
        self.image_bytes = self.in_words * word_bytes(self.in_width)
        self.vector_bytes = self.out_words * word_bytes(self.out_width)
        if self.load_bytes > MAX_LENGTH:
            raise BitfabError(
                f"host link: weight image of {self.load_bytes} bytes does not fit one load "
                "request (16-bit length field); flash it instead"
            )
        if self.image_bytes > MAX_LENGTH or self.vector_bytes > MAX_LENGTH:
            raise BitfabError(
                f"host link: image of {self.image_bytes} bytes or vector of {self.vector_bytes} "
                "bytes does not fit the 16-bit length field; use a smaller input"
            )
        if self.timeout < 2:
            raise BitfabError(f"host link timeout {timeout}: need >= 2 clock cycles")
        ports = {
            "rx": In(stream.Signature(8)),
            "ferr": In(1),
            "tx": Out(stream.Signature(8)),
            "acc_i": Out(stream.Signature(self.in_width)),
            "acc_o": In(stream.Signature(self.out_width)),
            "last_class": Out(8),
            "busy": Out(1),
            "errors": Out(8),
        }
        if self.load_bytes:
            # a load request's payload bytes, a pulse before its first byte, the checker's status
            ports.update(wbytes=Out(stream.Signature(8)), wstart=Out(1), wstatus=In(3))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        ibpw = word_bytes(self.in_width)
        obpw = word_bytes(self.out_width)

        # ---- tag FIFO: {code[3], has_image, vector, ping}, one per frame, in order
        m.submodules.tags = tags = SyncFIFOBuffered(width=7, depth=self.tags)
        # the tag is registered before the FIFO (one cycle later; keeps the byte compare and
        # the parser's decisions off the FIFO's write path)
        tag_code, tag_img, tag_vec, tag_ping = Signal(3), Signal(), Signal(), Signal()
        tag_load = Signal()
        tag_we = Signal()
        m.d.comb += [
            tags.w_data.eq(Cat(tag_code, tag_img, tag_vec, tag_ping, tag_load)),
            tags.w_en.eq(tag_we),
        ]
        m.d.sync += tag_we.eq(0)

        # ---- parser
        b = self.rx.payload
        got = self.rx.valid
        m.d.comb += self.rx.ready.eq(1)
        # CRC of the frame so far: restarted in "idle" (so the magic byte starts it), fed every
        # received byte; in "check" its output is the CRC of every byte before the checksum
        m.submodules.rx_crc = rx_crc = CRC.create()
        crc = rx_crc.crc
        m.d.comb += [rx_crc.data.eq(b), rx_crc.valid.eq(got)]
        cmd = Signal(8)
        len_lo = Signal(8)
        length = Cat(len_lo, b)
        nbytes = Signal(range(self.image_bytes + 1))
        bidx = Signal(range(ibpw))
        word = Signal(ibpw * 8)
        words_sent = Signal(range(self.in_words + 1))
        m.submodules.words = words = SyncFIFOBuffered(width=self.in_width, depth=self.in_fifo)
        lost = Signal()  # a payload word found the input FIFO full
        timer = Signal(range(self.timeout + 1))
        code = Signal(3)
        pad_then_idle = Signal()
        timed_out = Signal()
        push_word = Signal()
        push_data = Signal(self.in_width)
        nbytes_w = Signal(range(max(self.load_bytes, 1) + 1))
        wstart, wbytes_valid = Signal(), Signal()
        if self.load_bytes:
            m.d.comb += [
                self.wstart.eq(wstart),
                self.wbytes.payload.eq(self.rx.payload),
                self.wbytes.valid.eq(wbytes_valid),
            ]

        m.d.comb += [
            self.acc_i.payload.eq(words.r_data),
            self.acc_i.valid.eq(words.r_rdy),
            words.r_en.eq(self.acc_i.ready),
            words.w_data.eq(push_data),
            words.w_en.eq(push_word),
        ]
        with m.If(push_word):
            with m.If(words.w_rdy):
                m.d.sync += words_sent.eq(words_sent + 1)
            with m.Else():
                m.d.sync += lost.eq(1)

        with m.If(got):
            m.d.sync += timer.eq(0)
        with m.Elif(timer != self.timeout):
            m.d.sync += timer.eq(timer + 1)
        # registered: high exactly when timer == timeout (keeps the wide compare off the
        # FSM's path)
        m.d.sync += timed_out.eq(~got & (timer >= self.timeout - 1))

        def push_tag(code_v, img=0, vec=0, ping=0, load=0):
            m.d.sync += [
                tag_we.eq(1),
                tag_code.eq(code_v),
                tag_img.eq(img),
                tag_vec.eq(vec),
                tag_ping.eq(ping),
                tag_load.eq(load),
            ]

        def fail_early(code_v, then="discard"):
            push_tag(code_v)
            m.next = then

        def fail_payload(code_v, idle):
            m.d.sync += [code.eq(code_v), pad_then_idle.eq(idle)]
            m.next = "pad"

        with m.FSM(name="parser") as parser:
            with m.State("idle"):
                m.d.sync += [timer.eq(0), timed_out.eq(0)]
                with m.If(self.ferr):
                    fail_early(FRAMING)
                with m.Elif(got):
                    with m.If(b == MAGIC):
                        m.next = "cmd"
                    with m.Else():
                        fail_early(BAD_MAGIC)
            with m.State("cmd"):
                with m.If(self.ferr):
                    fail_early(FRAMING)
                with m.Elif(got):
                    m.d.sync += cmd.eq(b)
                    known = (b == CMD_CLASSIFY) | (b == CMD_VECTOR) | (b == CMD_PING)
                    if self.load_bytes:
                        known = known | (b == CMD_LOAD)
                    with m.If(known):
                        m.next = "len0"
                    with m.Else():
                        fail_early(BAD_COMMAND)
                with m.Elif(timed_out):
                    fail_early(TIMEOUT, "idle")
            with m.State("len0"):
                with m.If(self.ferr):
                    fail_early(FRAMING)
                with m.Elif(got):
                    m.d.sync += len_lo.eq(b)
                    m.next = "len1"
                with m.Elif(timed_out):
                    fail_early(TIMEOUT, "idle")
            with m.State("len1"):
                with m.If(self.ferr):
                    fail_early(FRAMING)
                with m.Elif(got):
                    with m.If(cmd == CMD_PING):
                        with m.If(length == 0):
                            m.next = "check"
                        with m.Else():
                            fail_early(BAD_LENGTH)
                    with m.Elif(cmd == CMD_LOAD):
                        with m.If(length == self.load_bytes):
                            m.d.sync += nbytes_w.eq(0)
                            m.d.comb += wstart.eq(1)
                            m.next = "load"
                        with m.Else():
                            fail_early(BAD_LENGTH)
                    with m.Elif(length == self.image_bytes):
                        m.d.sync += [nbytes.eq(0), bidx.eq(0), words_sent.eq(0), lost.eq(0)]
                        m.next = "payload"
                    with m.Else():
                        fail_early(BAD_LENGTH)
                with m.Elif(timed_out):
                    fail_early(TIMEOUT, "idle")
            with m.State("payload"):
                with m.If(self.ferr):
                    fail_payload(FRAMING, 0)
                with m.Elif(got):
                    full = Cat(word[8:], b)
                    m.d.sync += [
                        word.eq(full),
                        nbytes.eq(nbytes + 1),
                        bidx.eq(Mux(bidx == ibpw - 1, 0, bidx + 1)),
                    ]
                    with m.If(bidx == ibpw - 1):
                        m.d.comb += [push_word.eq(1), push_data.eq(full[: self.in_width])]
                    with m.If(nbytes == self.image_bytes - 1):
                        with m.If(lost | (push_word & ~words.w_rdy)):
                            fail_payload(OVERRUN, 0)
                        with m.Else():
                            m.next = "check"
                with m.Elif(timed_out):
                    fail_payload(TIMEOUT, 1)
            with m.State("load"):
                # weight-image bytes straight to the checker (it takes one per clock while
                # SPRAM takes the words: faster than any UART)
                with m.If(self.ferr):
                    fail_early(FRAMING)
                with m.Elif(got):
                    m.d.comb += [wbytes_valid.eq(1)]
                    m.d.sync += nbytes_w.eq(nbytes_w + 1)
                    with m.If(nbytes_w == max(self.load_bytes, 1) - 1):
                        m.next = "check"
                with m.Elif(timed_out):
                    fail_early(TIMEOUT, "idle")
            with m.State("check"):
                is_img = (cmd != CMD_PING) & (cmd != CMD_LOAD)
                with m.If(self.ferr):
                    push_tag(FRAMING, img=is_img)
                    m.next = "discard"
                with m.Elif(got):
                    ok = b == crc
                    push_tag(
                        Mux(ok, OK, BAD_CHECKSUM),
                        img=is_img,
                        vec=cmd == CMD_VECTOR,
                        ping=cmd == CMD_PING,
                        load=cmd == CMD_LOAD,
                    )
                    m.next = "idle"
                with m.Elif(timed_out):
                    push_tag(TIMEOUT, img=is_img)
                    m.next = "idle"
            with m.State("pad"):
                # zero words until the accelerator has the whole image, then the error tag
                with m.If(words_sent == self.in_words):
                    push_tag(code, img=1)
                    with m.If(pad_then_idle):
                        m.next = "idle"
                    with m.Else():
                        m.next = "discard"
                with m.Elif(words.w_rdy):
                    m.d.comb += [push_word.eq(1), push_data.eq(0)]
            with m.State("discard"):
                with m.If(timed_out):
                    m.next = "idle"
        m.d.comb += rx_crc.start.eq(parser.ongoing("idle"))

        # ---- reply engine
        r_code = Signal(3)
        r_img, r_vec, r_ping, r_load = Signal(), Signal(), Signal(), Signal()
        cls = Signal(8)
        cnt = Signal(range(max(self.out_words, 5) + 1))
        oidx = Signal(range(obpw))
        sent = Signal()
        m.d.comb += sent.eq(self.tx.valid & self.tx.ready)
        # CRC of the reply so far: restarted in "idle", fed every byte sent
        m.submodules.tx_crc = tx_crc = CRC.create()
        crc_tx = tx_crc.crc
        m.d.comb += [tx_crc.data.eq(self.tx.payload), tx_crc.valid.eq(sent)]
        ping_bytes = list(ping_body(self.image_bytes, self.vector_bytes, self.class_index))
        out_padded = Signal(obpw * 8)
        m.d.comb += out_padded.eq(self.acc_o.payload)

        with m.FSM(name="reply") as reply:
            with m.State("idle"):
                m.d.sync += [cnt.eq(0), oidx.eq(0)]
                with m.If(tags.r_rdy):
                    m.d.comb += tags.r_en.eq(1)
                    d = tags.r_data
                    m.d.sync += [r_code.eq(d[0:3]), r_img.eq(d[3]), r_vec.eq(d[4]), r_ping.eq(d[5]),
                                 r_load.eq(d[6])]  # fmt: skip
                    with m.If(d[3] & (d[0:3] != OK)):
                        m.next = "drain"
                    with m.Elif(d[3]):
                        m.next = "wait"
                    with m.Elif(d[6] & (d[0:3] == OK)):
                        m.next = "loaded"
                    with m.Else():
                        m.next = "magic"
            with m.State("loaded"):
                # a load request: reply with the checker's verdict once it has one
                if self.load_bytes:
                    with m.If(self.wstatus != LOADER_BUSY):
                        m.d.sync += cls.eq(self.wstatus)
                        m.next = "magic"
                else:
                    m.next = "magic"
            with m.State("drain"):  # drop the output words (errored image, or class latched)
                m.d.comb += self.acc_o.ready.eq(1)
                with m.If(self.acc_o.valid):
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == self.out_words - 1):
                        m.d.sync += cnt.eq(0)
                        m.next = "magic"
            with m.State("wait"):
                # latch the class; a classify reply drains the output words at once (so the
                # accelerator never waits for the UART), a vector reply streams them later
                with m.If(self.acc_o.valid):
                    c = self.acc_o.payload[:8] if self.class_index else Const(NO_CLASS, 8)
                    m.d.sync += [cls.eq(c), self.last_class.eq(c)]
                    with m.If(r_vec):
                        m.next = "magic"
                    with m.Else():
                        m.next = "drain"
            with m.State("magic"):
                m.d.comb += [self.tx.payload.eq(REPLY_MAGIC), self.tx.valid.eq(1)]
                with m.If(sent):
                    m.next = "status"
            with m.State("status"):
                m.d.comb += [self.tx.payload.eq(r_code), self.tx.valid.eq(1)]
                with m.If(sent):
                    with m.If(r_code != OK):
                        m.d.sync += self.errors.eq(self.errors + 1)
                        m.next = "crc"
                    with m.Elif(r_ping):
                        m.next = "ping"
                    with m.Else():
                        m.next = "class"
            with m.State("ping"):
                with m.Switch(cnt):
                    for k, v in enumerate(ping_bytes):
                        with m.Case(k):
                            if k == len(ping_bytes) - 1 and self.load_bytes:
                                # flags: loadable weights and the loader's status now
                                m.d.comb += self.tx.payload.eq(
                                    v | FLAG_LOADABLE | (self.wstatus << LOADER_SHIFT)
                                )
                            else:
                                m.d.comb += self.tx.payload.eq(v)
                m.d.comb += self.tx.valid.eq(1)
                with m.If(sent):
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == len(ping_bytes) - 1):
                        m.next = "crc"
            with m.State("class"):
                m.d.comb += [self.tx.payload.eq(cls), self.tx.valid.eq(1)]
                with m.If(sent):
                    with m.If(r_vec):
                        m.next = "vector"
                    with m.Else():
                        m.next = "crc"
            with m.State("vector"):
                m.d.comb += [
                    self.tx.payload.eq(out_padded.word_select(oidx, 8)),
                    self.tx.valid.eq(self.acc_o.valid),
                ]
                last_byte = oidx == obpw - 1
                m.d.comb += self.acc_o.ready.eq(self.tx.ready & last_byte)
                with m.If(sent):
                    m.d.sync += oidx.eq(Mux(last_byte, 0, oidx + 1))
                    with m.If(last_byte):
                        m.d.sync += cnt.eq(cnt + 1)
                        with m.If(cnt == self.out_words - 1):
                            m.next = "crc"
            with m.State("crc"):
                m.d.comb += [self.tx.payload.eq(crc_tx), self.tx.valid.eq(1)]
                with m.If(sent):
                    m.next = "idle"
        m.d.comb += tx_crc.start.eq(reply.ongoing("idle"))

        m.d.comb += self.busy.eq(
            ~parser.ongoing("idle")
            | tags.w_en
            | (tags.level != 0)
            | ~reply.ongoing("idle")
            | (words.level != 0)
        )
        return m


class HostLink(wiring.Component):
    """An accelerator behind a UART host link (protocol: :mod:`bitfab.hw.shell.protocol`).

    ``accelerator``: a component with streams ``i`` and ``o`` (e.g. :class:`bitfab.hw.
    accelerator.Accelerator`; its ``graph`` gives words per image and the output meaning,
    otherwise pass ``in_words``, ``out_words`` and ``class_index``). ``divisor``: clock cycles
    per UART bit. ``timeout``: clock cycles of silence that end a frame (default 64 byte
    times, ``640 * divisor``). ``tags``: requests that may be outstanding.

    Ports: ``rx`` (``In(1)``, serial line from the host), ``tx`` (``Out(1)``, to the host),
    ``last_class`` (``Out(8)``, class of the last good reply, for LEDs), ``busy``
    (``Out(1)``; also while the weights of a booting or loading accelerator come in),
    ``errors`` (``Out(8)``, error replies so far).
    """

    def __init__(
        self,
        accelerator: wiring.Component,
        *,
        divisor: int,
        timeout: int | None = None,
        in_words: int | None = None,
        out_words: int | None = None,
        class_index: bool | None = None,
        tags: int = 8,
    ) -> None:
        self.accelerator = accelerator
        graph = getattr(accelerator, "graph", None)
        if graph is not None:
            in_words = graph.input_fmt.words if in_words is None else in_words
            out_words = graph.output_fmt.words if out_words is None else out_words
            if class_index is None:
                class_index = graph.output_meaning == "class index"
        if in_words is None or out_words is None or class_index is None:
            raise BitfabError(
                "HostLink: the accelerator has no graph; pass in_words, out_words and class_index"
            )
        self.rx_uart = UartRx(divisor)
        self.tx_uart = UartTx(divisor)
        self.divisor = self.rx_uart.divisor
        self.timeout = int(timeout) if timeout is not None else 640 * self.divisor
        #: an accelerator whose weights the host may load (bitfab.hw.shell.flash_boot.FlashBoot)
        self.loads = "hbytes" in accelerator.signature.members
        self.core = HostLinkCore(
            load_bytes=accelerator.image_bytes if self.loads else 0,
            in_width=Shape.cast(accelerator.i.payload.shape()).width,
            in_words=in_words,
            out_width=Shape.cast(accelerator.o.payload.shape()).width,
            out_words=out_words,
            class_index=class_index,
            timeout=self.timeout,
            tags=tags,
        )
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "last_class": Out(8),
                "busy": Out(1),
                "errors": Out(8),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.submodules.acc = acc = self.accelerator
        m.submodules.uart_rx = rx = self.rx_uart
        m.submodules.uart_tx = tx = self.tx_uart
        m.submodules.core = core = self.core
        wiring.connect(m, rx.o, core.rx)
        wiring.connect(m, core.tx, tx.i)
        wiring.connect(m, core.acc_i, acc.i)
        wiring.connect(m, acc.o, core.acc_o)
        loading = Const(0)
        if self.loads:
            wiring.connect(m, core.wbytes, acc.hbytes)
            m.d.comb += [acc.hstart.eq(core.wstart), core.wstatus.eq(acc.status)]
            # the boot loader (or a load) at work counts as busy: the simulated board's clock
            # keeps running until the weights are in
            loading = acc.status == LOADER_BUSY
        m.d.comb += [
            rx.rx.eq(self.rx),
            self.tx.eq(tx.tx),
            core.ferr.eq(rx.ferr),
            self.last_class.eq(core.last_class),
            self.errors.eq(core.errors),
            self.busy.eq(core.busy | rx.busy | tx.busy | loading),
        ]
        return m
