"""FINN ``Pool`` with ``Function="MaxPool"`` or ``"QuantAvgPool"`` as a streaming Amaranth
component.

FINN's ``InferPool`` lowers a max pool to ``ConvolutionInputGenerator(depthwise=1)`` followed by
``Pool``. The hardware stream between them is in the depthwise sliding-window order (FINN
``pool.py``: ``(1, OFMDim, OFMDim, Channels/PE, K, K, PE)``): for every output pixel, for every
channel fold ``cf``, the ``KH*KW`` window positions, each a word of ``PE`` lanes (channels
``cf*PE .. cf*PE+PE-1``, lane 0 in the LSBs). The output is, per output pixel and channel fold,
one word with the lane-wise maximum over those ``KH*KW`` words (NHWC order). With
``PE == Channels`` this is exactly FINN's Python ``execute_node`` (max over ``[K*K, C]``).

Bipolar lanes compare as bits (bit 1 = +1 > -1 = bit 0).

``QuantAvgPool`` (FINN's average pool of Brevitas ``TruncAvgPool2d``, from ``QuantAvgPool2d``):
the lane-wise **sum** over the window, arithmetically shifted right by FINN's
``shift = max(0, bit_length((2**ibits - 1) * KH*KW) - obits)`` (floor), in ``OutputDataType``
(``obits``; signed or unsigned like the input, not bipolar). FINN ``Pool.execute_node``
computes exactly that.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr, lane
from bitfab.hw.types import check_divides, check_kind_bits, check_positive, finn_kind_bits

#: the pool functions the hardware builds
FUNCTIONS = ("MaxPool", "QuantAvgPool")


def avg_shift(input_bits: int, kk: int, output_bits: int) -> int:
    """FINN QuantAvgPool's right shift of the window sum (``Pool.execute_node``)."""
    return max(0, int((2**input_bits - 1) * kk).bit_length() - output_bits)


