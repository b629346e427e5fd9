"""FINN ``Pool`` with ``Function="MaxPool"`` as a streaming Amaranth component.

FINN's ``InferPool`` lowers a max pool to ``ConvolutionInputGenerator(depthwise=1)`` followed by
``Pool``. The hardware stream between them is in the depthwise sliding-window order (FINN
``pool.py``: ``(1, OFMDim, OFMDim, Channels/PE, K, K, PE)``): for every output pixel, for every
channel fold ``cf``, the ``KH*KW`` window positions, each a word of ``PE`` lanes (channels
``cf*PE .. cf*PE+PE-1``, lane 0 in the LSBs). The output is, per output pixel and channel fold,
one word with the lane-wise maximum over those ``KH*KW`` words (NHWC order). With
``PE == Channels`` this is exactly FINN's Python ``execute_node`` (max over ``[K*K, C]``).

Bipolar lanes compare as bits (bit 1 = +1 > -1 = bit 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.layers.thresholding import finn_attr, lane
from bitfab.hw.types import check_divides, check_kind_bits, check_positive, finn_kind_bits


class Pool(wiring.Component):
    """FINN Pool (MaxPool only).

    Parameters (FINN names): Channels, PE (divides Channels), KernelSize ``[KH, KW]``,
    OutImgDims ``[OH, OW]``, BatchSize, Function (must be ``"MaxPool"``),
    input_kind/input_bits (``InputDataType``; ``OutputDataType`` is the same for MaxPool).
    Ports: ``i``, ``o``: ``PE*input_bits`` bits per word.
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
    ) -> None:
        if Function != "MaxPool":
            raise ValueError(f"Function: only 'MaxPool' is supported, got {Function!r}")
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
        width = self.PE * self.input_bits
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(width))),
                "o": Out(stream.Signature(unsigned(width))),
            }
        )

    @classmethod
    def from_finn(cls, attrs) -> Pool:
        """Build from a FINN ``Pool`` node's attributes (``Function`` must be MaxPool)."""
        ik, ib = finn_kind_bits(finn_attr(attrs, "InputDataType"))
        return cls(
            Channels=finn_attr(attrs, "Channels"),
            PE=finn_attr(attrs, "PE", 1),
            KernelSize=finn_attr(attrs, "KernelSize"),
            OutImgDims=finn_attr(attrs, "OutImgDims"),
            Function=finn_attr(attrs, "Function"),
            BatchSize=finn_attr(attrs, "BatchSize", 1),
            input_kind=ik,
            input_bits=ib,
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
        k = Signal(range(kk))
        acc = Signal(self.PE * bits)  # running maximum of the current window
        o_valid = Signal()
        take = Signal()
        m.d.comb += [
            self.o.valid.eq(o_valid),
            # the last word of a window needs room in the output register
            self.i.ready.eq((k != kk - 1) | ~o_valid | self.o.ready),
            take.eq(self.i.valid & self.i.ready),
        ]
        new = []
        for p in range(self.PE):
            x = lane(self.i.payload, p, bits, kind)
            a = lane(acc, p, bits, kind)
            new.append(Mux((k == 0) | (x > a), x, a)[:bits])
        merged = Signal(self.PE * bits)
        m.d.comb += merged.eq(Cat(*new))
        with m.If(take):
            with m.If(k == kk - 1):
                m.d.sync += [k.eq(0), self.o.payload.eq(merged), o_valid.eq(1)]
            with m.Else():
                m.d.sync += [k.eq(k + 1), acc.eq(merged)]
        with m.If(o_valid & self.o.ready & ~(take & (k == kk - 1))):
            m.d.sync += o_valid.eq(0)
        return m
