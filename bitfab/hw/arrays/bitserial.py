"""Bit-serial PE array (BISMO-style): one (weight plane, activation plane) pair per cycle.

For a fold, cycle ``(i, j)`` takes bit plane ``i`` of every weight lane and bit plane ``j`` of
every activation lane, forms the per-lane one-bit products (AND; XNOR as +-1 when both operands
are bipolar; ``c * (2b - 1)`` when one is bipolar), popcounts them per PE row and accumulates
``+-2**(i+j) * popcount`` (negative when exactly one plane is the sign plane of a signed
operand). The shift is done by two Horner accumulators (planes MSB first: ``t = 2t + p`` over
``j``, ``u = 2u + t`` over ``i``), which is cheaper than a barrel shifter. Cycles per fold:
``wbits_rt * abits_rt``. See ``docs/hw_pe_arrays.md``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, ResetSignal, Signal, signed

from bitfab.hw.arrays.base import PEArray
from bitfab.hw.arrays.common import AccumulateOutput, Pipeline, lane, leaf_sum, tree_latency
from bitfab.hw.types import int_bits


def _plane_fn(wkind: str, akind: str):
    """Integer value of one lane's one-bit product, given (weight bit, activation bit)."""
    if wkind == "bipolar" and akind == "bipolar":
        return lambda w, a: 1 if w == a else -1
    if wkind == "bipolar":
        return lambda w, a: a * (2 * w - 1)
    if akind == "bipolar":
        return lambda w, a: w * (2 * a - 1)
    return lambda w, a: w & a


