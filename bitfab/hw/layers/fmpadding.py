"""FINN ``FMPadding`` as a streaming Amaranth component: zero padding around NHWC images.

FINN semantics (``FMPadding.execute_node``): ``np.pad`` of the ``[H, W]`` axes with
``Padding = [top, left, bottom, right]`` zeros (FINN's hlslib always pads with 0, so the data
type must allow 0: bipolar is refused).

Streams: NHWC pixels, each pixel as ``NumChannels/SIMD`` words of ``SIMD`` lanes (lane 0 in the
LSBs). The output is the padded image in the same order; padding words are all-zero lanes and
take no input. One output word per cycle.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr
from bitfab.hw.types import check_divides, check_kind_bits, check_positive, finn_kind_bits


def _pair(name: str, value) -> list[int]:
    vals = [value, value] if isinstance(value, int) else list(value)
    if len(vals) != 2:
        raise ValueError(f"{name} must be [H, W], got {value!r}")
    return [check_positive(name, int(v)) for v in vals]


class FMPadding(wiring.Component):
    """FINN FMPadding.

    Parameters (FINN names): ImgDim ``[H, W]``, Padding ``[top, left, bottom, right]`` (>= 0),
    NumChannels, SIMD (divides NumChannels), input_kind/input_bits (``inputDataType``, signed or
    unsigned, 1..8 bits), numInputVectors (images per run; only affects the cycle count).
    Ports: ``i``, ``o``: ``SIMD*input_bits`` bits per word.
    """

    def __init__(
        self,
        *,
        ImgDim: Sequence[int] | int,
        Padding: Sequence[int],
        NumChannels: int,
        SIMD: int = 1,
        input_kind: str,
        input_bits: int,
        numInputVectors: int = 1,
    ) -> None:
        self.ImgDim = _pair("ImgDim", ImgDim)
        pad = list(Padding)
        if len(pad) != 4 or any(int(p) < 0 for p in pad):
            raise ValueError(f"Padding must be [top, left, bottom, right] >= 0, got {Padding!r}")
        self.Padding = [int(p) for p in pad]
        self.NumChannels = check_positive("NumChannels", NumChannels)
        self.SIMD = check_positive("SIMD", SIMD)
        check_divides("SIMD", self.SIMD, "NumChannels", self.NumChannels)
        if input_kind == "bipolar":
            raise ValueError("input_kind: FMPadding pads with 0, which bipolar data cannot hold")
        self.input_kind = input_kind
        self.input_bits = check_kind_bits("input_bits", input_kind, input_bits)
        self.numInputVectors = check_positive("numInputVectors", numInputVectors)
        h, w = self.ImgDim
        t, left, b, r = self.Padding
        self.OutDim = [h + t + b, w + left + r]
        width = self.SIMD * self.input_bits
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(width))),
                "o": Out(stream.Signature(unsigned(width))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> FMPadding:
        """Build from a FINN ``FMPadding`` node's attributes."""
        ik, ib = finn_kind_bits(finn_attr(attrs, "inputDataType"))
        return cls(
            ImgDim=finn_attr(attrs, "ImgDim"),
            Padding=finn_attr(attrs, "Padding"),
            NumChannels=finn_attr(attrs, "NumChannels"),
            SIMD=finn_attr(attrs, "SIMD", 1),
            input_kind=ik,
            input_bits=ib,
            numInputVectors=finn_attr(attrs, "numInputVectors", 1),
        )

    def cycles_per_image(self) -> int:
        """FINN ``get_exp_cycles``: ``NumChannels/SIMD * numInputVectors * OH * OW``."""
        oh, ow = self.OutDim
        return self.NumChannels // self.SIMD * self.numInputVectors * oh * ow

    def elaborate(self, platform):
        m = Module()
        oh, ow = self.OutDim
        t, left, _, _ = self.Padding
        h, w = self.ImgDim
        cf_n = self.NumChannels // self.SIMD
        y = Signal(range(oh))
        x = Signal(range(ow))
        cf = Signal(range(cf_n))
        inside = Signal()
        m.d.comb += inside.eq((y >= t) & (y < t + h) & (x >= left) & (x < left + w))

        o_valid = Signal()
        space = Signal()
        fire = Signal()  # the current output position is produced this cycle
        m.d.comb += [
            self.o.valid.eq(o_valid),
            space.eq(~o_valid | self.o.ready),
            self.i.ready.eq(space & inside),
            fire.eq(space & (~inside | self.i.valid)),
        ]
        with m.If(fire):
            m.d.sync += o_valid.eq(1)
            with m.If(inside):
                m.d.sync += self.o.payload.eq(self.i.payload)
            with m.Else():
                m.d.sync += self.o.payload.eq(0)
            with m.If(cf == cf_n - 1):
                m.d.sync += cf.eq(0)
                with m.If(x == ow - 1):
                    m.d.sync += x.eq(0)
                    with m.If(y == oh - 1):
                        m.d.sync += y.eq(0)
                    with m.Else():
                        m.d.sync += y.eq(y + 1)
                with m.Else():
                    m.d.sync += x.eq(x + 1)
            with m.Else():
                m.d.sync += cf.eq(cf + 1)
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)
        return m
