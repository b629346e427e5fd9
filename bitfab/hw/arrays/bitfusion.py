"""Bit-fusion PE array (Bit Fusion-style): 2-bit x 2-bit BitBricks fused at run time.

Every operand is cut into 2-bit slices (``ceil(bits/2)`` of them); a BitBrick multiplies one
weight slice by one activation slice, each slice signed when it is the top slice of a signed
operand (bipolar = the signed 2-bit value -1/+1), unsigned otherwise. A ``w``-bit x ``a``-bit
product is the sum of ``ceil(w/2)*ceil(a/2)`` brick products shifted by ``2*(k+l)`` (``k``/``l``
the slice positions). Each PE row owns ``bricks`` bricks; at run-time precision
``wbits_rt x abits_rt`` they compute ``bricks // (ceil(w/2)*ceil(a/2))`` products per cycle, so
a fold takes ``ceil(simd / that)`` cycles.

Because the array only needs each row's dot product, brick products are first summed across
lanes per shift group ``g = k + l`` (narrow adder trees), and only the ``G`` group sums are
shifted and added. Brick inputs are routed by a small schedule: modes whose cycle count equals
that of the full-precision mapping reuse it (values sit sign-extended in their lanes, so the
full-precision computation is exact at any lower precision); only the faster modes get their
own routing (input multiplexers). With the default ``bricks`` (one fold per cycle at full
precision) there are no multiplexers at all. See ``docs/hw_pe_arrays.md``.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed

from bitfab.hw.arrays.base import PEArray
from bitfab.hw.arrays.common import (
    AccumulateOutput,
    Pipeline,
    adder_tree,
    lane,
    leaf_sum,
    lut_table,
    silence_on_error,
)
from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.types import int_bits


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _make_brick_fn(w_bipolar: bool, a_bipolar: bool):
    """Product of two 2-bit slices ``(x0, x1)``, ``(y0, y1)``; ``xs``/``ys``: the slice is
    signed. A bipolar operand's slice is its raw bit ``x0`` (value ``2*x0 - 1``), so no
    inverter sits in front of the tables; then all-zero inputs are not a zero product, and an
    idle brick is silenced by ``active = 0``."""

    def brick(x0, x1, y0, y1, xs=0, ys=0, active=1) -> int:
        x = 2 * x0 - 1 if w_bipolar else x0 + 2 * x1 - 4 * (x1 & xs)
        y = 2 * y0 - 1 if a_bipolar else y0 + 2 * y1 - 4 * (y1 & ys)
        return x * y * active

    return brick


class BitFusionArray(PEArray):
    """Bit-fusion PE array: the :class:`~bitfab.hw.arrays.base.PEArray` contract with
    ``bricks`` 2x2-bit BitBricks per PE row, fused at run time; the run-time precision ports
    ``wbits_rt`` / ``abits_rt`` select the fusion mode, and a fold takes
    ``ceil(simd / (bricks // (ceil(wbits_rt/2) * ceil(abits_rt/2))))`` cycles.

    Parameters
    ----------
    bricks : int or None
        Keyword only. BitBricks per PE row, ``>= ceil(wbits/2)*ceil(abits/2)`` (one product);
        ``None`` (default): ``simd*ceil(wbits/2)*ceil(abits/2)``, one fold per cycle at full
        precision.
    """

    kind = "bitfusion"
    label = "bit-fusion array"
    runtime_precision = True

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
        bricks: int | None = None,
        reg_every: int = 1,
    ):
        super().__init__(pe, simd, wbits, abits, wkind, akind, acc_width, reg_every=reg_every)
        self.cw_max, self.ca_max = _ceil_div(self.wbits, 2), _ceil_div(self.abits, 2)
        per_product = self.cw_max * self.ca_max
        if bricks is None:
            bricks = self.simd * per_product
        if isinstance(bricks, bool) or not isinstance(bricks, int) or bricks < per_product:
            raise ValueError(
                f"bricks must be an integer >= {per_product} (ceil(wbits/2)*ceil(abits/2) "
                f"bricks make one {self.wbits}x{self.abits}-bit product), got {bricks!r}"
            )
        self.bricks = bricks
        self._plan()

    # -- performance model ---------------------------------------------------------------------
    def products_per_cycle(self, wbits: int | None = None, abits: int | None = None) -> int:
        """Products per PE row per cycle at run-time precision ``wbits`` x ``abits``."""
        wbits, abits = self.precision(wbits, abits)
        return self.bricks // (_ceil_div(wbits, 2) * _ceil_div(abits, 2))

    def cycles_per_fold(self, wbits: int | None = None, abits: int | None = None) -> int:
        """Clock cycles per fold at run-time precision ``wbits`` x ``abits`` (default: max)."""
        return _ceil_div(self.simd, self.products_per_cycle(wbits, abits))

    @property
    def latency(self) -> int:
        """Clock edges from the transfer of a dot product's last fold to its result on ``o``
        (the fold transfers on its last cycle)."""
        if self._tree_latency is None:
            # the adder-tree depths are known after packing the bricks into LUT4 tables
            unused_ok(self.elaborate(None))
        return 3 + self._tree_latency

    # -- schedule ------------------------------------------------------------------------------
    def _mapping(self, cw: int, ca: int, top_w: int, top_a: int) -> list[list]:
        """Per cycle, per brick: (lane, k, l, w_signed, a_signed) or None (idle)."""
        per = cw * ca
        ppc = self.bricks // per
        sw = self.wkind != "unsigned"
        sa = self.akind != "unsigned"
        cycles = []
        for c in range(_ceil_div(self.simd, ppc)):
            row = []
            for b in range(self.bricks):
                q, r = divmod(b, per)
                s = c * ppc + q
                if q >= ppc or s >= self.simd:
                    row.append(None)
                    continue
                k, j = divmod(r, ca)
                row.append((s, k, j, int(sw and k == top_w), int(sa and j == top_a)))
            cycles.append(row)
        return cycles

    def _plan(self) -> None:
        """Slots = (config, cycle) pairs; per mode (cw, ca): first slot and cycle count."""
        cw_m, ca_m = self.cw_max, self.ca_max
        full = self._mapping(cw_m, ca_m, cw_m - 1, ca_m - 1)
        self.slots: list[list] = list(full)
        self.mode_slots: dict[tuple[int, int], tuple[int, int]] = {}
        for cw in range(1, cw_m + 1):
            for ca in range(1, ca_m + 1):
                n = _ceil_div(self.simd, self.bricks // (cw * ca))
                if n == len(full):
                    self.mode_slots[(cw, ca)] = (0, n)
                else:
                    self.mode_slots[(cw, ca)] = (len(self.slots), n)
                    self.slots.extend(self._mapping(cw, ca, cw - 1, ca - 1))
        self.groups = cw_m + ca_m - 1  # shift groups g = k + l (weight 4**g)
        self._tree_latency: int | None = None  # known once elaborated (see ``latency``)

    # -- hardware ------------------------------------------------------------------------------
    @staticmethod
    def _slices(raw, width: int, kind: str, n: int) -> list[tuple]:
        """The ``n`` 2-bit slices of a lane as (bit0, bit1) pairs, sign- or zero-extended
        (constant bits are ``Const``); a bipolar lane is ``(b, 0)``, read as ``2b - 1`` (the
        signed 2-bit -1/+1) by the brick tables."""
        if kind == "bipolar":
            return [(raw[0], Const(0, 1))]
        if kind == "signed":
            bits = [raw[min(j, width - 1)] for j in range(2 * n)]
        else:
            bits = [raw[j] if j < width else Const(0, 1) for j in range(2 * n)]
        return [(bits[2 * k], bits[2 * k + 1]) for k in range(n)]

    def _routed(self, m, slot, b: int, keyfn, valfn, width: int, name: str):
        """Brick ``b``'s input in the current slot: ``valfn(keyfn(descriptor))`` (0 when idle).

        Returns ``(None, key)`` when every slot agrees (plain wiring), else ``(mux, None)``: a
        multiplexer on ``slot``.
        """
        options: dict = {}
        for sidx, slot_desc in enumerate(self.slots):
            d = slot_desc[b]
            options.setdefault(None if d is None else keyfn(d), []).append(sidx)
        if len(options) == 1:
            (key,) = options
            return None, key
        sig = Signal(width, name=name)
        with m.Switch(slot):
            for key, sidxs in options.items():
                with m.Case(*sidxs):
                    m.d.comb += sig.eq(0 if key is None else valfn(key))
        return sig, None

    def elaborate(self, platform):
        m = Module()
        pe, simd, wb, ab = self.pe, self.simd, self.wbits, self.abits
        out = AccumulateOutput(m, self.o, pe, self.acc_width)
        adv = out.adv
        pipe = Pipeline(m, adv)
        i = self.i

        # ---- sequencer: slot = first slot of the mode + cycle within the fold ----
        n_slots = len(self.slots)
        slot = Signal(range(max(n_slots, 2)))
        last_slot = Signal(range(max(n_slots, 2)))
        first_slot = Signal(range(max(n_slots, 2)))
        if n_slots > 1:
            cw_rt = Signal(range(self.cw_max + 1))
            ca_rt = Signal(range(self.ca_max + 1))
            m.d.comb += [cw_rt.eq((self.wbits_rt + 1) >> 1), ca_rt.eq((self.abits_rt + 1) >> 1)]
            for (cw, ca), (base, n) in self.mode_slots.items():
                with m.If((cw_rt == cw) & (ca_rt == ca)):
                    m.d.comb += [first_slot.eq(base), last_slot.eq(base + n - 1)]
        fresh = Signal(init=1)
        slot_r = Signal.like(slot)
        m.d.comb += slot.eq(Mux(fresh, first_slot, slot_r))
        fold_done = slot == last_slot
        m.d.comb += i.ready.eq(adv & fold_done)
        with m.If(adv & i.valid):
            with m.If(fold_done):
                m.d.sync += fresh.eq(1)
            with m.Else():
                m.d.sync += [fresh.eq(0), slot_r.eq(slot + 1)]

        # ---- stage 0: route slice bits to bricks (per slot), register them ----
        w_word, a_word = i.payload.w, i.payload.a
        wsl = [
            [
                self._slices(lane(w_word, p * simd + s, wb), wb, self.wkind, self.cw_max)
                for s in range(simd)
            ]
            for p in range(pe)
        ]
        asl = [self._slices(lane(a_word, s, ab), ab, self.akind, self.ca_max) for s in range(simd)]
        tags = {"valid": i.valid, "last": i.payload.last & fold_done}
        tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}

        # With a single slot there is no routing: the brick tables read the input word and
        # their outputs are registered (LUT and flip-flop share a logic cell). Otherwise the
        # routed inputs are registered and the tables read the registers.
        direct = n_slots == 1
        brick = _make_brick_fn(self.wkind == "bipolar", self.akind == "bipolar")

        def route(b, keyfn, valfn, width, name):
            """Brick input, registered in stage 0 unless ``direct`` (``Const`` stays)."""
            mux, key = self._routed(m, slot, b, keyfn, valfn, width, name)
            if mux is None:
                mux = Const(0, width) if key is None else valfn(key)
            return mux if isinstance(mux, Const) or direct else pipe.stage(mux, name)

        def group_set(b):
            return sorted({d[1] + d[2] for s in self.slots if (d := s[b]) is not None})

        # brick inputs shared by all rows: activation slice bits, sign flag, shift group
        a_bits, a_flag, a_act, g_sel = [], [], [], []
        bipolar = "bipolar" in (self.wkind, self.akind)
        for b in range(self.bricks):
            a_bits.append(
                [
                    route(
                        b,
                        lambda d: (d[0], d[2]),
                        lambda key, j=j: asl[key[0]][key[1]][j],
                        1,
                        f"a{b}_{j}",
                    )
                    for j in range(2)
                ]
            )
            a_flag.append(route(b, lambda d: d[4], lambda key: Const(key, 1), 1, f"as{b}"))
            # idle slots route zeros, which is a zero product unless an operand is bipolar
            a_act.append(
                route(b, lambda d: 1, lambda key: Const(1, 1), 1, f"act{b}") if bipolar else None
            )
            gs = group_set(b)
            if len(gs) > 1:
                width = max(self.groups - 1, 1).bit_length()
                g_sel.append(route(b, lambda d: d[1] + d[2], lambda key: key, width, f"g{b}"))
            else:
                g_sel.append(gs[0] if gs else None)

        rows = []  # per row, per group: (leaves, extra terms)
        for p in range(pe):
            leaves: list[list] = [[] for _ in range(self.groups)]
            extra: list[list] = [[] for _ in range(self.groups)]
            for b in range(self.bricks):
                if g_sel[b] is None:
                    continue  # idle in every slot
                w_bits = [
                    route(
                        b,
                        lambda d: (d[0], d[1]),
                        lambda key, j=j, p=p: wsl[p][key[0]][key[1]][j],
                        1,
                        f"w{p}_{b}_{j}",
                    )
                    for j in range(2)
                ]
                w_flag = route(b, lambda d: d[3], lambda key: Const(key, 1), 1, f"ws{p}_{b}")
                bits = [*w_bits, *a_bits[b], w_flag, a_flag[b]]
                if a_act[b] is not None:
                    bits.append(a_act[b])
                if isinstance(g_sel[b], int):
                    leaves[g_sel[b]].append((bits, brick))
                else:
                    prod = lut_table_consts(m, bits, brick, f"brick{p}_{b}")
                    for g in group_set(b):
                        extra[g].append(Mux(g_sel[b] == g, prod, 0))
            rows.append((leaves, extra))

        # ---- stage 1: per row and shift group, a LUT4-packed adder tree; then fuse ----
        sums_lat = []
        for p, (leaves, extra) in enumerate(rows):
            row = []
            for g in range(self.groups):
                if leaves[g] or extra[g]:
                    total, lat = leaf_sum(
                        m,
                        pipe,
                        leaves[g],
                        extra=extra[g],
                        reg_every=self.reg_every,
                        reg_leaves=direct,
                        name=f"r{p}g{g}",
                    )
                    row.append((g, total, lat))
            sums_lat.append(row)
        tree_lat = max((lat for row in sums_lat for _, _, lat in row), default=int(direct))
        partials = []
        for p, row in enumerate(sums_lat):
            shifted = []
            for g, total, lat in row:
                for _ in range(tree_lat - lat):
                    total = pipe.stage(total, f"r{p}g{g}_d")
                # registered group sum: the fusion adders start from a register
                shifted.append(pipe.stage(total, f"r{p}g{g}_s") << (2 * g))
            # fuse the shift groups (the widest adders: pipelined like the group trees)
            combined, fuse_lat = adder_tree(
                pipe, shifted, reg_every=self.reg_every, name=f"r{p}_fuse"
            )
            partials.append(pipe.stage(combined, f"partial{p}"))
        # stage 0 (routing or leaf registers) is the tags' first stage
        self._tree_latency = tree_lat - int(direct) + 1 + fuse_lat
        for _ in range(self._tree_latency + 1):
            tags = {k: pipe.stage(v, f"tag_{k}", reset=k == "valid") for k, v in tags.items()}
        m.d.comb += [out.valid.eq(tags["valid"]), out.last.eq(tags["last"])]
        out.connect(partials, pipe)
        return m


def lut_table_consts(m, bits, fn, name):
    """:func:`~bitfab.hw.arrays.common.lut_table` with ``Const`` inputs folded into the table."""
    consts = {i: b.value & 1 for i, b in enumerate(bits) if isinstance(b, Const)}
    var = [b for b in bits if not isinstance(b, Const)]

    def fn_var(*xs):
        it = iter(xs)
        return fn(*[consts[i] if i in consts else next(it) for i in range(len(bits))])

    if not var:
        v = fn_var()
        return Const(v, signed(max(int_bits(v), 1)))
    return lut_table(m, var, fn_var, name)


__all__ = ["BitFusionArray"]
