"""Bit-parallel PE array: every lane's full-width product in one cycle (the baseline).

One fold per cycle. Per PE row: ``simd`` products (XNOR for bipolar x bipolar, a small truth
table for operands of at most 4 bits in all, ``*`` otherwise), a balanced adder tree with a
register stage every ``reg_every`` levels, and the dot-product accumulator. See
``docs/hw_pe_arrays.md``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux

from bitfab.hw.arrays.base import PEArray
from bitfab.hw.arrays.common import (
    AccumulateOutput,
    Pipeline,
    lane,
    leaf_sum,
    sign_extend_lane,
    silence_on_error,
    tree_latency,
)
from bitfab.hw.packing import decode


class BitParallelArray(PEArray):
    """Bit-parallel PE array: the :class:`~bitfab.hw.arrays.base.PEArray` contract with one
    fold per cycle and no run-time precision ports (values narrower than the lane sit
    sign-extended in it).

    Parameters
    ----------
    dsp : bool
        Keyword only. ``False`` (default): a plain LUT design; synthesis should run without DSP
        inference (``synth_ice40`` without ``-dsp``, ``synth_ecp5 -nodsp``). ``True``: the
        products of lanes with both operands >= 3 bits stay ``$mul`` cells behind input and
        output registers (one more cycle of latency), so ``synth_ice40 -dsp`` / ``synth_ecp5``
        can put them in SB_MAC16 / MULT18X18D blocks. The flows read ``self.dsp`` to choose.
    """

    kind = "parallel"
    label = "bit-parallel array"
    runtime_precision = False

    @silence_on_error
    def __init__(
        self,
        pe: int,
        simd: int,
        wbits: int,
        abits: int,
        wkind: str,
        akind: str,
        acc_width: int | None = None,
        *,
        dsp: bool = False,
        reg_every: int = 1,
    ):
        self.dsp = bool(dsp)
        super().__init__(pe, simd, wbits, abits, wkind, akind, acc_width, reg_every=reg_every)
        self._tree_latency = self._count_tree_latency()

    # -- performance model ---------------------------------------------------------------------
    def cycles_per_fold(self, wbits: int | None = None, abits: int | None = None) -> int:
        """Clock cycles per fold: always 1."""
        return 1

    @property
    def latency(self) -> int:
        """Clock edges from the transfer of a dot product's last fold to its result on ``o``."""
        return 3 + self._tree_latency + (1 if self._uses_dsp() else 0)

    def _uses_dsp(self) -> bool:
        return self.dsp and self._leaf_mode() == "mul" and min(self.wbits, self.abits) >= 3

    def _lane_bits(self) -> int:
        return self.wbits + self.abits

    def _leaf_mode(self) -> str:
        """ "table": each lane's product is a truth table of its <= 4 operand bits (lanes packed
        into LUT4-sized tables by :func:`leaf_sum`); "mul": a ``*`` per lane."""
        return "table" if self._lane_bits() <= 4 else "mul"

    def _split_mul(self) -> bool:
        """Multipliers with an operand wider than 5 bits are split into 4-bit chunks (Fmax;
        not with ``dsp``)."""
        return (
            self._leaf_mode() == "mul"
            and not self.dsp
            and "bipolar" not in (self.wkind, self.akind)
            and max(self.wbits, self.abits) > 5
        )

    @staticmethod
    def _chunks(raw, kind: str, width: int) -> list:
        """(value, shift) pieces of a lane: itself if <= 5 bits, else 4-bit chunks."""
        if width <= 5:
            return [(sign_extend_lane(raw, kind, width), 0)]
        pieces, lo = [], 0
        while lo < width:
            hi = min(lo + 4, width)
            if hi == width:
                pieces.append((sign_extend_lane(raw[lo:hi], kind, hi - lo), lo))
            else:
                pieces.append((raw[lo:hi].as_unsigned(), lo))
            lo = hi
        return pieces

    def _n_leaves(self) -> int:
        if self._split_mul():
            n_w = 1 if self.wbits <= 5 else -(-self.wbits // 4)
            n_a = 1 if self.abits <= 5 else -(-self.abits // 4)
            return n_w * n_a * self.simd
        if self._leaf_mode() == "table":
            return -(-self.simd // (4 // self._lane_bits()))
        return self.simd

    def _count_tree_latency(self) -> int:
        return tree_latency(self._n_leaves(), self.reg_every)

    # -- hardware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        pe, simd, wb, ab = self.pe, self.simd, self.wbits, self.abits
        wk, ak = self.wkind, self.akind
        out = AccumulateOutput(m, self.o, pe, self.acc_width)
        pipe = Pipeline(m, out.adv)
        i = self.i
        m.d.comb += i.ready.eq(out.adv)

        w_word, a_word = i.payload.w, i.payload.a
        extra = 1 if self._uses_dsp() else 0
        if extra:
            w_word = pipe.stage(w_word, name="w_in")
            a_word = pipe.stage(a_word, name="a_in")

        def product(*bits) -> int:
            wf = sum(x << k for k, x in enumerate(bits[:wb]))
            af = sum(x << k for k, x in enumerate(bits[wb:]))
            return decode(wf, wb, wk) * decode(af, ab, ak)

        partials = []
        for p in range(pe):
            wls = [lane(w_word, p * simd + s, wb) for s in range(simd)]
            als = [lane(a_word, s, ab) for s in range(simd)]
            if self._leaf_mode() == "table":
                leaves = [
                    ([wl[k] for k in range(wb)] + [al[k] for k in range(ab)], product)
                    for wl, al in zip(wls, als, strict=True)
                ]
                total, lat = leaf_sum(
                    m, pipe, leaves, reg_every=self.reg_every, reg_leaves=True, name=f"row{p}"
                )
            else:
                prods = []
                for wl, al in zip(wls, als, strict=True):
                    wv = sign_extend_lane(wl, wk, wb)
                    av = sign_extend_lane(al, ak, ab)
                    if wk == "bipolar":
                        prods.append(Mux(wl[0], av, -av))
                    elif ak == "bipolar":
                        prods.append(Mux(al[0], wv, -wv))
                    elif self._split_mul():
                        # operands wider than 5 bits are cut into <= 4-bit chunks (the top
                        # chunk keeps the sign): shallow chunk multipliers whose registered
                        # products go to the adder tree as separate, shifted terms
                        for wv_c, wsh in self._chunks(wl, wk, wb):
                            for av_c, ash in self._chunks(al, ak, ab):
                                prods.append((wv_c * av_c) << (wsh + ash))
                    else:
                        prods.append(wv * av)
                total, lat = leaf_sum(
                    m,
                    pipe,
                    [],
                    extra=prods,
                    reg_every=self.reg_every,
                    reg_leaves=True,
                    name=f"row{p}",
                )
            assert lat == self._tree_latency + 1
            # register the row sum: the accumulate stage is then register -> carry chain
            partials.append(pipe.stage(total, name=f"partial{p}"))

        # tags travel with the data: (DSP input register,) leaves, tree registers, row sum
        valid, last = i.valid, i.payload.last
        for _ in range(extra + 2 + self._tree_latency):
            valid = pipe.stage(valid, name="valid", reset=True)
            last = pipe.stage(last, name="last")
        m.d.comb += [out.valid.eq(valid), out.last.eq(last)]
        out.connect(partials, pipe)
        return m


__all__ = ["BitParallelArray"]
