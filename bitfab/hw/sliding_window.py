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

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitfab.hw.thresholding import (
    check_divides,
    check_kind_bits,
    check_positive,
    finn_attr,
    finn_kind_bits,
)


def _pair(name: str, value, minimum: int = 1) -> list[int]:
    vals = [value, value] if isinstance(value, int) else [int(v) for v in value]
    if len(vals) != 2 or any(v < minimum for v in vals):
        raise ValueError(f"{name} must be [H, W] of integers >= {minimum}, got {value!r}")
    return vals


def conv_output_dim(ifm: int, k: int, stride: int, dilation: int) -> int:
    """Output size of an unpadded convolution (qonnx ``compute_conv_output_dim``)."""
    return (ifm - dilation * (k - 1) - 1) // stride + 1


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
        self.ConvKernelDim = _pair("ConvKernelDim", ConvKernelDim)
        self.IFMDim = _pair("IFMDim", IFMDim)
        self.Stride = _pair("Stride", Stride)
        self.Dilation = _pair("Dilation", Dilation)
        self.IFMChannels = check_positive("IFMChannels", IFMChannels)
        self.SIMD = check_positive("SIMD", SIMD)
        check_divides("SIMD", self.SIMD, "IFMChannels", self.IFMChannels)
        if depthwise not in (0, 1):
            raise ValueError(f"depthwise must be 0 or 1, got {depthwise!r}")
        self.depthwise = int(depthwise)
        self.input_kind = input_kind
        self.input_bits = check_kind_bits("input_bits", input_kind, input_bits)
        ofm = []
        for ax, name in enumerate("HW"):
            k, d, s, i = (
                self.ConvKernelDim[ax],
                self.Dilation[ax],
                self.Stride[ax],
                self.IFMDim[ax],
            )
            if d * (k - 1) + 1 > i:
                raise ValueError(
                    f"ConvKernelDim: dilated kernel {d * (k - 1) + 1} exceeds IFMDim {i} ({name})"
                )
            ofm.append(conv_output_dim(i, k, s, d))
        if OFMDim is not None and _pair("OFMDim", OFMDim) != ofm:
            raise ValueError(f"OFMDim {list(OFMDim)} does not match the computed {ofm}")
        self.OFMDim = ofm
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
    def from_finn(cls, attrs) -> SlidingWindow:
        """Build from a FINN ``ConvolutionInputGenerator`` node's attributes."""
        if int(finn_attr(attrs, "parallel_window", 0)):
            raise ValueError("parallel_window=1 is not supported (use the default 0)")
        if int(finn_attr(attrs, "dynamic_mode", 0)):
            raise ValueError("dynamic_mode=1 is not supported")
        ik, ib = finn_kind_bits(finn_attr(attrs, "inputDataType"))
        return cls(
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
