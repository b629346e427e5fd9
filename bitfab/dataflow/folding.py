"""PE/SIMD folding: per-layer cycle and LUT estimates, and the choice of folding for a target.

Folding parameters per HW layer (FINN's names and constraints):

=========================  ======  =====================  ========================================
op type                    PE      SIMD                   constraint
=========================  ======  =====================  ========================================
MVAU                       yes     yes                    MH % PE == 0, MW % SIMD == 0
Thresholding               yes     -                      NumChannels % PE == 0
ConvolutionInputGenerator  -       yes (parallel_window)  IFMChannels % SIMD == 0;
                                                          ``parallel_window=1`` needs
                                                          SIMD == IFMChannels and depthwise=0;
                                                          depthwise=1: SIMD == consumer's PE
Pool                       yes     -                      Channels % PE == 0;
                                                          PE == SIMD of the depthwise SWG before it
LabelSelect                yes     -                      Labels % PE == 0
FMPadding                  -       yes                    NumChannels % SIMD == 0
                                                          (free: not tied to the SWG after it)
=========================  ======  =====================  ========================================

A folding of one layer is a :class:`Fold` ``(PE, SIMD, parallel_window)`` (1, 1 and 0 where the
op has no such attribute). **Tie**: a depthwise ``ConvolutionInputGenerator`` (FINN's max-pool
lowering, also its depthwise-conv lowering) streams its window straight into its consumer in the
depthwise order ``(C/SIMD, K_h, K_w, SIMD)``, which only the consumer's PE lanes can take:
FINN's SetFolding sets the SWG's SIMD to the consumer's PE, and bitfab's compiler rejects a
mismatch. The layer shape records the consumer (:attr:`LayerShape.simd_tied_to`) and every
choice below folds the pair as one unit over their common divisors.

An ``FMPadding`` (FINN's padding in front of the sliding window of a ``padding > 0`` convolution)
streams whole NHWC pixels in ``NumChannels/SIMD`` words, as the non-depthwise sliding window it
feeds takes them; bitfab's compiler puts a width converter between unequal word widths, so its
SIMD is chosen on its own (not tied): the folding gives it the cheapest SIMD that keeps it off
the critical path.

Cycle estimates (clock cycles per image) are FINN's ``get_exp_cycles`` formulas:

- MVAU: ``MH/PE * MW/SIMD * prod(numInputVectors)``.
- Thresholding: ``NumChannels/PE * prod(numInputVectors)``.
- ConvolutionInputGenerator: FINN's RTL sliding-window generator, default style (the HW-layer
  base class returns 0): with ``cf = IFMChannels/SIMD``,
  ``((K_h-1)*D_h*IFM_w + (K_w-1)*D_w + 1)*cf + OFM_h * max(OFM_w*K_w*K_h*cf, S_w*IFM_w*cf)``
  (+ FINN's depthwise correction terms; 1-D windows use FINN's 1-D formula).
  With ``parallel_window=1`` (SIMD == IFMChannels): one input pixel per cycle, each output word
  the whole ``K_h*K_w*SIMD`` window: ``IFM_h * IFM_w`` (bitfab's hardware contract; FINN's
  parallel style counts 2 cycles more).
- Pool: ``Channels*prod(KernelSize)/PE * prod(OutImgDims) * BatchSize``.
- LabelSelect: ``Labels/PE``.
- FMPadding: ``NumChannels/SIMD * prod(numInputVectors) * OH * OW`` with ``OH = H + top + bottom``,
  ``OW = W + left + right`` (one output word per cycle, padding words included).

LUTs: :mod:`bitfab.dataflow.cost` (the one cost model), before any PE array is chosen (MVAUs
costed as bit-parallel).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from bitfab.dataflow import cost
from bitfab.errors import BitfabError

#: HW op types that bitfab's dataflow graphs contain (anything else is reported as non-HW).
HW_OP_TYPES = (
    "MVAU",
    "Thresholding",
    "ConvolutionInputGenerator",
    "Pool",
    "LabelSelect",
    "FMPadding",
)

# which folding attributes each op type has: (has PE, has SIMD)
_FOLD_ATTRS = {
    "MVAU": (True, True),
    "Thresholding": (True, False),
    "ConvolutionInputGenerator": (False, True),
    "Pool": (True, False),
    "LabelSelect": (True, False),
    "FMPadding": (False, True),
}

#: keys a ``--folding`` file may give per layer
FOLDING_KEYS = ("PE", "SIMD", "parallel_window")


class Fold(NamedTuple):
    """One layer's folding: PE, SIMD (1 where the op has none) and parallel_window (0/1, SWG only)."""

    pe: int
    simd: int
    parallel_window: int = 0


