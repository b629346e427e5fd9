"""FINN ``MVAU`` (MatrixVectorActivation) as a streaming Amaranth component over a PE array.

FINN semantics (``MVAU.execute_node``), for each input vector ``x`` (``MW`` values) and the
weight matrix ``W`` of shape ``[MW, MH]`` (FINN/ONNX orientation, ``y = x @ W``):

* accumulator ``acc = x @ W``; with ``binaryXnorMode=1`` (BINARY 0/1 data read as bipolar)
  or with BIPOLAR inputs and weights, ``acc`` is the XNOR popcount ``(dot + MW) / 2``;
* ``noActivation=1``: the output is ``acc`` (FINN's ``accDataType``);
* otherwise fused thresholds ``T[MH or 1, numSteps]``: ``out = count(acc >= T[n]) + ActVal``
  (a BIPOLAR output is the count bit, FINN's ``2*count - 1``).

Folding as FINN's: ``SF = MW/SIMD`` input words per vector (lane ``s`` of word ``sf`` is
element ``sf*SIMD + s``), ``NF = MH/PE`` output words per vector (lane ``p`` of word ``nf`` is
neuron ``nf*PE + p``). The weight memory holds ``NF*SF`` words, word ``nf*SF + sf`` holding
``W[sf*SIMD + s, nf*PE + p]`` at lane ``p*SIMD + s`` (FINN's PE interleave). The input vector is
kept in a ``SF``-word buffer while it streams in during neuron fold 0 and reused for the other
``NF-1`` neuron folds. ``numInputVectors`` vectors are processed back to back (convs: one
vector per output pixel of the sliding window generator).

The dot products run on any PE array of the contract in ``docs/architecture.md``
(``array="parallel" | "bitserial" | "bitfusion"``, extra constructor options in
``array_options``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from bitfab.hw import packing
from bitfab.hw.arrays import array_class
from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.layers.thresholding import (
    check_thresholds,
    count_at_least,
    encode_output,
    finn_attr,
    n_vectors,
    threshold_memories,
    threshold_memory_images,
)
from bitfab.hw.spram import SPRAM_WIDTH, SPRAMStore, load_words
from bitfab.hw.types import (
    check_divides,
    check_kind_bits,
    check_positive,
    finn_kind_bits,
    signed_bits_for,
    value_range,
)

#: where the weight memory lives: ``rom`` (an initialised memory: block RAM or logic, as Yosys
#: maps it) or ``spram`` (iCE40 SPRAM, loaded at run time through the ``wload`` port)
WEIGHT_STORES = ("rom", "spram")


class MVAU(wiring.Component):
    """FINN MatrixVectorActivation.

    Parameters (FINN names): MW, MH, PE (divides MH), SIMD (divides MW), weights ``[MW, MH]``
    integers, input_kind/input_bits (``inputDataType``), weight_kind/weight_bits
    (``weightDataType``; both 1..8 bits), binaryXnorMode (0/1: both must be 1-bit, BINARY
    0/1 values or bipolar), noActivation (0/1), thresholds ``[MH or 1, numSteps]`` (when
    noActivation=0), ActVal, output_kind/output_bits (``outputDataType``; for noActivation the
    ``accDataType``, up to 64 bits, checked against the accumulator range of these weights),
    numInputVectors, array (PE array kind) and array_options (extra array kwargs).

    Ports: ``i``: ``SIMD*input_bits`` bits per word; ``o``: ``PE*output_bits`` bits per word.
    """

    def __init__(
        self,
        *,
        MW: int,
        MH: int,
        PE: int,
        SIMD: int,
        weights,
        input_kind: str,
        input_bits: int,
        weight_kind: str,
        weight_bits: int,
        binaryXnorMode: int = 0,
        noActivation: int = 0,
        thresholds=None,
        ActVal: int = 0,
        output_kind: str = "unsigned",
        output_bits: int | None = None,
        numInputVectors: int | Sequence[int] = 1,
        array: str = "parallel",
        array_options: dict | None = None,
        weight_store: str = "rom",
        spram_model: str = "ice40",
    ) -> None:
        self.MW = check_positive("MW", MW)
        self.MH = check_positive("MH", MH)
        self.PE = check_positive("PE", PE)
        self.SIMD = check_positive("SIMD", SIMD)
        check_divides("PE", self.PE, "MH", self.MH)
        check_divides("SIMD", self.SIMD, "MW", self.MW)
        self.input_kind, self.weight_kind = input_kind, weight_kind
        self.input_bits = check_kind_bits("input_bits", input_kind, input_bits)
        self.weight_bits = check_kind_bits("weight_bits", weight_kind, weight_bits)
        if binaryXnorMode not in (0, 1):
            raise ValueError(f"binaryXnorMode must be 0 or 1, got {binaryXnorMode!r}")
        if noActivation not in (0, 1):
            raise ValueError(f"noActivation must be 0 or 1, got {noActivation!r}")
        self.binaryXnorMode, self.noActivation = int(binaryXnorMode), int(noActivation)
        if self.binaryXnorMode and (self.input_bits != 1 or self.weight_bits != 1):
            raise ValueError("binaryXnorMode: inputs and weights must be 1-bit (BINARY/BIPOLAR)")
        if self.binaryXnorMode and "signed" in (input_kind, weight_kind):
            raise ValueError("binaryXnorMode: inputs and weights must be BINARY or bipolar")
        self.popcount = bool(self.binaryXnorMode) or (
            input_kind == "bipolar" and weight_kind == "bipolar"
        )
        # kinds as the PE array sees them (BINARY in XNOR mode is bipolar)
        self.akind = "bipolar" if self.popcount else input_kind
        self.wkind = "bipolar" if self.popcount else weight_kind

        w = np.asarray(weights)
        if w.shape != (self.MW, self.MH):
            raise ValueError(
                f"weights must have shape [MW, MH] = {[self.MW, self.MH]}, got {list(w.shape)}"
            )
        if not np.all(np.equal(np.round(w), w)):
            raise ValueError("weights must be integers")
        w = np.round(w).astype(np.int64)
        wlo, whi = value_range(weight_kind, self.weight_bits)
        if self.binaryXnorMode and weight_kind == "unsigned":
            wlo, whi = 0, 1
        if w.min() < wlo or w.max() > whi or (weight_kind == "bipolar" and np.any(w == 0)):
            raise ValueError(
                f"weights: values outside the {self.weight_bits}-bit {weight_kind} range"
            )
        self.weights = w

        # accumulator range of these weights (FINN calculate_matvec_accumulator_range)
        if self.popcount:
            self.acc_range = (0, self.MW)
        else:
            xlo, xhi = value_range(input_kind, self.input_bits)
            lo = np.minimum(w * xlo, w * xhi).sum(axis=0)
            hi = np.maximum(w * xlo, w * xhi).sum(axis=0)
            self.acc_range = (int(lo.min()), int(hi.max()))
        # the array's accumulator holds the bipolar/plain dot product of all MW lanes
        xlo, xhi = value_range(self.akind, self.input_bits)
        wlo2, whi2 = value_range(self.wkind, self.weight_bits)
        corners = [a * b for a in (xlo, xhi) for b in (wlo2, whi2)]
        self.acc_width = signed_bits_for(self.MW * min(corners), self.MW * max(corners))

        self.ActVal = int(ActVal)
        self.output_kind = output_kind
        if self.noActivation:
            if thresholds is not None:
                raise ValueError("thresholds: must be None when noActivation=1")
            if output_bits is None:
                lo, hi = self.acc_range
                output_bits = max(1, hi.bit_length()) if lo >= 0 else signed_bits_for(lo, hi)
                if lo < 0:
                    self.output_kind = output_kind = "signed"
            self.output_bits = check_kind_bits("output_bits", output_kind, output_bits, 64)
            olo, ohi = value_range(output_kind, self.output_bits)
            if output_kind == "bipolar" or not (
                olo <= self.acc_range[0] and self.acc_range[1] <= ohi
            ):
                raise ValueError(
                    f"output_bits: accumulator range {self.acc_range} does not fit a "
                    f"{output_bits}-bit {output_kind} output (accDataType)"
                )
            self.thresholds, self.numSteps = None, 0
        else:
            if thresholds is None:
                raise ValueError("thresholds: required when noActivation=0")
            self.thresholds, self.numSteps = check_thresholds(thresholds, self.MH)
            if output_bits is None:
                output_bits = 1 if output_kind == "bipolar" else max(1, self.numSteps.bit_length())
            self.output_bits = check_kind_bits("output_bits", output_kind, output_bits)
            if output_kind == "bipolar" and (self.ActVal != 0 or self.numSteps != 1):
                raise ValueError("ActVal: bipolar output needs ActVal=0 and numSteps=1")
            olo, ohi = value_range(output_kind, self.output_bits)
            if output_kind != "bipolar" and not (
                olo <= self.ActVal and self.ActVal + self.numSteps <= ohi
            ):
                raise ValueError(
                    f"output_bits: ActVal..ActVal+numSteps does not fit a "
                    f"{self.output_bits}-bit {output_kind} output"
                )
            lo, hi = self.acc_range
            self.tbits = signed_bits_for(
                min(int(self.thresholds.min()), lo, -1), max(int(self.thresholds.max()), hi)
            )
        self.numInputVectors = numInputVectors
        self.n_vectors = n_vectors(numInputVectors)
        self.SF, self.NF = self.MW // self.SIMD, self.MH // self.PE

        self.array_kind = array
        self.array_options = dict(array_options or {})
        cls = array_class(array)
        self.array = cls(
            self.PE,
            self.SIMD,
            self.weight_bits,
            self.input_bits,
            self.wkind,
            self.akind,
            self.acc_width,
            **self.array_options,
        )
        # the MVAU reports itself if unused; its array need not warn a second time
        unused_ok(self.array)
        if weight_store not in WEIGHT_STORES:
            raise ValueError(f"weight_store must be one of {WEIGHT_STORES}, got {weight_store!r}")
        self.weight_store, self.spram_model = weight_store, spram_model
        ports = {
            "i": In(stream.Signature(unsigned(self.SIMD * self.input_bits))),
            "o": Out(stream.Signature(unsigned(self.PE * self.output_bits))),
        }
        if weight_store == "spram":
            # weights loaded at run time (bitfab.hw.spram): 16-bit load words, then `loaded`
            ports.update(
                wload=In(stream.Signature(unsigned(SPRAM_WIDTH))), loaded=Out(1), reload=In(1)
            )
        super().__init__(ports)

    @classmethod
    def from_finn(
        cls,
        attrs,
        weights,
        thresholds=None,
        *,
        array: str = "parallel",
        array_options: dict | None = None,
        weight_store: str = "rom",
        spram_model: str = "ice40",
    ) -> MVAU:
        """Build from a FINN ``MVAU`` node's attributes and initializers (``weights``
        ``[MW, MH]``, ``thresholds`` when ``noActivation=0``). A BIPOLAR output ignores
        ``ActVal`` as FINN's ``execute_node`` does (it applies ``2*count - 1``)."""
        ik, ib = finn_kind_bits(finn_attr(attrs, "inputDataType"))
        wk, wb = finn_kind_bits(finn_attr(attrs, "weightDataType"))
        ok, ob = finn_kind_bits(finn_attr(attrs, "outputDataType"))
        no_act = int(finn_attr(attrs, "noActivation", 0))
        act = 0 if ok == "bipolar" else int(finn_attr(attrs, "ActVal", 0))
        return cls(
            MW=finn_attr(attrs, "MW"),
            MH=finn_attr(attrs, "MH"),
            PE=finn_attr(attrs, "PE"),
            SIMD=finn_attr(attrs, "SIMD"),
            weights=weights,
            input_kind=ik,
            input_bits=ib,
            weight_kind=wk,
            weight_bits=wb,
            binaryXnorMode=int(finn_attr(attrs, "binaryXnorMode", 0)),
            noActivation=no_act,
            thresholds=None if no_act else thresholds,
            ActVal=act,
            output_kind=ok,
            output_bits=ob,
            numInputVectors=finn_attr(attrs, "numInputVectors", [1]),
            array=array,
            array_options=array_options,
            weight_store=weight_store,
            spram_model=spram_model,
        )

    # -- performance model --------------------------------------------------------------------
    def cycles_per_image(self) -> int:
        """FINN ``get_exp_cycles`` (``MH/PE * MW/SIMD * prod(numInputVectors)``) times the
        array's cycles per fold (1 for the bit-parallel array)."""
        per_fold = self.array.cycles_per_fold(self.weight_bits, self.input_bits)
        return self.NF * self.SF * self.n_vectors * per_fold

    def weight_memory_image(self) -> list[int]:
        """Weight memory words: word ``nf*SF + sf``, lane ``p*SIMD + s`` =
        ``W[sf*SIMD + s, nf*PE + p]`` (``weight_bits`` each, packed per :mod:`packing`)."""
        pe, simd, wb = self.PE, self.SIMD, self.weight_bits
        kind = (
            "unsigned"
            if (self.binaryXnorMode and self.weight_kind == "unsigned")
            else self.weight_kind
        )
        words = []
        for nf in range(self.NF):
            for sf in range(self.SF):
                blk = self.weights[sf * simd : (sf + 1) * simd, nf * pe : (nf + 1) * pe]
                words.append(packing.pack(blk.T.reshape(-1).tolist(), wb, kind))
        return words

    @property
    def weight_width(self) -> int:
        """Bits per weight-memory word (``PE * SIMD * weight_bits``)."""
        return self.PE * self.SIMD * self.weight_bits

    def weight_load_words(self) -> list[int]:
        """The 16-bit load words of this layer's parameters: the weight memory (SPRAM load
        order, :mod:`bitfab.hw.spram`), then the threshold memories (PE by PE, word by word,
        16-bit chunks LSB first; :meth:`threshold_load_words`)."""
        return load_words(self.weight_memory_image(), self.weight_width) + (
            self.threshold_load_words()
        )

    def threshold_load_words(self) -> list[int]:
        """The threshold tables as load words (none with ``noActivation``)."""
        if self.noActivation:
            return []
        width = self.numSteps * self.tbits
        return [
            w
            for image in threshold_memory_images(self.thresholds, self.PE, self.tbits)
            for w in load_words(image, width)
        ]

    def _threshold_loader(self, m: Module, writes, store, thr_loaded) -> None:  # noqa: ANN001
        """Fill the threshold memories from ``wload`` once the weights are in: PE by PE, word
        by word, ``ceil(numSteps * tbits / 16)`` load words each (LSB chunk first)."""
        width = self.numSteps * self.tbits
        chunks = -(-width // SPRAM_WIDTH)
        depth = self.NF
        tp = Signal(range(max(2, self.PE)))
        ta = Signal(range(max(2, depth)))
        tc = Signal(range(max(2, chunks)))
        buf = Signal(chunks * SPRAM_WIDTH)
        word = Cat(
            *(Mux(tc == k, self.wload.payload, buf[16 * k : 16 * (k + 1)]) for k in range(chunks))
        )
        busy = store.loaded & ~thr_loaded
        take = self.wload.valid & busy
        m.d.comb += self.wload.ready.eq(Mux(store.loaded, busy, store.wload.ready))
        for p, wp in enumerate(writes):
            m.d.comb += [
                wp.addr.eq(ta),
                wp.data.eq(word[:width]),
                wp.en.eq(take & (tc == chunks - 1) & (tp == p)),
            ]
        with m.If(self.reload):
            m.d.sync += [tp.eq(0), ta.eq(0), tc.eq(0), thr_loaded.eq(0)]
        with m.Elif(take):
            m.d.sync += buf.eq(word)
            with m.If(tc == chunks - 1):
                m.d.sync += tc.eq(0)
                with m.If(ta == depth - 1):
                    m.d.sync += ta.eq(0)
                    with m.If(tp == self.PE - 1):
                        m.d.sync += thr_loaded.eq(1)
                    with m.Else():
                        m.d.sync += tp.eq(tp + 1)
                with m.Else():
                    m.d.sync += ta.eq(ta + 1)
            with m.Else():
                m.d.sync += tc.eq(tc + 1)

    # -- hardware -----------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        sf_n, nf_n = self.SF, self.NF
        wmem_n = sf_n * nf_n
        arr = self.array
        m.submodules.array = arr
        if "wbits_rt" in arr.signature.members:
            m.d.comb += [arr.wbits_rt.eq(self.weight_bits), arr.abits_rt.eq(self.input_bits)]

        image = self.weight_memory_image()
        row_bits = self.SIMD * self.weight_bits
        rd_w = []
        primed = Signal()  # read ports hold valid data from the second cycle on
        if self.weight_store == "spram":
            # one SPRAM-backed memory of whole words, loaded at run time; the array starts a
            # cycle after the last load word (the first read needs one cycle)
            # the threshold tables follow the weights on the load stream (loadable memories)
            m.submodules.wmem = store = SPRAMStore(self.weight_width, wmem_n, self.spram_model)
            thr_loaded = Signal(init=int(bool(self.noActivation)))
            m.d.comb += [
                store.wload.payload.eq(self.wload.payload),
                store.wload.valid.eq(self.wload.valid & ~store.loaded),
                store.reload.eq(self.reload),
                self.loaded.eq(store.loaded & thr_loaded),
            ]
            if self.noActivation:
                m.d.comb += self.wload.ready.eq(store.wload.ready)
            m.d.sync += primed.eq(self.loaded & ~self.reload)
            rd_data, rd_addr = [store.rdata], [store.raddr]
        else:
            # one weight memory per PE row (SIMD lanes each), all read at the same address
            for p in range(self.PE):
                rows = [(word >> (p * row_bits)) & ((1 << row_bits) - 1) for word in image]
                mem = Memory(shape=unsigned(row_bits), depth=wmem_n, init=rows)
                m.submodules[f"wmem{p}"] = mem
                rd_w.append(mem.read_port())
            rd_data, rd_addr = [rd.data for rd in rd_w], [rd.addr for rd in rd_w]
            m.d.sync += primed.eq(1)
        m.submodules.abuf = abuf = Memory(
            shape=unsigned(self.SIMD * self.input_bits), depth=sf_n, init=[]
        )
        wr_a = abuf.write_port()
        rd_a = abuf.read_port(transparent_for=(wr_a,))

        # ---- feed: one fold (weights of PE rows x SIMD lanes, SIMD activations) per transfer
        sf = Signal(range(sf_n))
        nf = Signal(range(nf_n))
        waddr = Signal(range(wmem_n))
        adv = Signal()
        first = Signal()  # neuron fold 0: activations come from the input stream
        m.d.comb += [
            first.eq(nf == 0),
            arr.i.valid.eq(primed & (~first | self.i.valid)),
            arr.i.payload.w.eq(Cat(*rd_data)),
            arr.i.payload.a.eq(Mux(first, self.i.payload, rd_a.data)),
            arr.i.payload.last.eq(sf == sf_n - 1),
            self.i.ready.eq(primed & first & arr.i.ready),
            adv.eq(arr.i.valid & arr.i.ready),
            wr_a.en.eq(adv & first),
            wr_a.addr.eq(sf),
            wr_a.data.eq(self.i.payload),
        ]
        sf_next = Mux(sf == sf_n - 1, 0, sf + 1)
        nf_next = Mux(sf == sf_n - 1, Mux(nf == nf_n - 1, 0, nf + 1), nf)
        waddr_next = Mux(waddr == wmem_n - 1, 0, waddr + 1)
        m.d.comb += [
            *(a.eq(Mux(adv, waddr_next, waddr)) for a in rd_addr),
            rd_a.addr.eq(Mux(adv, sf_next, sf)),
        ]
        with m.If(adv):
            m.d.sync += [sf.eq(sf_next), nf.eq(nf_next), waddr.eq(waddr_next)]

        # ---- output: popcount correction, thresholds, into a 2-word output FIFO whose
        # registered "not full" is the array's ready (cuts the combinational ready path from
        # the downstream layer through the whole array)
        m.submodules.ofifo = ofifo = SyncFIFO(width=self.PE * self.output_bits, depth=2)
        take = Signal()
        m.d.comb += [
            self.o.valid.eq(ofifo.r_rdy),
            self.o.payload.eq(ofifo.r_data),
            ofifo.r_en.eq(self.o.ready),
            arr.o.ready.eq(primed & ofifo.w_rdy),
            take.eq(arr.o.valid & arr.o.ready),
        ]
        accs = []
        for p in range(self.PE):
            v = arr.o.payload[p]
            if self.popcount:
                v = (v + self.MW) >> 1  # XNOR popcount = (dot + MW) / 2
            accs.append(v)
        lanes = []
        if self.noActivation:
            for p, v in enumerate(accs):
                ext = Signal(signed(max(self.output_bits, self.acc_width + 1)), name=f"acc{p}")
                m.d.comb += ext.eq(v)  # sign-extends the accumulator to the output width
                lanes.append(ext[: self.output_bits])
        else:
            tb = self.tbits
            onf = Signal(range(nf_n))
            onf_next = Mux(onf == nf_n - 1, 0, onf + 1)
            with m.If(take):
                m.d.sync += onf.eq(onf_next)
            addr = Mux(take, onf_next, onf)
            spram = self.weight_store == "spram"
            thr, tw = threshold_memories(m, self.thresholds, self.PE, tb, addr, "tmem", spram)
            if spram:
                self._threshold_loader(m, tw, store, thr_loaded)
            for p, v in enumerate(accs):
                ts = thr[p]
                lanes.append(
                    encode_output(
                        count_at_least(v, ts), self.ActVal, self.output_kind, self.output_bits
                    )
                )
        m.d.comb += [ofifo.w_data.eq(Cat(*lanes)), ofifo.w_en.eq(take)]
        return m
