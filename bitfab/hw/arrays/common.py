"""Shared parts of the PE arrays (bit-serial, bit-fusion, bit-parallel).

The contract itself (constructor, attributes, ports, streaming rules) is owned by
:class:`bitfab.hw.arrays.base.PEArray`; see also ``docs/architecture.md`` ("PE array contract")
and ``docs/hw_pe_arrays.md``. This module holds the parameter validation it runs, the payload
layouts of its ports, the value ranges that size the datapaths, and the small datapath builders
all three arrays use: LUT4-friendly leaf tables, pipelined balanced adder trees, and the
accumulate-and-output stage with its back-pressure logic.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, Value, signed, unsigned
from amaranth.lib import data

from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.types import KINDS, int_bits, signed_bits_for, value_range

MAX_BITS = 8
MAX_ACC_WIDTH = 64
#: Guard bits the default accumulator adds above one fold's range (2**8 = 256 folds).
DEFAULT_FOLD_GUARD_BITS = 8


def product_range(wbits: int, abits: int, wkind: str, akind: str) -> tuple[int, int]:
    """(min, max) of one product ``W*A``."""
    wl, wh = value_range(wkind, wbits)
    al, ah = value_range(akind, abits)
    corners = [wl * al, wl * ah, wh * al, wh * ah]
    return min(corners), max(corners)


def fold_range(simd: int, wbits: int, abits: int, wkind: str, akind: str) -> tuple[int, int]:
    """(min, max) of one fold's partial dot product (``simd`` products) of one PE row."""
    lo, hi = product_range(wbits, abits, wkind, akind)
    return simd * lo, simd * hi


def min_acc_width(simd: int, wbits: int, abits: int, wkind: str, akind: str) -> int:
    """Smallest accepted ``acc_width``: one fold's dot product must fit (signed)."""
    return signed_bits_for(*fold_range(simd, wbits, abits, wkind, akind))


@dataclass(frozen=True)
class ArrayParams:
    """Validated PE array parameters (widths in bits)."""

    pe: int
    simd: int
    wbits: int
    abits: int
    wkind: str
    akind: str
    acc_width: int