@dataclass(frozen=True)
class LayerShape:
    """What folding needs to know about one HW layer (sizes in elements, widths in bits).

    ``pe_dim``/``simd_dim`` are the sizes PE and SIMD must divide (1 if the op has no such
    attribute): MVAU MH/MW, Thresholding NumChannels, ConvolutionInputGenerator IFMChannels, Pool
    Channels, LabelSelect Labels, FMPadding NumChannels (SIMD). ``attrs`` holds the op's remaining FINN node attributes used by
    the cycle formula (``numInputVectors``, ``IFMDim``, ``OFMDim``, ``ConvKernelDim`` ...).
    ``simd_tied_to`` names the layer whose PE must equal this layer's SIMD (the consumer of a
    depthwise ConvolutionInputGenerator), or None.
    """

    name: str
    op_type: str
    pe_dim: int = 1
    simd_dim: int = 1
    in_bits: int = 1
    weight_bits: int = 0
    acc_bits: int = 0
    out_bits: int = 1
    thres_steps: int = 0
    xnor: bool = False
    attrs: Mapping[str, object] = field(default_factory=dict)
    simd_tied_to: str | None = None

    @property
    def has_pe(self) -> bool:
        return _FOLD_ATTRS[self.op_type][0]

    @property
    def has_simd(self) -> bool:
        return _FOLD_ATTRS[self.op_type][1]

    @property
    def can_parallel_window(self) -> bool:
        """True for a non-depthwise ConvolutionInputGenerator (parallel_window=1 is legal at
        SIMD == IFMChannels)."""
        return self.op_type == "ConvolutionInputGenerator" and not self.attrs.get("depthwise", 0)


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def fold_options(layer: LayerShape) -> list[Fold]:
    """Every legal :class:`Fold` of a layer on its own (ties to neighbours not applied)."""
    pes = divisors(layer.pe_dim) if layer.has_pe else [1]
    simds = divisors(layer.simd_dim) if layer.has_simd else [1]
    opts = [Fold(p, s, 0) for p in pes for s in simds]
    if layer.can_parallel_window:
        opts.append(Fold(1, layer.simd_dim, 1))
    return opts


def check_folding(layer: LayerShape, pe: int, simd: int, parallel_window: int = 0) -> None:
    """Raise :class:`BitfabError` naming the layer and the constraint if the folding is illegal
    for the layer on its own (see :func:`check_ties` for the constraints between layers)."""
    op = layer.op_type
    pe_name = {
        "MVAU": "MH",
        "Thresholding": "NumChannels",
        "Pool": "Channels",
        "LabelSelect": "Labels",
    }.get(op)
    simd_name = {
        "MVAU": "MW",
        "ConvolutionInputGenerator": "IFMChannels",
        "FMPadding": "NumChannels",
    }.get(op)
    for value, what in ((pe, "PE"), (simd, "SIMD")):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise BitfabError(
                f"layer {layer.name} ({op}): {what}={value!r} must be a positive integer"
            )
    if layer.has_pe and layer.pe_dim % pe:
        raise BitfabError(
            f"layer {layer.name} ({op}): PE={pe} does not divide {pe_name}={layer.pe_dim}; "
            f"choose PE from {divisors(layer.pe_dim)}"
        )
    if layer.has_simd and layer.simd_dim % simd:
        raise BitfabError(
            f"layer {layer.name} ({op}): SIMD={simd} does not divide {simd_name}={layer.simd_dim}; "
            f"choose SIMD from {divisors(layer.simd_dim)}"
        )
    if not layer.has_pe and pe != 1:
        raise BitfabError(f"layer {layer.name} ({op}) has no PE attribute; drop PE={pe}")
    if not layer.has_simd and simd != 1:
        raise BitfabError(f"layer {layer.name} ({op}) has no SIMD attribute; drop SIMD={simd}")
    if parallel_window not in (0, 1) or isinstance(parallel_window, bool):
        raise BitfabError(
            f"layer {layer.name} ({op}): parallel_window={parallel_window!r} must be 0 or 1"
        )
    if parallel_window:
        if op != "ConvolutionInputGenerator":
            raise BitfabError(
                f"layer {layer.name} ({op}) has no parallel_window attribute "
                "(only ConvolutionInputGenerator); drop it"
            )
        if not layer.can_parallel_window:
            raise BitfabError(
                f"layer {layer.name} ({op}): parallel_window=1 is not supported for a depthwise "
                "sliding window (max pool); set parallel_window=0"
            )
        if simd != layer.simd_dim:
            raise BitfabError(
                f"layer {layer.name} ({op}): parallel_window=1 needs SIMD == IFMChannels="
                f"{layer.simd_dim}, got SIMD={simd}; set SIMD={layer.simd_dim}"
            )


