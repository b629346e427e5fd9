"""Bit-parallel PE array: every lane's full-width product in one cycle (the baseline).

One fold per cycle. Per PE row: ``simd`` products (XNOR for bipolar x bipolar, a small truth
table for operands of at most 4 bits in all, ``*`` otherwise), a balanced adder tree with a
register stage every ``reg_every`` levels, and the dot-product accumulator. See
``docs/hw_pe_arrays.md``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring

from bitfab.hw.packing import decode
from bitfab.hw.pe_common import (
    AccumulateOutput,
    Pipeline,
    adder_tree,
    array_signature_members,
    dot_start_flag,
    lane,
    lut_table,
    pair_leaves,
    sign_extend_lane,
    validate_params,
)


def _value(bit_field: int, width: int, kind: str) -> int:
    return decode(bit_field, width, kind)


class BitParallelArray(wiring.Component):
    """Bit-parallel PE array (see the PE array contract in ``docs/architecture.md``).

    Parameters
    ----------
    pe, simd:
        PE rows (outputs) and SIMD lanes (products per row per fold).
    wbits, abits:
        Weight / activation width in bits (1-8; bipolar forces 1).
    wkind, akind:
        ``"bipolar"``, ``"signed"`` or ``"unsigned"``.
    acc_width:
        Accumulator / output lane width in bits (default: one fold's range + 8 guard bits).
    dsp:
        ``False`` (default): a plain LUT design; synthesis should run without DSP inference
        (``synth_ice40`` without ``-dsp``, ``synth_ecp5 -nodsp``). ``True``: the products of
        lanes with both operands >= 3 bits stay ``$mul`` cells behind input and output
        registers, so ``synth_ice40 -dsp`` / ``synth_ecp5`` can put them in SB_MAC16 /
        MULT18X18D blocks. The flows read ``self.dsp`` to choose.
    reg_every:
        A pipeline register after every ``reg_every`` adder-tree levels (0: none).

    This array has no run-time precision ports: values narrower than the lane simply sit
    sign-extended in their lanes, and a fold always takes one cycle.
    """

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
        reg_every: int = 2,
    ):
        self.params = validate_params(
            pe, simd, wbits, abits, wkind, akind, acc_width, array="bit-parallel array"
        )
        if not isinstance(reg_every, int) or reg_every < 0:
            raise ValueError(f"reg_every must be an integer >= 0, got {reg_every!r}")
        self.dsp = bool(dsp)
        self.reg_every = reg_every
        p = self.params
        self.pe, self.simd, self.wbits, self.abits = p.pe, p.simd, p.wbits, p.abits
        self.wkind, self.akind, self.acc_width = p.wkind, p.akind, p.acc_width
        self._tree_latency = self._count_tree_latency()
        super().__init__(array_signature_members(p, runtime_precision=False))

    # -- performance model ---------------------------------------------------------------------
    def cycles_per_fold(self, wbits: int | None = None, abits: int | None = None) -> int:
        """Clock cycles per fold: always 1."""
        return 1

    @property
    def latency(self) -> int:
        """Clock edges from the transfer of a dot product's last fold to its result on ``o``."""
        return 2 + self._tree_latency + (1 if self._uses_dsp() else 0)

    def _uses_dsp(self) -> bool:
        return self.dsp and self._leaf_mode() == "mul" and min(self.wbits, self.abits) >= 3

    def _leaf_mode(self) -> str:
        if self.wbits + self.abits <= 2:
            return "pair"
        if self.wbits + self.abits <= 4:
            return "table"
        return "mul"

    def _n_leaves(self) -> int:
        return (self.simd + 1) // 2 if self._leaf_mode() == "pair" else self.simd

    def _count_tree_latency(self) -> int:
        n, depth, lat = self._n_leaves(), 0, 0
        while n > 1:
            n = (n + 1) // 2
            depth += 1
            if self.reg_every and depth % self.reg_every == 0 and n > 1:
                lat += 1
        return lat

    # -- hardware ------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        pe, simd, wb, ab = self.pe, self.simd, self.wbits, self.abits
        wk, ak = self.wkind, self.akind
        out = AccumulateOutput(m, self.o, pe, self.acc_width)
        pipe = Pipeline(m, out.adv)
        i = self.i
        m.d.comb += i.ready.eq(out.adv)
        start = dot_start_flag(m, i)

        w_word, a_word = i.payload.w, i.payload.a
        mode = self._leaf_mode()
        extra = 1 if self._uses_dsp() else 0
        if extra:
            w_word = pipe.stage(w_word, name="w_in")
            a_word = pipe.stage(a_word, name="a_in")

        def product(wbits_field: int, abits_field: int) -> int:
            return _value(wbits_field, wb, wk) * _value(abits_field, ab, ak)

        partials = []
        for p in range(pe):
            if mode == "pair":
                bits = [
                    (lane(w_word, p * simd + s, wb)[0], lane(a_word, s, ab)[0]) for s in range(simd)
                ]
                leaves = pair_leaves(m, bits, product, name=f"p{p}")
            elif mode == "table":
                leaves = []
                for s in range(simd):
                    wl, al = lane(w_word, p * simd + s, wb), lane(a_word, s, ab)
                    ins = [wl[k] for k in range(wb)] + [al[k] for k in range(ab)]

                    def fn(*xs):
                        wf = sum(x << k for k, x in enumerate(xs[:wb]))
                        af = sum(x << k for k, x in enumerate(xs[wb:]))
                        return product(wf, af)

                    leaves.append(lut_table(m, ins, fn, name=f"p{p}_s{s}"))
            else:
                leaves = []
                for s in range(simd):
                    wv = sign_extend_lane(lane(w_word, p * simd + s, wb), wk, wb)
                    av = sign_extend_lane(lane(a_word, s, ab), ak, ab)
                    if wk == "bipolar":
                        prod = Mux(lane(w_word, p * simd + s, wb)[0], av, -av)
                    elif ak == "bipolar":
                        prod = Mux(lane(a_word, s, ab)[0], wv, -wv)
                    else:
                        prod = wv * av
                    leaves.append(prod)
            leaves = [pipe.stage(v, name=f"prod{p}") for v in leaves]
            total, _ = adder_tree(pipe, leaves, reg_every=self.reg_every, name=f"tree{p}")
            partials.append(total)

        # tags travel with the data: products register + tree registers (+ DSP input register)
        valid = i.valid & i.ready
        first, last = start, i.payload.last
        for _ in range(extra + 1 + self._tree_latency):
            valid = pipe.stage(valid, name="valid")
            first = pipe.stage(first, name="first")
            last = pipe.stage(last, name="last")
        m.d.comb += [out.valid.eq(valid), out.first.eq(first), out.last.eq(last)]
        out.connect(partials)
        return m


__all__ = ["BitParallelArray"]