def _check_int(name: str, value, lo: int, hi: int | None, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer {what}, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def validate_params(
    pe, simd, wbits, abits, wkind, akind, acc_width=None, *, array: str = "PE array"
) -> ArrayParams:
    """Check the contract's constructor arguments; raise ``ValueError`` naming the bad one.

    ``acc_width=None`` picks the default: the width of one fold's dot product plus
    ``DEFAULT_FOLD_GUARD_BITS`` guard bits (exact for up to 256 folds per dot product; longer
    dot products wrap modulo ``2**acc_width``, as any fixed-width accumulator does).
    """
    pe = _check_int("pe", pe, 1, None, "in the range >= 1")
    simd = _check_int("simd", simd, 1, None, "in the range >= 1")
    for name, kind in (("wkind", wkind), ("akind", akind)):
        if kind not in KINDS:
            raise ValueError(f"{name} must be one of {', '.join(KINDS)}; got {kind!r}")
    wbits = _check_int("wbits", wbits, 1, MAX_BITS, f"in the range 1..{MAX_BITS}")
    abits = _check_int("abits", abits, 1, MAX_BITS, f"in the range 1..{MAX_BITS}")
    if wkind == "bipolar" and wbits != 1:
        raise ValueError(f"wbits must be 1 for bipolar weights (valid range 1..1), got {wbits}")
    if akind == "bipolar" and abits != 1:
        raise ValueError(f"abits must be 1 for bipolar activations (valid range 1..1), got {abits}")
    lo = min_acc_width(simd, wbits, abits, wkind, akind)
    if acc_width is None:
        acc_width = min(lo + DEFAULT_FOLD_GUARD_BITS, MAX_ACC_WIDTH)
    acc_width = _check_int(
        "acc_width",
        acc_width,
        lo,
        MAX_ACC_WIDTH,
        f"in the range {lo}..{MAX_ACC_WIDTH} for this {array} (one fold of {simd} "
        f"{wkind} {wbits}-bit x {akind} {abits}-bit products needs {lo} bits)",
    )
    return ArrayParams(pe, simd, wbits, abits, wkind, akind, acc_width)


def silence_on_error(init):
    """Decorator for array constructors: an instance whose ``__init__`` raised (bad
    parameters) is not reported by Amaranth as an unused elaboratable."""

    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except Exception:
            unused_ok(self)
            raise

    return wrapper


def input_layout(pe: int, simd: int, wbits: int, abits: int) -> data.StructLayout:
    """Payload layout of the fold stream ``i``."""
    return data.StructLayout({"w": pe * simd * wbits, "a": simd * abits, "last": 1})


def output_layout(pe: int, acc_width: int) -> data.ArrayLayout:
    """Payload layout of the result stream ``o`` (lane ``p`` = PE row ``p``)."""
    return data.ArrayLayout(signed(acc_width), pe)


# ---------------------------------------------------------------------------------------------
# Datapath builders
# ---------------------------------------------------------------------------------------------


def lane(word: Value, index: int, width: int) -> Value:
    """Raw bits of lane ``index`` (``width`` bits) of a packed word."""
    return word[index * width : (index + 1) * width]


def lut_table(m: Module, inputs: Sequence[Value], fn: Callable[..., int], name: str) -> Signal:
    """A small combinational function of single bits, given as a truth table.

    ``fn(*bits) -> int`` is evaluated for every input combination at elaboration; the result
    signal is just wide enough, unsigned when no value is negative. Each output bit is a function of the inputs only, so
    Yosys/ABC map it to one LUT4 when there are at most 4 inputs (e.g. two XNOR products and
    their sum, or one 2x2-bit BitBrick).
    """
    n = len(inputs)
    table = [fn(*[(code >> k) & 1 for k in range(n)]) for code in range(1 << n)]
    if min(table) >= 0:  # unsigned: cheaper adders (no sign extension)
        width = max(max(table).bit_length(), 1)
        shape = unsigned(width)
    else:
        width = max(int_bits(v) for v in table)
        shape = signed(width)
    rom = 0
    for code, v in enumerate(table):
        rom |= (v & ((1 << width) - 1)) << (code * width)
    out = Signal(shape, name=name)
    # a constant word indexed by the inputs: a $shiftx of a constant, which Yosys/ABC reduce
    # to one LUT per output bit (and which simulates as one shift in Amaranth's simulator)
    m.d.comb += out.eq(Const(rom, width << n).word_select(Cat(*inputs), width))
    return out


class Pipeline:
    """Registers of a stall-together pipeline: every register loads only when ``adv`` is high.

    ``stage(value)`` returns a register holding ``value`` one advancing cycle later.
    """

    def __init__(self, m: Module, adv: Value, domain: str = "sync"):
        self.m = m
        self.adv = adv
        self.domain = domain
        self._n = 0
        self.bits = 0  # register bits created (sizes the enable fan-out)

    def stage(self, value: Value, name: str = "pipe", *, reset: bool = False) -> Signal:
        """``reset=True`` for control bits (valid flags); data registers have no reset, which
        keeps their flip-flops free of reset/enable merging logic."""
        value = Value.cast(value)
        self._n += 1
        reg = Signal(value.shape(), name=f"{name}_r{self._n}", reset_less=not reset)
        self.bits += len(reg)
        with self.m.If(self.adv):
            self.m.d[self.domain] += reg.eq(value)
        return reg


def tree_latency(n_terms: int, reg_every: int) -> int:
    """Register stages :func:`adder_tree` inserts for ``n_terms`` terms."""
    depth, lat = 0, 0
    while n_terms > 1:
        n_terms = (n_terms + 1) // 2
        depth += 1
        if reg_every and depth % reg_every == 0 and n_terms > 1:
            lat += 1
    return lat


def adder_tree(
    pipe: Pipeline, values: Sequence[Value], *, reg_every: int = 2, name: str = "sum"
) -> tuple[Value, int]:
    """Balanced adder tree over ``values`` (signed or unsigned), pipelined.

    A register stage is inserted after every ``reg_every`` adder levels (0 = never). Each level
    adds neighbours pairwise, so each adder is one carry chain as wide as its operands + 1 bit.
    Returns ``(sum, latency_in_cycles)``.
    """
    level = [Value.cast(v) for v in values]
    if not level:
        return Const(0, 1), 0
    latency = 0
    depth = 0
    while len(level) > 1:
        nxt = []
        for k in range(0, len(level) - 1, 2):
            nxt.append(level[k] + level[k + 1])
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
        depth += 1
        if reg_every and depth % reg_every == 0 and len(level) > 1:
            level = [pipe.stage(v, name=f"{name}_l{depth}") for v in level]
            latency += 1
    return level[0], latency


def _is_const(v) -> bool:
    return isinstance(v, Const)


def leaf_sum(
    m: Module,
    pipe: Pipeline,
    leaves: Sequence[tuple[Sequence[Value], Callable[..., int]]],
    *,
    extra: Sequence[Value] = (),
    reg_every: int = 2,
    reg_leaves: bool = False,
    name: str = "sum",
) -> tuple[Value, int]:
    """Sum of small truth-table terms, mapped for LUT4 + carry-chain fabrics.

    ``leaves``: ``(bits, fn)`` pairs; ``fn(*bits) -> int`` is the term's value for single-bit
    inputs ``bits`` (``Const`` bits are folded into the table). ``extra``: terms that are
    already signals (summed as they are). The builder

    1. packs consecutive terms into one table while they have at most 4 variable inputs in all
       (e.g. two XNOR or AND products), so each table output bit is one LUT4 and the operand
       logic costs nothing;
    2. factors out ``2**k`` when every table is constant modulo ``2**k`` (e.g. a pair of
       bipolar products is -2/0/+2): the tables shrink by ``k`` bits;
    3. makes every table unsigned (subtracting its minimum) when that pays for the constant
       added after the tree (its low ``k`` bits are free);
    4. adds the tables in a balanced, pipelined :func:`adder_tree` (``reg_leaves``: register
       the terms first, one more cycle of latency).

    Returns ``(sum, latency_in_cycles)``.
    """
    norm = []  # (variable bits, fn of variable bits)
    for bits, fn in leaves:
        consts = {i: b.value & 1 for i, b in enumerate(bits) if _is_const(b)}
        var = [b for b in bits if not _is_const(b)]
        n_all = len(bits)

        def fn_var(*xs, fn=fn, consts=consts, n_all=n_all):
            it = iter(xs)
            return fn(*[consts[i] if i in consts else next(it) for i in range(n_all)])

        norm.append((var, fn_var))
    packed: list[tuple[list, list]] = []  # (bits, [(n_bits, fn), ...])
    for var, fn in norm:
        if packed and len(packed[-1][0]) + len(var) <= 4:
            packed[-1][0].extend(var)
            packed[-1][1].append((len(var), fn))
        else:
            packed.append((list(var), [(len(var), fn)]))

    def table_of(parts):
        def total(*xs):
            acc, pos = 0, 0
            for n, fn in parts:
                acc += fn(*xs[pos : pos + n])
                pos += n
            return acc

        return total

    tables = []
    for bits, parts in packed:
        fn = table_of(parts)
        values = [fn(*[(c >> j) & 1 for j in range(len(bits))]) for c in range(1 << len(bits))]
        tables.append((bits, fn, values))
    k = 0
    if not extra and tables:
        while k < 6 and all(len({v % (2 << k) for v in vals}) == 1 for _, _, vals in tables):
            k += 1
    # every table becomes unsigned (minus its minimum): unsigned adder trees map to plain
    # carry chains, signed ones cost sign-extension logic. The offsets and residues are one
    # constant, added at the end...
    const = 0
    terms = []
    lows = [min((v - vals[0] % (1 << k)) >> k for v in vals) for _, _, vals in tables]
    # ... unless that constant needs an adder of its own and the tree is small (measured on
    # iCE40: the unsigned tree wins from ~12 tables up, e.g. 111 vs 118 LUT4 at 32 XNOR lanes,
    # and loses below, 66 vs 62 at 16 lanes)
    u_const = sum(
        (low << k) + vals[0] % (1 << k) for low, (_, _, vals) in zip(lows, tables, strict=True)
    )
    use_unsigned = u_const >> k == 0 or len(tables) >= 12
    for idx, (bits, fn, vals) in enumerate(tables):
        r = vals[0] % (1 << k)
        low = lows[idx] if use_unsigned else 0
        const += (low << k) + r

        def scaled(*xs, fn=fn, r=r, low=low):
            return ((fn(*xs) - r) >> k) - low

        if bits:
            terms.append(lut_table(m, bits, scaled, name=f"{name}_t{idx}"))
    terms.extend(extra)
    if not terms:
        return Const(const, signed(int_bits(const))), int(reg_leaves)
    if reg_leaves:
        terms = [pipe.stage(t, name=f"{name}_leaf") for t in terms]
    total, lat = adder_tree(pipe, terms, reg_every=reg_every, name=name)
    lat += int(reg_leaves)
    c_hi, c_lo = divmod(const, 1 << k)
    if c_hi:
        total = total + c_hi
    if k:
        total = (
            Cat(Const(c_lo, k), total).as_signed()
            if total.shape().signed
            else Cat(Const(c_lo, k), total)
        )
    return total, lat


def sign_extend_lane(bits: Value, kind: str, width: int) -> Value:
    """A raw lane as a numeric value of its kind (bipolar -> -1/+1)."""
    if kind == "bipolar":
        return Mux(bits[0], Const(1, signed(2)), Const(-1, signed(2)))
    if kind == "signed":
        return bits.as_signed()
    return bits.as_unsigned()


#: Pipelines with more register bits than this get an output skid buffer (registered ``adv``).
#: Off by default: measured on a 4x16 W4A4 bit-fusion array, the skid's multiplexer in front of
#: the accumulator costs more on iCE40 (52.5 -> 47.6 MHz UP5K) than the registered ``adv``
#: gains, while ECP5 gains (149.4 -> 167.0 MHz). Lower it (e.g. to 1024) for ECP5 builds.
SKID_MIN_BITS = 1 << 30


class AccumulateOutput:
    """Dot-product accumulator per PE row and the registered output stream.

    Fed by the last pipeline stage with ``valid`` (a partial sum is present) and ``last`` (it
    closes the dot product: write the sum to ``o``). The accumulator register is cleared (its
    flip-flops' synchronous reset) when a dot product closes, so the first partial of the next
    one needs no multiplexer: one ``acc_width``-bit adder per row.

    ``self.adv`` is the pipeline-wide advance enable. Without a skid buffer it is
    combinational: low only when a closing partial meets an output word that has not been
    taken (``o.valid & ~o.ready``), so it depends on ``o.ready`` through one LUT and fans out
    to every pipeline register. With a skid buffer (``skid=True``, or ``"auto"`` for pipelines
    of more than ``SKID_MIN_BITS`` register bits, off by default) ``adv`` is a flip-flop: a blocked partial is
    parked in a one-entry skid register (one partial-width multiplexer per row) and the
    pipeline stops the cycle after. Either way ``adv`` never depends on ``i.valid``.
    """

    def __init__(self, m: Module, o, pe: int, acc_width: int, *, skid="auto"):
        if skid not in (True, False, "auto"):
            raise ValueError(f"skid must be True, False or 'auto', got {skid!r}")
        self.m = m
        self.o = o
        self.pe = pe
        self.acc_width = acc_width
        self.skid = skid
        self.valid = Signal(name="acc_in_valid")
        self.last = Signal(name="acc_in_last")
        self.adv = Signal(name="adv", init=1)
        self.used_skid = None

    def connect(self, partials: Sequence[Value], pipe: Pipeline | None = None) -> None:
        """Accumulate ``partials[p]`` (signed values) into row ``p``; builds the output logic."""
        m, o = self.m, self.o
        skid = self.skid
        if skid == "auto":
            skid = pipe is not None and pipe.bits > SKID_MIN_BITS
        self.used_skid = skid
        partials = [Value.cast(v) for v in partials]
        if skid:
            s_valid = Signal(name="skid_valid")
            s_last = Signal(name="skid_last", reset_less=True)
            s_data = [
                Signal(v.shape(), name=f"skid{p}", reset_less=True) for p, v in enumerate(partials)
            ]
            valid = s_valid | self.valid
            last = Mux(s_valid, s_last, self.last)
            items = [Mux(s_valid, sd, v) for sd, v in zip(s_data, partials, strict=True)]
        else:
            valid, last, items = self.valid, self.last, partials
        blocked = last & o.valid & ~o.ready
        take = Signal(name="acc_take")
        m.d.comb += take.eq(valid & ~blocked)
        if skid:
            # the pipeline moved while the item at its end could not be taken: park it
            with m.If(~s_valid & self.valid & ~take):
                m.d.sync += [s_valid.eq(1), s_last.eq(self.last)]
                m.d.sync += [sd.eq(v) for sd, v in zip(s_data, partials, strict=True)]
            with m.Elif(s_valid & take):
                m.d.sync += s_valid.eq(0)
            m.d.sync += self.adv.eq(~(valid & ~take))
        else:
            m.d.comb += self.adv.eq(~(self.valid & blocked))
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        # one synchronous clear (domain reset or a closing partial) and one enable for all
        # accumulator bits: maps onto the flip-flops' own reset and enable pins
        clear = ResetSignal() | (take & last)
        for p, part in enumerate(items):
            acc = Signal(signed(self.acc_width), name=f"acc{p}", reset_less=True)
            nxt = Signal(signed(self.acc_width), name=f"acc_next{p}")
            m.d.comb += nxt.eq(acc + part)
            with m.If(clear):
                m.d.sync += acc.eq(0)
            with m.Elif(take):
                m.d.sync += acc.eq(nxt)
            with m.If(take & last):
                m.d.sync += o.payload[p].eq(nxt)
        with m.If(take & last):
            m.d.sync += o.valid.eq(1)


__all__ = [
    "AccumulateOutput",
    "ArrayParams",
    "SKID_MIN_BITS",
    "Pipeline",
    "adder_tree",
    "fold_range",
    "int_bits",
    "input_layout",
    "lane",
    "lut_table",
    "min_acc_width",
    "output_layout",
    "leaf_sum",
    "product_range",
    "sign_extend_lane",
    "silence_on_error",
    "tree_latency",
    "validate_params",
]
