"""FINN ``Thresholding`` (qonnx ``MultiThreshold``) as a streaming Amaranth component.

Semantics (qonnx ``multithreshold``, FINN ``Thresholding.execute_node``): for every channel ``c``
with sorted thresholds ``T[c, 0..numSteps-1]`` the output is
``count(x >= T[c, s]) + ActVal``. One threshold row (shape ``[1, numSteps]``) is shared by all
channels. A ``BIPOLAR`` output (FINN computes ``2*count - 1``) is the bit ``count`` on the stream
(bit 1 = +1), so ``ActVal`` must be 0 there.

Streams (NHWC, channels last, ``PE`` channels per word, lane 0 in the LSBs, see
:mod:`bitfab.hw.packing`): word ``j`` of a vector carries channels ``j*PE .. j*PE+PE-1``; the
output word has the same channels. One word in, one word out per cycle.

This module also holds the small helpers the other bitfab layers share (kind/width
validation, lane decoding, threshold comparison).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import C, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitfab.hw import packing
from bitfab.hw.types import (
    check_divides,
    check_kind_bits,
    check_positive,
    finn_kind_bits,
    signed_bits_for,
    value_range,
)

# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def finn_attr(attrs, name: str, default=None):
    """Attribute ``name`` of a FINN node given as a mapping (ONNX strings may be bytes)."""
    if name not in attrs:
        if default is None:
            raise ValueError(f"FINN attribute {name} is missing")
        return default
    value = attrs[name]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return value


def n_vectors(num_input_vectors: int | Sequence[int]) -> int:
    """FINN's ``numInputVectors`` (an int or a list of ints) as a vector count."""
    vecs = [num_input_vectors] if np.isscalar(num_input_vectors) else list(num_input_vectors)
    if not vecs or any(int(v) < 1 for v in vecs):
        raise ValueError(f"numInputVectors must be positive integers, got {num_input_vectors!r}")
    return int(np.prod([int(v) for v in vecs]))


def lane(word, index: int, bits: int, kind: str):
    """Amaranth value of lane ``index`` of ``word`` with its kind's meaning (bipolar = -1/+1)."""
    field = word[index * bits : (index + 1) * bits]
    if kind == "bipolar":
        return Mux(field[0], C(1, signed(2)), C(-1, signed(2)))
    if kind == "signed":
        return field.as_signed()
    return field


def count_at_least(x, thresholds: Sequence) -> object:
    """Amaranth value: how many of ``thresholds`` satisfy ``x >= t`` (FINN's ``>=``).

    The comparison bits are summed by a balanced adder tree (depth ``log2(numSteps)``); the
    count does not rely on the thresholds being sorted, exactly as qonnx's ``count_nonzero``.
    """
    return popcount([x >= t for t in thresholds])


def popcount(bits: Sequence) -> object:
    """Amaranth value: the number of set bits among ``bits`` (balanced adder tree)."""
    terms = list(bits) or [C(0, 1)]
    while len(terms) > 1:
        terms = [
            terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
            for k in range(0, len(terms), 2)
        ]
    return terms[0]


def encode_output(count, act_val: int, kind: str, bits: int):
    """``count + act_val`` as a ``bits``-wide lane of ``kind`` (bipolar: the count bit)."""
    if kind == "bipolar":
        return count[0]
    return (count + act_val)[:bits]


def check_thresholds(thresholds, channels: int, name: str = "thresholds") -> tuple[np.ndarray, int]:
    """Validate a threshold matrix ``[channels or 1, steps]`` of integers; return it tiled to
    ``[channels, steps]`` (int64) and its number of steps."""
    thr = np.asarray(thresholds)
    if thr.ndim != 2 or thr.shape[1] < 1:
        raise ValueError(f"{name} must be a 2-D array [channels or 1, numSteps], got {thr.shape}")
    if thr.shape[0] not in (1, channels):
        raise ValueError(f"{name} must have 1 or {channels} rows, got {thr.shape[0]}")
    if not np.all(np.equal(np.round(thr), thr)):
        raise ValueError(f"{name} must be integers (run FINN's RoundAndClipThresholds)")
    thr = np.round(thr).astype(np.int64)
    if thr.shape[0] == 1:
        thr = np.tile(thr, (channels, 1))
    return thr, int(thr.shape[1])


