"""FINN ``ConvolutionInputGenerator`` (sliding window generator, SWG) in Amaranth.

Semantics (FINN ``execute_node`` = qonnx ``Im2Col``, no padding: FINN emits padding as a
separate ``FMPadding`` node): input one NHWC image ``[H, W, C]`` per run, each pixel as
``C/SIMD`` words of ``SIMD`` channels (lane 0 in the LSBs). Output, for every output pixel
``(oy, ox)`` in raster order, the window elements at input pixel
``(oy*Sh + ky*Dh, ox*Sw + kx*Dw)``:

* ``depthwise=0`` (conv lowering, Im2Col order ``(ky, kx, c)``): for ky, for kx, for channel
  fold cf: one word of SIMD channels.
* ``depthwise=1`` (before ``Pool`` and depthwise convs, FINN's HW layout
  ``(OH, OW, C/SIMD, KH, KW, SIMD)``): for cf, for ky, for kx: one word.

Both orders coincide when ``SIMD == C``.

Hardware: a line buffer in one ``lib.memory.Memory`` of ``R = (KH-1)*Dh + 1 + Sh`` image rows
(capped at H), written in raster order as a ring; a window word is read once it has been
written, and a row slot is overwritten only once the current output row no longer needs it,
so the writer fills the next rows while the current output row is emitted. One word per cycle
on each side; images are processed one after the other.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr
from bitfab.hw.types import check_divides, check_kind_bits, check_positive, finn_kind_bits


def _pair(name: str, value, minimum: int = 1) -> list[int]:
    vals = [value, value] if isinstance(value, int) else [int(v) for v in value]
    if len(vals) != 2 or any(v < minimum for v in vals):
        raise ValueError(f"{name} must be [H, W] of integers >= {minimum}, got {value!r}")
    return vals


def conv_output_dim(ifm: int, k: int, stride: int, dilation: int) -> int:
    """Output size of an unpadded convolution (qonnx ``compute_conv_output_dim``)."""
    return (ifm - dilation * (k - 1) - 1) // stride + 1


def _set_geometry(
    unit,
    *,
    ConvKernelDim,
    IFMChannels,
    IFMDim,
    SIMD,
    input_kind,
    input_bits,
    OFMDim,
    Stride,
    Dilation,
    depthwise,
) -> None:
    """Check the FINN parameters shared by both sliding windows and set them on ``unit``
    (``ConvKernelDim``, ``IFMDim``, ``OFMDim``, ``Stride``, ``Dilation`` as ``[H, W]`` lists)."""
    unit.ConvKernelDim = _pair("ConvKernelDim", ConvKernelDim)
    unit.IFMDim = _pair("IFMDim", IFMDim)
    unit.Stride = _pair("Stride", Stride)
    unit.Dilation = _pair("Dilation", Dilation)
    unit.IFMChannels = check_positive("IFMChannels", IFMChannels)
    unit.SIMD = check_positive("SIMD", SIMD)
    check_divides("SIMD", unit.SIMD, "IFMChannels", unit.IFMChannels)
    if depthwise not in (0, 1):
        raise ValueError(f"depthwise must be 0 or 1, got {depthwise!r}")
    unit.depthwise = int(depthwise)
    unit.input_kind = input_kind
    unit.input_bits = check_kind_bits("input_bits", input_kind, input_bits)
    ofm = []
    for ax, name in enumerate("HW"):
        k, d, s, i = (unit.ConvKernelDim[ax], unit.Dilation[ax], unit.Stride[ax], unit.IFMDim[ax])
        if d * (k - 1) + 1 > i:
            raise ValueError(
                f"ConvKernelDim: dilated kernel {d * (k - 1) + 1} exceeds IFMDim {i} ({name})"
            )
        ofm.append(conv_output_dim(i, k, s, d))
    if OFMDim is not None and _pair("OFMDim", OFMDim) != ofm:
        raise ValueError(f"OFMDim {list(OFMDim)} does not match the computed {ofm}")
    unit.OFMDim = ofm


class SlidingWindow(wiring.Component):
    """FINN ConvolutionInputGenerator (``parallel_window=0``).

    Parameters (FINN names): ConvKernelDim ``[KH, KW]``, IFMChannels, IFMDim ``[H, W]``,
    OFMDim ``[OH, OW]`` (checked; computed when omitted), SIMD (divides IFMChannels),
    Stride ``[Sh, Sw]``, Dilation ``[Dh, Dw]``, depthwise (0/1), input_kind/input_bits
    (``inputDataType`` = ``outputDataType``, 1..8 bits).
    Ports: ``i``, ``o``: ``SIMD*input_bits`` bits per word.
    """

    def __init__(
        self,
        *,
        ConvKernelDim: Sequence[int] | int,
        IFMChannels: int,
        IFMDim: Sequence[int] | int,
        SIMD: int,
        input_kind: str,
        input_bits: int,
        OFMDim: Sequence[int] | int | None = None,
        Stride: Sequence[int] | int = (1, 1),
        Dilation: Sequence[int] | int = (1, 1),
        depthwise: int = 0,
    ) -> None:
        _set_geometry(
            self,
            ConvKernelDim=ConvKernelDim,
            IFMChannels=IFMChannels,
            IFMDim=IFMDim,
            SIMD=SIMD,
            input_kind=input_kind,
            input_bits=input_bits,
            OFMDim=OFMDim,
            Stride=Stride,
            Dilation=Dilation,
            depthwise=depthwise,
        )
        kh, _ = self.ConvKernelDim
        self.rows = min((kh - 1) * self.Dilation[0] + 1 + self.Stride[0], self.IFMDim[0])
        width = self.SIMD * self.input_bits
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(width))),
                "o": Out(stream.Signature(unsigned(width))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> SlidingWindow | SlidingWindowParallel:
        """Build from a FINN ``ConvolutionInputGenerator`` node's attributes: a
        :class:`SlidingWindowParallel` when ``parallel_window=1`` (which needs
        ``SIMD == IFMChannels``), else a :class:`SlidingWindow`."""
        if int(finn_attr(attrs, "dynamic_mode", 0)):
            raise ValueError("dynamic_mode=1 is not supported")
        parallel = int(finn_attr(attrs, "parallel_window", 0))
        if parallel not in (0, 1):
            raise ValueError(f"parallel_window must be 0 or 1, got {parallel}")
        klass = SlidingWindowParallel if parallel else SlidingWindow
        ik, ib = finn_kind_bits(finn_attr(attrs, "inputDataType"))
        return klass(
            ConvKernelDim=finn_attr(attrs, "ConvKernelDim"),
            IFMChannels=finn_attr(attrs, "IFMChannels"),
            IFMDim=finn_attr(attrs, "IFMDim"),
            OFMDim=finn_attr(attrs, "OFMDim"),
            SIMD=finn_attr(attrs, "SIMD"),
            Stride=finn_attr(attrs, "Stride", [1, 1]),
            Dilation=finn_attr(attrs, "Dilation", [1, 1]),
            depthwise=int(finn_attr(attrs, "depthwise", 0)),
            input_kind=ik,
            input_bits=ib,
        )

    @property
    def buffer_words(self) -> int:
        """Line buffer depth in words of ``SIMD*input_bits`` bits."""
        return self.rows * self.IFMDim[1] * (self.IFMChannels // self.SIMD)

    def cycles_per_image(self) -> int:
        """FINN ``ConvolutionInputGenerator_rtl.get_exp_cycles`` (default implementation)."""
        cf = self.IFMChannels // self.SIMD
        (kh, kw), (h, w), (oh, ow) = self.ConvKernelDim, self.IFMDim, self.OFMDim
        (sh, sw), (dh, dw) = self.Stride, self.Dilation
        if h == 1 or w == 1:  # FINN's 1-D case, normalised to [1, D]
            if w == 1:
                kw, w, ow, sw = kh, h, oh, sh
            if self.depthwise:
                out = ow * kw * cf + (cf - 1) * kw
                inp = w * cf + cf * (kw - 1) * (sw - 1)
                return max(out, inp) + 2
            return ow * kw * cf + 2
        buffer_min = ((kh - 1) * dh * w + (kw - 1) * dw + 1) * cf
        per_row = max(ow * kw * kh * cf, sw * w * cf)
        if self.depthwise:
            per_row += ow * (sw - 1) * (cf - 1)
        cycles = buffer_min + oh * per_row
        if self.depthwise:
            cycles += (sh - 1) * w * cf
        return cycles

    def elaborate(self, platform):
        m = Module()
        (kh, kw), (h, w), (oh, ow) = self.ConvKernelDim, self.IFMDim, self.OFMDim
        (sh, sw), (dh, dw) = self.Stride, self.Dilation
        cfn = self.IFMChannels // self.SIMD
        depth = self.buffer_words
        row_words = w * cfn

        m.submodules.buf = buf = Memory(shape=unsigned(len(self.i.payload)), depth=depth, init=[])
        wr = buf.write_port()
        rd = buf.read_port()

        # ---- writer: raster order into a ring of `depth` words; progress kept as
        # (complete rows `wrows`, words of the current row `wpos`)
        wrows = Signal(range(h + 1))
        wpos = Signal(range(row_words))
        waddr = Signal(range(depth))
        # ---- reader counters and, kept incrementally in registers (adds only):
        #   top  = oy*Sh, iy = oy*Sh + ky*Dh       (input row of the needed word)
        #   in_row = col + kx_off + cf = (ox*Sw + kx*Dw)*CF + cf   (its word within the row)
        #   addr = slot_rw + in_row, slot_rw = ((oy*Sh + ky*Dh) mod R) * W*CF
        oy = Signal(range(oh))
        ox = Signal(range(ow))
        ky = Signal(range(kh))
        kx = Signal(range(kw))
        cf = Signal(range(cfn))
        top = Signal(range(h + 1))
        iy = Signal(range(h + 1))
        col = Signal(range(row_words + 1))
        kx_off = Signal(range(row_words + 1))
        base_rw = Signal(range(depth))  # ((oy*Sh) mod R) * W*CF
        slot_rw = Signal(range(depth))
        rdone = Signal()  # all windows of this image issued
        wdone = Signal()
        m.d.comb += wdone.eq(wrows == h)
        new_image = Signal()
        m.d.comb += new_image.eq(rdone & wdone)

        m.d.comb += [
            # a row slot is refilled only when the current output row no longer needs it
            self.i.ready.eq(~wdone & (rdone | (wrows < top + self.rows))),
            wr.addr.eq(waddr),
            wr.data.eq(self.i.payload),
            wr.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(wr.en):
            m.d.sync += waddr.eq(Mux(waddr == depth - 1, 0, waddr + 1))
            with m.If(wpos == row_words - 1):
                m.d.sync += [wpos.eq(0), wrows.eq(wrows + 1)]
            with m.Else():
                m.d.sync += wpos.eq(wpos + 1)

        in_row = Signal(range(row_words + 1))
        m.d.comb += in_row.eq(col + kx_off + cf)
        written = Signal()  # the needed word is in the buffer
        m.d.comb += written.eq((iy < wrows) | ((iy == wrows) & (in_row < wpos)))
        b_valid = Signal()
        issue = Signal()
        m.d.comb += [
            issue.eq(~rdone & written & (~b_valid | self.o.ready)),
            rd.en.eq(issue),
            rd.addr.eq(slot_rw + in_row),
            self.o.valid.eq(b_valid),
            self.o.payload.eq(rd.data),
        ]
        with m.If(issue):
            m.d.sync += b_valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += b_valid.eq(0)

        def ring_add(value, step: int):
            nv = value + step
            return Mux(nv >= depth, nv - depth, nv)

        # per counter: register updates on increment and on wrap (to 0)
        inc = {
            "cf": [cf.eq(cf + 1)],
            "kx": [kx.eq(kx + 1), kx_off.eq(kx_off + dw * cfn)],
            "ky": [
                ky.eq(ky + 1),
                iy.eq(iy + dh),
                slot_rw.eq(ring_add(slot_rw, dh * row_words)),
            ],
            "ox": [ox.eq(ox + 1), col.eq(col + sw * cfn)],
            "oy": [
                oy.eq(oy + 1),
                top.eq(top + sh),
                iy.eq(top + sh),
                base_rw.eq(ring_add(base_rw, sh * row_words)),
                slot_rw.eq(ring_add(base_rw, sh * row_words)),
            ],
        }
        wrap = {
            "cf": [cf.eq(0)],
            "kx": [kx.eq(0), kx_off.eq(0)],
            "ky": [ky.eq(0), iy.eq(top), slot_rw.eq(base_rw)],
            "ox": [ox.eq(0), col.eq(0)],
            "oy": [oy.eq(0), top.eq(0), iy.eq(0), base_rw.eq(0), slot_rw.eq(0), rdone.eq(1)],
        }
        # counter order: innermost first
        if self.depthwise:
            order = [("kx", kx, kw), ("ky", ky, kh), ("cf", cf, cfn)]
        else:
            order = [("cf", cf, cfn), ("kx", kx, kw), ("ky", ky, kh)]
        order += [("ox", ox, ow), ("oy", oy, oh)]

        def advance(level: int):
            name, sig, n = order[level]
            with m.If(sig == n - 1):
                m.d.sync += wrap[name]
                if level + 1 < len(order):
                    advance(level + 1)  # outer updates come later and win
            with m.Else():
                m.d.sync += inc[name]

        with m.If(issue):
            advance(0)

        with m.If(new_image):
            m.d.sync += [rdone.eq(0), wrows.eq(0), wpos.eq(0), waddr.eq(0)]
        return m


class SlidingWindowParallel(wiring.Component):
    """FINN ConvolutionInputGenerator with ``parallel_window=1``: one whole window per word.

    Parameters as :class:`SlidingWindow`; ``SIMD`` must equal ``IFMChannels`` (then the
    depthwise and Im2Col element orders coincide, so ``depthwise`` changes nothing).
    Ports: ``i``: one pixel per word, ``C*input_bits`` bits (channel 0 in the LSBs);
    ``o``: one window per output pixel ``(oy, ox)`` in raster order, ``KH*KW*C*input_bits``
    bits, elements in Im2Col order ``(ky, kx, c)``, element 0 in the LSBs (FINN's folded
    output shape ``(1, OH, OW, 1, KH*KW*C)``).

    Hardware: a shift register of ``L - 1`` pixels, ``L = (KH-1)*Dh*W + (KW-1)*Dw + 1`` (the
    span from a window's first pixel to its last in raster order). Every accepted pixel
    shifts in; when it is the last (bottom-right) pixel of a window, i.e. it sits at row
    ``(KH-1)*Dh + oy*Sh`` and column ``(KW-1)*Dw + ox*Sw``, the window's ``KH*KW`` taps
    (tap ``(ky, kx)`` is ``(KH-1-ky)*Dh*W + (KW-1-kx)*Dw`` pixels behind it) are latched into
    the output register in the same cycle. One pixel per cycle in, a window one cycle after
    its last pixel; an output stall holds the input (``i.ready = ~o.valid | o.ready``).
    Images follow back to back: the position counters wrap, stale pixels of the previous
    image are never part of an emitted window. Cycles per image: ``H*W``.
    """

    def __init__(
        self,
        *,
        ConvKernelDim: Sequence[int] | int,
        IFMChannels: int,
        IFMDim: Sequence[int] | int,
        SIMD: int,
        input_kind: str,
        input_bits: int,
        OFMDim: Sequence[int] | int | None = None,
        Stride: Sequence[int] | int = (1, 1),
        Dilation: Sequence[int] | int = (1, 1),
        depthwise: int = 0,
    ) -> None:
        _set_geometry(
            self,
            ConvKernelDim=ConvKernelDim,
            IFMChannels=IFMChannels,
            IFMDim=IFMDim,
            SIMD=SIMD,
            input_kind=input_kind,
            input_bits=input_bits,
            OFMDim=OFMDim,
            Stride=Stride,
            Dilation=Dilation,
            depthwise=depthwise,
        )
        if self.SIMD != self.IFMChannels:
            raise ValueError(
                f"parallel_window=1 needs SIMD == IFMChannels (got SIMD={self.SIMD}, "
                f"IFMChannels={self.IFMChannels}); set SIMD={self.IFMChannels} or "
                "parallel_window=0"
            )
        (kh, kw), (_, w) = self.ConvKernelDim, self.IFMDim
        (dh, dw) = self.Dilation
        #: pixels from a window's first to its last in raster order (the line buffer span)
        self.span = (kh - 1) * dh * w + (kw - 1) * dw + 1
        pixel = self.SIMD * self.input_bits
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(pixel))),
                "o": Out(stream.Signature(unsigned(pixel * kh * kw))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> SlidingWindow | SlidingWindowParallel:
        """Same as :meth:`SlidingWindow.from_finn` (dispatches on ``parallel_window``)."""
        return SlidingWindow.from_finn(attrs)

    @property
    def buffer_words(self) -> int:
        """Line buffer depth in pixels of ``SIMD*input_bits`` bits (shift register stages)."""
        return self.span - 1

    def cycles_per_image(self) -> int:
        """Steady-state cycles per image, ``IFMDim_h * IFMDim_w`` (one pixel per cycle; FINN's
        RTL parallel style: ``H*W + 2``, its 2 being pipeline latency)."""
        h, w = self.IFMDim
        return h * w

    def elaborate(self, platform):
        m = Module()
        (kh, kw), (h, w) = self.ConvKernelDim, self.IFMDim
        (sh, sw), (dh, dw) = self.Stride, self.Dilation
        pixel = len(self.i.payload)
        x0, y0 = (kw - 1) * dw, (kh - 1) * dh  # position of the first window's last pixel

        # shift register: sr[j] is the pixel accepted j+1 acceptances ago
        sr = [Signal(pixel, name=f"sr{j}") for j in range(self.span - 1)]
        x = Signal(range(w))  # position of the next input pixel
        y = Signal(range(h))
        x_next = Signal(range(w + sw), init=x0)  # next column that ends a window (in this row)
        y_next = Signal(range(h + sh), init=y0)  # next row that ends windows (in this image)
        o_valid = Signal()
        o_data = Signal(len(self.o.payload))

        take = Signal()
        m.d.comb += [
            self.i.ready.eq(~o_valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(o_valid),
            self.o.payload.eq(o_data),
        ]
        # window taps after this shift: index 0 is the incoming pixel, j > 0 is sr[j-1]
        after = [self.i.payload, *sr]
        taps = [
            after[(kh - 1 - ky) * dh * w + (kw - 1 - kx) * dw]
            for ky in range(kh)
            for kx in range(kw)
        ]
        ends_window = Signal()
        m.d.comb += ends_window.eq((x == x_next) & (y == y_next))

        with m.If(take):
            m.d.sync += [dst.eq(src) for dst, src in zip(sr, after[:-1], strict=True)]
            # raster position and the next window-ending column/row
            with m.If(x == w - 1):
                m.d.sync += [x.eq(0), x_next.eq(x0)]
                with m.If(y == h - 1):
                    m.d.sync += [y.eq(0), y_next.eq(y0)]
                with m.Else():
                    m.d.sync += y.eq(y + 1)
                    with m.If(y == y_next):
                        m.d.sync += y_next.eq(y_next + sh)
            with m.Else():
                m.d.sync += x.eq(x + 1)
                with m.If(x == x_next):
                    m.d.sync += x_next.eq(x_next + sw)
        with m.If(take & ends_window):
            m.d.sync += [o_valid.eq(1), o_data.eq(Cat(*taps))]
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)
        return m