class BitSerialArray(PEArray):
    """Bit-serial PE array: the :class:`~bitfab.hw.arrays.base.PEArray` contract, one
    (weight plane, activation plane) pair per cycle, so a fold takes ``wbits_rt * abits_rt``
    cycles; the run-time precision ports ``wbits_rt`` / ``abits_rt`` set the number of planes.
    No options beyond the contract's (``reg_every`` spaces the popcount-tree registers).
    """

    kind = "bitserial"
    label = "bit-serial array"
    runtime_precision = True

    def cycles_per_fold(self, wbits: int | None = None, abits: int | None = None) -> int:
        """Clock cycles per fold at run-time precision ``wbits`` x ``abits`` (default: max)."""
        wbits, abits = self.precision(wbits, abits)
        return wbits * abits

    @property
    def latency(self) -> int:
        """Clock edges from the transfer of a dot product's last fold to its result on ``o``
        (the fold transfers on its last plane-pair cycle)."""
        return 3 + self._tree_latency + self._signed + (self.abits > 1) + (self.wbits > 1)

    @property
    def _tree_latency(self) -> int:
        """Register stages of a row's popcount tree (two lanes per LUT4 table)."""
        return tree_latency((self.simd + 1) // 2, self.reg_every)

    @property
    def _signed(self) -> int:
        """1 if an operand is signed (the sign-plane negation gets its own register)."""
        return int("signed" in (self.wkind, self.akind))

    def elaborate(self, platform):
        m = Module()
        pe, simd, wb, ab = self.pe, self.simd, self.wbits, self.abits
        wk, ak = self.wkind, self.akind
        out = AccumulateOutput(m, self.o, pe, self.acc_width)
        adv = out.adv
        pipe = Pipeline(m, adv)
        i = self.i

        # ---- sequencer: weight plane wi (outer), activation plane aj (inner), MSB first ----
        fresh = Signal(init=1)  # the next step is the first of a fold
        wi_r = Signal(range(max(wb, 2)))
        aj_r = Signal(range(max(ab, 2)))
        wi = Signal(range(max(wb, 2)))
        aj = Signal(range(max(ab, 2)))
        wtop = Signal(range(max(wb, 2)))
        atop = Signal(range(max(ab, 2)))
        m.d.comb += [
            wtop.eq(self.wbits_rt - 1),
            atop.eq(self.abits_rt - 1),
            wi.eq(Mux(fresh, wtop, wi_r)),
            aj.eq(Mux(fresh, atop, aj_r)),
        ]
        fold_done = (wi == 0) & (aj == 0)
        m.d.comb += i.ready.eq(adv & fold_done)
        with m.If(adv & i.valid):
            with m.If(fold_done):
                m.d.sync += fresh.eq(1)
            with m.Elif(aj == 0):
                m.d.sync += [fresh.eq(0), wi_r.eq(wi - 1), aj_r.eq(atop)]
            with m.Else():
                m.d.sync += [fresh.eq(0), wi_r.eq(wi), aj_r.eq(aj - 1)]

        # ---- stage 0: select the planes, register them with the tags ----
        w_word, a_word = i.payload.w, i.payload.a
        apl = [
            pipe.stage(lane(a_word, s, ab).bit_select(aj, 1) if ab > 1 else a_word[s], "apl")
            for s in range(simd)
        ]
        wpl = [
            [
                pipe.stage(
                    lane(w_word, p * simd + s, wb).bit_select(wi, 1)
                    if wb > 1
                    else w_word[p * simd + s],
                    "wpl",
                )
                for s in range(simd)
            ]
            for p in range(pe)
        ]
        neg = 0
        if wk == "signed":
            neg = neg ^ (wi == wtop)
        if ak == "signed":
            neg = neg ^ (aj == atop)
        tags = {
            "valid": i.valid,
            "neg": neg,
            "t_last": aj == 0,
            "u_last": wi == 0,
            "d_last": i.payload.last,
        }
        tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}

        # ---- stage 1: per-row plane dot products (popcount trees) ----
        fn = _plane_fn(wk, ak)
        dots = []
        for p in range(pe):
            leaves = [([wpl[p][s], apl[s]], fn) for s in range(simd)]
            dot, lat = leaf_sum(m, pipe, leaves, reg_every=self.reg_every, name=f"pc{p}")
            assert lat == self._tree_latency
            dots.append(pipe.stage(dot, f"pc{p}"))  # registered plane dot product
        for _ in range(self._tree_latency + 1):
            tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}

        def horner(vals, width, group_last, name):
            """Per row ``r = 2r + v`` over a group of planes; emits ``r`` at the group's last
            plane into an output register and clears ``r`` (the flip-flops' synchronous reset)
            for the next group, so there is no "first plane" multiplexer."""
            take = adv & tags["valid"]
            clear = ResetSignal() | (take & group_last)
            outs = []
            for p, v in enumerate(vals):
                r = Signal(signed(width), name=f"{name}{p}", reset_less=True)
                r_next = Signal(signed(width), name=f"{name}_next{p}")
                r_out = Signal(signed(width), name=f"{name}_out{p}", reset_less=True)
                m.d.comb += r_next.eq((r << 1) + v)
                with m.If(clear):
                    m.d.sync += r.eq(0)
                with m.Elif(take):
                    m.d.sync += r.eq(r_next)
                with m.If(take & group_last):
                    m.d.sync += r_out.eq(r_next)
                outs.append(r_out)
            return outs

        # ---- stage T: Horner over activation planes (with the sign of the plane pair) ----
        if self._signed:  # negate on sign planes, registered (keeps two carry chains apart)
            vals = [pipe.stage(Mux(tags["neg"], -d, d), f"sv{p}") for p, d in enumerate(dots)]
            tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}
        else:
            vals = dots
        if ab > 1:
            vals = horner(vals, int_bits(simd * (1 << ab)) + 1, tags["t_last"], "t")
            tv = pipe.stage(tags["valid"] & tags["t_last"], "t_valid", reset=True)
            tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}
            tags["valid"] = tv

        # ---- stage U: Horner over weight planes ----
        if wb > 1:
            vals = horner(vals, int_bits(simd * (1 << (ab + wb))) + 1, tags["u_last"], "u")
            uv = pipe.stage(tags["valid"] & tags["u_last"], "u_valid", reset=True)
            tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}
            tags["valid"] = uv
        else:
            tags["valid"] = tags["valid"] & tags["u_last"]

        # ---- stage D: dot-product accumulator and output ----
        m.d.comb += [out.valid.eq(tags["valid"]), out.last.eq(tags["d_last"])]
        out.connect(vals, pipe)
        return m


__all__ = ["BitSerialArray"]