def is_shared(thr: np.ndarray) -> bool:
    """True if every row of the threshold matrix ``thr`` ``[channels, steps]`` is the same
    (one per-tensor threshold row, e.g. FINN's ``[1, numSteps]`` initializer, tiled)."""
    return bool(np.all(thr == thr[:1]))


def threshold_memory_images(thr: np.ndarray, pe: int, tbits: int) -> list[list[int]]:
    """One threshold memory image per PE (FINN's interleave): word ``f`` of PE ``p``'s memory
    holds the thresholds of channel ``f*PE + p``, step ``s`` at lane ``s`` (``tbits`` two's
    complement each)."""
    channels, _ = thr.shape
    return [
        [packing.pack(thr[f * pe + p].tolist(), tbits, "signed") for f in range(channels // pe)]
        for p in range(pe)
    ]


def threshold_read_ports(m: Module, thr: np.ndarray, pe: int, tbits: int, addr, name: str):
    """Add PE threshold memories (``lib.memory.Memory``, one per PE, synchronous read at
    ``addr``) to ``m``; return, per PE, the list of ``numSteps`` signed threshold values."""
    return threshold_memories(m, thr, pe, tbits, addr, name)[0]


def threshold_memories(
    m: Module, thr: np.ndarray, pe: int, tbits: int, addr, name: str, loadable: bool = False
):
    """:func:`threshold_read_ports`, and with ``loadable`` memories without initial content
    and one write port each (filled at run time, e.g. from a weight image); returns
    ``(lanes per PE, write ports)`` (no write ports unless ``loadable``)."""
    steps = thr.shape[1]
    out, writes = [], []
    for p, image in enumerate(threshold_memory_images(thr, pe, tbits)):
        mem = Memory(
            shape=unsigned(steps * tbits), depth=len(image), init=[] if loadable else image
        )
        m.submodules[f"{name}{p}"] = mem
        if loadable:
            writes.append(mem.write_port())
        rd = mem.read_port()
        m.d.comb += rd.addr.eq(addr)
        out.append([lane(rd.data, s, tbits, "signed") for s in range(steps)])
    return out, writes


# --------------------------------------------------------------------------------------------
# component
# --------------------------------------------------------------------------------------------


class Thresholding(wiring.Component):
    """FINN Thresholding: ``out = count(x >= T[c]) + ActVal`` per channel, ``PE`` per word.

    Parameters (FINN attribute names):
      NumChannels, PE (PE divides NumChannels), thresholds ``[NumChannels or 1, numSteps]``
      (integer, sorted ascending per row; one row, or equal rows, = shared by all channels and
      held as constants instead of a threshold memory, as when ``PE == NumChannels``),
      input_kind/input_bits (FINN ``inputDataType``,
      1..8 bits, or up to 32 when fed by an accumulator), output_kind/output_bits
      (``outputDataType``), ActVal (``out_bias``), numInputVectors (e.g. ``[1, H, W]``).

    Ports: ``i``: ``PE*input_bits`` bits per word; ``o``: ``PE*output_bits`` bits per word.
    """

    def __init__(
        self,
        *,
        NumChannels: int,
        PE: int,
        thresholds,
        input_kind: str,
        input_bits: int,
        output_kind: str = "unsigned",
        output_bits: int | None = None,
        ActVal: int = 0,
        numInputVectors: int | Sequence[int] = 1,
    ) -> None:
        self.NumChannels = check_positive("NumChannels", NumChannels)
        self.PE = check_positive("PE", PE)
        check_divides("PE", self.PE, "NumChannels", self.NumChannels)
        self.input_kind = input_kind
        self.input_bits = check_kind_bits("input_bits", input_kind, input_bits, max_bits=32)
        self.thresholds, self.numSteps = check_thresholds(thresholds, self.NumChannels)
        if output_bits is None:
            output_bits = 1 if output_kind == "bipolar" else max(1, self.numSteps.bit_length())
        self.output_kind = output_kind
        self.output_bits = check_kind_bits("output_bits", output_kind, output_bits)
        self.ActVal = int(ActVal)
        if output_kind == "bipolar" and (self.ActVal != 0 or self.numSteps != 1):
            raise ValueError("bipolar output needs ActVal=0 and numSteps=1")
        lo, hi = value_range(output_kind, self.output_bits)
        if output_kind != "bipolar" and not (
            lo <= self.ActVal and self.ActVal + self.numSteps <= hi
        ):
            raise ValueError(
                f"output_bits: ActVal..ActVal+numSteps ({self.ActVal}..{self.ActVal + self.numSteps})"
                f" does not fit a {self.output_bits}-bit {output_kind} output"
            )
        self.numInputVectors = numInputVectors
        self.n_vectors = n_vectors(numInputVectors)
        ilo, ihi = value_range(input_kind, self.input_bits)
        self.tbits = signed_bits_for(
            min(int(self.thresholds.min()), ilo), max(int(self.thresholds.max()), ihi)
        )
        self.TMEM = self.NumChannels // self.PE
        #: thresholds as constants, no memory: one row shared by all channels (a per-tensor
        #: quantizer such as the input binarisation, ``x >= 128`` on every pixel), or one fold
        #: per PE (TMEM == 1: every PE lane always compares against the same row)
        self.const_thresholds = is_shared(self.thresholds) or self.TMEM == 1
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(self.PE * self.input_bits))),
                "o": Out(stream.Signature(unsigned(self.PE * self.output_bits))),
            }
        )

    @classmethod
    def from_finn(cls, attrs, thresholds) -> Thresholding:
        """Build from a FINN ``Thresholding`` node's attributes and threshold initializer."""
        ik, ib = finn_kind_bits(finn_attr(attrs, "inputDataType"))
        ok, ob = finn_kind_bits(finn_attr(attrs, "outputDataType"))
        return cls(
            NumChannels=finn_attr(attrs, "NumChannels"),
            PE=finn_attr(attrs, "PE"),
            thresholds=thresholds,
            input_kind=ik,
            input_bits=ib,
            output_kind=ok,
            output_bits=ob,
            ActVal=finn_attr(attrs, "ActVal", 0),
            numInputVectors=finn_attr(attrs, "numInputVectors", [1]),
        )

    def cycles_per_image(self) -> int:
        """FINN ``get_exp_cycles``: ``NumChannels/PE * prod(numInputVectors)``."""
        return self.TMEM * self.n_vectors

    def elaborate(self, platform):
        m = Module()
        pe, tb = self.PE, self.tbits
        # the memories' read data always hold the thresholds of fold `fold` (address looked
        # ahead by one cycle)
        fold = Signal(range(self.TMEM))
        primed = Signal()
        m.d.sync += primed.eq(1)
        # two stall-together stages: comparisons, then popcount + bias into the output register
        s1_valid = Signal()
        o_valid = Signal()
        adv = Signal()
        take = Signal()
        m.d.comb += [
            adv.eq(~o_valid | self.o.ready),
            self.i.ready.eq(primed & adv),
            take.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(o_valid),
        ]
        nxt = Mux(fold == self.TMEM - 1, 0, fold + 1)
        with m.If(take):
            m.d.sync += fold.eq(nxt)
        if self.const_thresholds:
            # no memory: lane p compares with row p (channel p at TMEM == 1; all rows are equal
            # when shared)
            thr = [[C(int(t), signed(tb)) for t in self.thresholds[p]] for p in range(pe)]
        else:
            thr = threshold_read_ports(m, self.thresholds, pe, tb, Mux(take, nxt, fold), "tmem")

        steps = self.numSteps
        cmp_bits = Signal(pe * steps)
        m.d.comb += cmp_bits.eq(
            Cat(
                *(
                    lane(self.i.payload, p, self.input_bits, self.input_kind) >= t
                    for p in range(pe)
                    for t in thr[p]
                )
            )
        )
        s1_bits = Signal(pe * steps)
        outs = [
            encode_output(
                popcount([s1_bits[p * steps + s] for s in range(steps)]),
                self.ActVal,
                self.output_kind,
                self.output_bits,
            )
            for p in range(pe)
        ]
        with m.If(adv):
            m.d.sync += [
                s1_valid.eq(take),
                s1_bits.eq(cmp_bits),
                o_valid.eq(s1_valid),
                self.o.payload.eq(Cat(*outs)),
            ]
        return m