def _ties(layers: Sequence[LayerShape]) -> list[tuple[str, str]]:
    """``(swg, consumer)`` name pairs whose SWG SIMD must equal the consumer's PE."""
    names = {ly.name: ly for ly in layers}
    ties = []
    for ly in layers:
        if ly.simd_tied_to is None:
            continue
        other = names.get(ly.simd_tied_to)
        if other is None or not other.has_pe:
            raise BitfabError(
                f"layer {ly.name} ({ly.op_type}): its SIMD is tied to the PE of "
                f"{ly.simd_tied_to!r}, which is not a HW layer with PE among the layers given"
            )
        ties.append((ly.name, other.name))
    return ties


def check_ties(layers: Sequence[LayerShape], fold: Mapping[str, Sequence[int]]) -> None:
    """Raise :class:`BitfabError` naming both layers if a depthwise sliding window's SIMD differs
    from its consumer's PE in ``fold`` (``fold[name] = (PE, SIMD[, parallel_window])``)."""
    by_name = {ly.name: ly for ly in layers}
    for a, b in _ties(layers):
        simd, pe = fold[a][1], fold[b][0]
        if simd != pe:
            common = sorted(set(divisors(by_name[a].simd_dim)) & set(divisors(by_name[b].pe_dim)))
            raise BitfabError(
                f"folding: layer {a} (depthwise ConvolutionInputGenerator) SIMD={simd} must equal "
                f"the PE={pe} of {b} ({by_name[b].op_type}) it feeds; give both the same value "
                f"from {common}"
            )


def _prod(xs: Iterable[int]) -> int:
    return math.prod(int(x) for x in xs)


def _swg_cycles(attrs: Mapping[str, object], ifm_ch: int, simd: int) -> int:
    """FINN's ConvolutionInputGenerator_rtl.get_exp_cycles, default (non-parallel) style."""
    k_h, k_w = attrs["ConvKernelDim"]
    ifm_h, ifm_w = attrs["IFMDim"]
    ofm_h, ofm_w = attrs["OFMDim"]
    s_h, s_w = attrs.get("Stride", (1, 1))
    d_h, d_w = attrs.get("Dilation", (1, 1))
    depthwise = bool(attrs.get("depthwise", 0))
    cf = ifm_ch // simd
    if ifm_h == 1 or ifm_w == 1:  # 1-D: normalise to a horizontal window, as FINN does
        if ifm_w == 1:
            k_w, ifm_w, ofm_w, s_w = k_h, ifm_h, ofm_h, s_h
        if depthwise:
            cycles_out = ofm_w * k_w * cf + (cf - 1) * k_w
            cycles_in = ifm_w * cf + cf * (k_w - 1) * (s_w - 1)
            return int(max(cycles_out, cycles_in) + 2)
        return int(ofm_w * k_w * cf + 2)
    buffer_min = ((k_h - 1) * d_h * ifm_w + (k_w - 1) * d_w + 1) * cf
    max_cycles = max(ofm_w * k_w * k_h * cf, s_w * ifm_w * cf)
    if depthwise:
        max_cycles += ofm_w * (s_w - 1) * (cf - 1)
    cycles = buffer_min + ofm_h * max_cycles
    if depthwise:
        cycles += (s_h - 1) * ifm_w * cf
    return int(cycles)


def _padded_dim(attrs: Mapping[str, object]) -> tuple[int, int]:
    """FMPadding's output ``(OH, OW)`` from ``ImgDim [H, W]`` and ``Padding [top, left, bottom,
    right]`` (FINN's ``get_padded_odim``)."""
    h, w = attrs["ImgDim"]
    top, left, bottom, right = attrs["Padding"]
    return int(h + top + bottom), int(w + left + right)