class Pool(wiring.Component):
    """FINN Pool (MaxPool or QuantAvgPool).

    Parameters (FINN names): Channels, PE (divides Channels), KernelSize ``[KH, KW]``,
    OutImgDims ``[OH, OW]``, BatchSize, Function (:data:`FUNCTIONS`), input_kind/input_bits
    (``InputDataType``), output_kind/output_bits (``OutputDataType``; MaxPool: the input's).
    Ports: ``i``: ``PE*input_bits`` bits per word, ``o``: ``PE*output_bits``.
    """

    def __init__(
        self,
        *,
        Channels: int,
        PE: int,
        KernelSize: Sequence[int] | int,
        OutImgDims: Sequence[int] | int,
        input_kind: str,
        input_bits: int,
        Function: str = "MaxPool",
        BatchSize: int = 1,
        output_kind: str | None = None,
        output_bits: int | None = None,
    ) -> None:
        if Function not in FUNCTIONS:
            raise ValueError(
                f"Function: one of {', '.join(FUNCTIONS)} is supported, got {Function!r}"
            )
        self.Function = Function
        self.Channels = check_positive("Channels", Channels)
        self.PE = check_positive("PE", PE)
        check_divides("PE", self.PE, "Channels", self.Channels)
        k = [KernelSize, KernelSize] if isinstance(KernelSize, int) else list(KernelSize)
        od = [OutImgDims, OutImgDims] if isinstance(OutImgDims, int) else list(OutImgDims)
        if len(k) != 2 or len(od) != 2:
            raise ValueError("KernelSize and OutImgDims must be [H, W]")
        self.KernelSize = [check_positive("KernelSize", int(v)) for v in k]
        self.OutImgDims = [check_positive("OutImgDims", int(v)) for v in od]
        self.BatchSize = check_positive("BatchSize", BatchSize)
        self.input_kind = input_kind
        self.input_bits = check_kind_bits("input_bits", input_kind, input_bits)
        self.output_kind = input_kind if output_kind is None else output_kind
        ob = self.input_bits if output_bits is None else output_bits
        self.output_bits = check_kind_bits("output_bits", self.output_kind, ob)
        kk = int(np.prod(self.KernelSize))
        if Function == "MaxPool" and (self.output_kind, self.output_bits) != (
            input_kind,
            self.input_bits,
        ):
            raise ValueError("MaxPool: the output data type must be the input's")
        if Function == "QuantAvgPool":
            if "bipolar" in (input_kind, self.output_kind):
                raise ValueError("QuantAvgPool: bipolar data cannot be averaged")
            if input_kind != self.output_kind:
                raise ValueError("QuantAvgPool: can't mix signed and unsigned input/output")
        #: QuantAvgPool: right shift of the window sum; accumulator bits per lane
        self.shift = avg_shift(self.input_bits, kk, self.output_bits)
        self.acc_bits = int((2**self.input_bits - 1) * kk).bit_length() + int(
            input_kind == "signed"
        )
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(self.PE * self.input_bits))),
                "o": Out(stream.Signature(unsigned(self.PE * self.output_bits))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> Pool:
        """Build from a FINN ``Pool`` node's attributes."""
        ik, ib = finn_kind_bits(finn_attr(attrs, "InputDataType"))
        odt = finn_attr(attrs, "OutputDataType") if "OutputDataType" in attrs else None
        ok, ob = finn_kind_bits(odt) if odt else (ik, ib)
        return cls(
            Channels=finn_attr(attrs, "Channels"),
            PE=finn_attr(attrs, "PE", 1),
            KernelSize=finn_attr(attrs, "KernelSize"),
            OutImgDims=finn_attr(attrs, "OutImgDims"),
            Function=finn_attr(attrs, "Function"),
            BatchSize=finn_attr(attrs, "BatchSize", 1),
            input_kind=ik,
            input_bits=ib,
            output_kind=ok,
            output_bits=ob,
        )

    def cycles_per_image(self) -> int:
        """FINN ``get_exp_cycles``: ``Channels*KH*KW/PE * OH*OW * BatchSize``."""
        kk = int(np.prod(self.KernelSize))
        return self.Channels * kk // self.PE * int(np.prod(self.OutImgDims)) * self.BatchSize

    def elaborate(self, platform):
        m = Module()
        kk = int(np.prod(self.KernelSize))
        bits = self.input_bits
        kind = "unsigned" if self.input_kind == "bipolar" else self.input_kind
        avg = self.Function == "QuantAvgPool"
        ab = self.acc_bits if avg else bits  # per-lane running sum or maximum
        k = Signal(range(kk))
        acc = Signal(self.PE * ab)  # running maximum (or sum) of the current window
        o_valid = Signal()
        take = Signal()
        m.d.comb += [
            self.o.valid.eq(o_valid),
            # the last word of a window needs room in the output register
            self.i.ready.eq((k != kk - 1) | ~o_valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
        ]
        new, result = [], []
        for p in range(self.PE):
            x = lane(self.i.payload, p, bits, kind)
            a = lane(acc, p, ab, kind)
            if avg:
                v = Mux(k == 0, x, a + x)[:ab]
                v = v.as_signed() if kind == "signed" else v
                shape = signed if kind == "signed" else unsigned
                r = Signal(shape(self.output_bits), name=f"avg{p}")
                m.d.comb += r.eq(v >> self.shift)  # arithmetic shift (floor), then extended
                result.append(r[: self.output_bits])
            else:
                v = Mux((k == 0) | (x > a), x, a)[:bits]
                result.append(v)
            new.append(v[:ab])
        merged = Signal(self.PE * ab)
        out = Signal(self.PE * self.output_bits)
        m.d.comb += [merged.eq(Cat(*new)), out.eq(Cat(*result))]
        with m.If(take):
            with m.If(k == kk - 1):
                m.d.sync += [k.eq(0), self.o.payload.eq(out), o_valid.eq(1)]
            with m.Else():
                m.d.sync += [k.eq(k + 1), acc.eq(merged)]
        with m.If(o_valid & self.o.ready & ~(take & (k == kk - 1))):
            m.d.sync += o_valid.eq(0)
        return m