def exp_cycles(layer: LayerShape, pe: int, simd: int, parallel_window: int = 0) -> int:
    """Estimated clock cycles per image of one layer at a folding (FINN's formulas; module doc)."""
    a = layer.attrs
    op = layer.op_type
    nvec = _prod(a.get("numInputVectors", [1]))
    if op == "MVAU":
        return (layer.pe_dim // pe) * (layer.simd_dim // simd) * nvec
    if op == "Thresholding":
        return (layer.pe_dim // pe) * nvec
    if op == "ConvolutionInputGenerator":
        if parallel_window:
            return _prod(a["IFMDim"])
        return _swg_cycles(a, layer.simd_dim, simd)
    if op == "Pool":
        k = _prod(a["KernelSize"])
        return int(layer.pe_dim * k / pe * _prod(a["OutImgDims"]) * int(a.get("BatchSize", 1)))
    if op == "LabelSelect":
        return layer.pe_dim // pe
    if op == "FMPadding":
        oh, ow = _padded_dim(a)
        return (layer.simd_dim // simd) * nvec * oh * ow
    raise BitfabError(f"layer {layer.name}: no cycle model for op type {op}")


def lut_estimate(layer: LayerShape, pe: int, simd: int, parallel_window: int = 0) -> int:
    """Estimated LUT4-equivalents of one layer at a folding (:func:`bitfab.dataflow.cost.luts`,
    no PE array chosen yet)."""
    if layer.op_type not in HW_OP_TYPES:
        raise BitfabError(f"layer {layer.name}: no LUT model for op type {layer.op_type}")
    taps = _prod(layer.attrs["ConvKernelDim"]) if parallel_window else 1
    return cost.luts(
        cost.LayerCost(
            layer.op_type,
            pe=pe,
            simd=simd,
            in_bits=layer.in_bits,
            weight_bits=layer.weight_bits,
            acc_bits=layer.acc_bits,
            out_bits=layer.out_bits,
            steps=layer.thres_steps,
            xnor=layer.xnor,
            parallel_window=bool(parallel_window),
            taps=taps,
        )
    )


@dataclass(frozen=True)
class FoldingPlan:
    """A chosen folding: ``fold[name] = Fold(PE, SIMD, parallel_window)`` plus its estimates.

    ``cycles`` is the slowest layer's cycles per image (the pipeline's initiation interval),
    ``luts`` the summed LUT estimate, ``target_met`` False if a cycle target was unreachable
    (then every layer that cannot reach it is at its fastest folding).
    """

    fold: dict[str, Fold]
    cycles: int
    bottleneck: str
    luts: int
    target_met: bool = True


def _plan(layers: Sequence[LayerShape], fold: dict[str, Fold], met: bool) -> FoldingPlan:
    check_ties(layers, fold)
    cyc = {ly.name: exp_cycles(ly, *fold[ly.name]) for ly in layers}
    bottleneck = max(cyc, key=lambda n: cyc[n]) if cyc else ""
    luts = sum(lut_estimate(ly, *fold[ly.name]) for ly in layers)
    return FoldingPlan(fold, cyc.get(bottleneck, 0), bottleneck, luts, met)


@dataclass(frozen=True)
class UnitOption:
    """A joint folding of one unit (a layer, or a tied group): its slowest layer's cycles, its
    summed LUTs and ``fold`` as ``((layer name, Fold), ...)``."""

    cycles: int
    luts: int
    fold: tuple[tuple[str, Fold], ...]


def fold_units(layers: Sequence[LayerShape]) -> list[list[UnitOption]]:
    """The layers grouped into units that are folded together (a layer alone, or a depthwise
    sliding window with its consumer), each with every legal joint folding as a
    :class:`UnitOption` (``cycles`` the unit's slowest layer, ``luts`` its sum)."""
    parent = {ly.name: ly.name for ly in layers}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    ties = _ties(layers)
    for a, b in ties:
        parent[root(a)] = root(b)
    groups: dict[str, list[LayerShape]] = {}
    for ly in layers:
        groups.setdefault(root(ly.name), []).append(ly)
    units = []
    for members in groups.values():
        names = [ly.name for ly in members]
        inner = [(names.index(a), names.index(b)) for a, b in ties if a in names]
        opts = []
        for combo in itertools.product(*(fold_options(ly) for ly in members)):
            if any(combo[i].simd != combo[j].pe for i, j in inner):
                continue
            opts.append(
                UnitOption(
                    max(exp_cycles(ly, *f) for ly, f in zip(members, combo, strict=True)),
                    sum(lut_estimate(ly, *f) for ly, f in zip(members, combo, strict=True)),
                    tuple(zip(names, combo, strict=True)),
                )
            )
        units.append(opts)
    return units


def _cheapest_within(unit: list[UnitOption], cycles: int) -> UnitOption | None:
    """Lowest-LUT option of a unit with at most ``cycles`` (ties: fewer cycles), or None."""
    fits = [o for o in unit if o.cycles <= cycles]
    return min(fits, key=lambda o: (o.luts, o.cycles, o.fold)) if fits else None


def _fastest(unit: list[UnitOption]) -> UnitOption:
    return min(unit, key=lambda o: (o.cycles, o.luts, o.fold))


def fold_for_target_cycles(layers: Sequence[LayerShape], target: int) -> FoldingPlan:
    """Cheapest folding (by the LUT model) whose slowest layer takes at most ``target`` cycles.

    Layers are independent except for tied pairs (a depthwise sliding window and its consumer),
    which are folded together: each unit gets its lowest-LUT legal folding within the target.
    A unit that cannot reach the target even fully parallel gets its fastest folding and
    ``target_met`` is False. A ConvolutionInputGenerator's ``parallel_window=1`` is one more
    option, so it is chosen exactly when the window at SIMD == IFMChannels is still too slow.
    """
    if target < 1:
        raise BitfabError(f"--target-cycles {target}: must be a positive number of cycles")
    fold: dict[str, Fold] = {}
    met = True
    for unit in fold_units(layers):
        choice = _cheapest_within(unit, target)
        if choice is None:
            met = False
            choice = _fastest(unit)
        fold.update(choice.fold)
    return _plan(layers, fold, met)


def fold_for_lut_budget(layers: Sequence[LayerShape], budget: int) -> FoldingPlan:
    """Fastest folding (lowest slowest-layer cycles) whose LUT estimate is within ``budget``.

    Among foldings with that cycle count, the cheapest. The minimal LUT need for a cycle bound
    falls as the bound grows, so a bisection over every cycle count a unit (layer or tied pair)
    can take finds it. Tied pairs and ``parallel_window`` are handled as in
    :func:`fold_for_target_cycles`.
    """
    if budget < 1:
        raise BitfabError(f"--lut-budget {budget}: must be a positive number of LUTs")
    units = fold_units(layers)
    candidates = sorted({o.cycles for unit in units for o in unit})
    if not candidates:
        return _plan(layers, {}, True)

    def cost(t: int) -> tuple[int, dict[str, Fold]] | None:
        fold: dict[str, Fold] = {}
        total = 0
        for unit in units:
            choice = _cheapest_within(unit, t)
            if choice is None:
                return None
            fold.update(choice.fold)
            total += choice.luts
        return total, fold

    lo, hi = 0, len(candidates) - 1
    top = cost(candidates[hi])
    assert top is not None
    if top[0] > budget:
        raise BitfabError(
            f"--lut-budget {budget}: even the slowest folding (PE=SIMD=1) needs about {top[0]} "
            f"LUTs by bitfab's estimate; raise the budget or use a smaller model"
        )
    while lo < hi:  # smallest index whose cost fits
        mid = (lo + hi) // 2
        c = cost(candidates[mid])
        if c is not None and c[0] <= budget:
            hi = mid
        else:
            lo = mid + 1
    found = cost(candidates[lo])
    assert found is not None
    return _plan(layers, found[1], True)


def fold_minimal(layers: Sequence[LayerShape]) -> FoldingPlan:
    """PE = SIMD = 1, parallel_window = 0 everywhere (FINN's default: least hardware, slowest;
    ties hold trivially)."""
    return _plan(layers, {ly.name: Fold(1, 1, 0) for ly in layers}, True)


def fold_given(layers: Sequence[LayerShape], given: Mapping[str, Mapping[str, int]]) -> FoldingPlan:
    """A user folding ``{layer name: {"PE": p, "SIMD": s, "parallel_window": 0|1}}``; unnamed
    layers and keys keep PE=SIMD=1, parallel_window=0.

    Raises :class:`BitfabError` for an unknown layer name or key, a violated constraint of one
    layer, or a depthwise sliding window whose SIMD differs from its consumer's PE.
    """
    by_name = {ly.name: ly for ly in layers}
    fold = {ly.name: Fold(1, 1, 0) for ly in layers}
    for name, cfg in given.items():
        if name not in by_name:
            raise BitfabError(f"folding: no HW layer named {name!r}; layers are {sorted(by_name)}")
        if not isinstance(cfg, Mapping):
            raise BitfabError(
                f'folding: layer {name}: expected an object like {{"PE": 1, "SIMD": 1}}'
            )
        unknown = set(cfg) - set(FOLDING_KEYS)
        if unknown:
            raise BitfabError(
                f"folding: layer {name}: unknown keys {sorted(unknown)} (use {', '.join(FOLDING_KEYS)})"
            )
        f = Fold(cfg.get("PE", 1), cfg.get("SIMD", 1), cfg.get("parallel_window", 0))
        check_folding(by_name[name], *f)
        fold[name] = f
    return _plan(layers, fold, True)
