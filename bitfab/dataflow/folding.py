"""PE/SIMD folding: per-layer cycle and LUT estimates, and the choice of folding for a target.

Folding parameters per HW layer (FINN's names and constraints):

=========================  ======  =====================  ================================
op type                    PE      SIMD                   constraint
=========================  ======  =====================  ================================
MVAU                       yes     yes                    MH % PE == 0, MW % SIMD == 0
Thresholding               yes     -                      NumChannels % PE == 0
ConvolutionInputGenerator  -       yes                    IFMChannels % SIMD == 0
Pool                       yes     -                      Channels % PE == 0
LabelSelect                yes     -                      Labels % PE == 0
=========================  ======  =====================  ================================

Cycle estimates (clock cycles per image) are FINN's ``get_exp_cycles`` formulas:

- MVAU: ``MH/PE * MW/SIMD * prod(numInputVectors)``.
- Thresholding: ``NumChannels/PE * prod(numInputVectors)``.
- ConvolutionInputGenerator: FINN's RTL sliding-window generator, default style (the HW-layer
  base class returns 0): with ``cf = IFMChannels/SIMD``,
  ``((K_h-1)*D_h*IFM_w + (K_w-1)*D_w + 1)*cf + OFM_h * max(OFM_w*K_w*K_h*cf, S_w*IFM_w*cf)``
  (+ FINN's depthwise correction terms; 1-D windows use FINN's 1-D formula).
- Pool: ``Channels*prod(KernelSize)/PE * prod(OutImgDims) * BatchSize``.
- LabelSelect: ``Labels/PE``.

LUT model (a deliberately simple, documented estimate in LUT4-equivalents; it ranks foldings, it
does not predict a synthesis result). For a layer with weight width ``w``, activation width ``a``
and accumulator width ``acc`` (bits), ``T`` threshold steps per channel:

- MVAU: ``40 + PE*SIMD*(m + s) + PE*acc + PE*T*acc`` with ``m = w*a`` partial-product LUTs and
  ``s = w + a`` adder-tree LUTs per lane, or ``m = s = 1`` in XNOR-popcount mode; ``PE*acc`` for
  the accumulators and one ``acc``-bit comparator per threshold step (``T = 0`` without
  activation).
- Thresholding: ``20 + PE*T*in_bits + PE*out_bits``.
- ConvolutionInputGenerator: ``30 + 2*SIMD*in_bits`` (window multiplexers; line buffers are RAM).
- Pool: ``20 + 2*PE*in_bits``; LabelSelect: ``20 + 2*PE*in_bits``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bitfab.errors import BitfabError

#: HW op types that bitfab's dataflow graphs contain (anything else is reported as non-HW).
HW_OP_TYPES = ("MVAU", "Thresholding", "ConvolutionInputGenerator", "Pool", "LabelSelect")

# which folding attributes each op type has: (has PE, has SIMD)
_FOLD_ATTRS = {
    "MVAU": (True, True),
    "Thresholding": (True, False),
    "ConvolutionInputGenerator": (False, True),
    "Pool": (True, False),
    "LabelSelect": (True, False),
}


@dataclass(frozen=True)
class LayerShape:
    """What folding needs to know about one HW layer (sizes in elements, widths in bits).

    ``pe_dim``/``simd_dim`` are the sizes PE and SIMD must divide (1 if the op has no such
    attribute): MVAU MH/MW, Thresholding NumChannels, ConvolutionInputGenerator IFMChannels, Pool
    Channels, LabelSelect Labels. ``attrs`` holds the op's remaining FINN node attributes used by
    the cycle formula (``numInputVectors``, ``IFMDim``, ``OFMDim``, ``ConvKernelDim`` ...).
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

    @property
    def has_pe(self) -> bool:
        return _FOLD_ATTRS[self.op_type][0]

    @property
    def has_simd(self) -> bool:
        return _FOLD_ATTRS[self.op_type][1]


def divisors(n: int) -> list[int]:
    """All positive divisors of ``n`` in increasing order."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def fold_options(layer: LayerShape) -> list[tuple[int, int]]:
    """Every legal ``(PE, SIMD)`` pair of a layer (1 for an attribute the op does not have)."""
    pes = divisors(layer.pe_dim) if layer.has_pe else [1]
    simds = divisors(layer.simd_dim) if layer.has_simd else [1]
    return [(p, s) for p in pes for s in simds]


def check_folding(layer: LayerShape, pe: int, simd: int) -> None:
    """Raise :class:`BitfabError` naming the layer and the constraint if ``(pe, simd)`` is illegal."""
    op = layer.op_type
    pe_name = {
        "MVAU": "MH",
        "Thresholding": "NumChannels",
        "Pool": "Channels",
        "LabelSelect": "Labels",
    }.get(op)
    simd_name = {"MVAU": "MW", "ConvolutionInputGenerator": "IFMChannels"}.get(op)
    for value, what in ((pe, "PE"), (simd, "SIMD")):
        if not isinstance(value, int) or value < 1:
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


def exp_cycles(layer: LayerShape, pe: int, simd: int) -> int:
    """Estimated clock cycles per image of one layer at folding ``(pe, simd)`` (FINN's formulas)."""
    a = layer.attrs
    op = layer.op_type
    nvec = _prod(a.get("numInputVectors", [1]))
    if op == "MVAU":
        return (layer.pe_dim // pe) * (layer.simd_dim // simd) * nvec
    if op == "Thresholding":
        return (layer.pe_dim // pe) * nvec
    if op == "ConvolutionInputGenerator":
        return _swg_cycles(a, layer.simd_dim, simd)
    if op == "Pool":
        k = _prod(a["KernelSize"])
        return int(layer.pe_dim * k / pe * _prod(a["OutImgDims"]) * int(a.get("BatchSize", 1)))
    if op == "LabelSelect":
        return layer.pe_dim // pe
    raise BitfabError(f"layer {layer.name}: no cycle model for op type {op}")


def lut_estimate(layer: LayerShape, pe: int, simd: int) -> int:
    """Estimated LUT4-equivalents of one layer at folding ``(pe, simd)`` (model in module doc)."""
    op = layer.op_type
    if op == "MVAU":
        if layer.xnor:
            mul, add = 1, 1
        else:
            mul, add = layer.weight_bits * layer.in_bits, layer.weight_bits + layer.in_bits
        acc = layer.acc_bits
        return 40 + pe * simd * (mul + add) + pe * acc + pe * layer.thres_steps * acc
    if op == "Thresholding":
        return 20 + pe * layer.thres_steps * layer.in_bits + pe * layer.out_bits
    if op == "ConvolutionInputGenerator":
        return 30 + 2 * simd * layer.in_bits
    if op in ("Pool", "LabelSelect"):
        return 20 + 2 * pe * layer.in_bits
    raise BitfabError(f"layer {layer.name}: no LUT model for op type {op}")


@dataclass(frozen=True)
class FoldingPlan:
    """A chosen folding: ``fold[name] = (PE, SIMD)`` plus its estimates.

    ``cycles`` is the slowest layer's cycles per image (the pipeline's initiation interval),
    ``luts`` the summed LUT estimate, ``target_met`` False if a cycle target was unreachable
    (then every layer is at its fastest folding).
    """

    fold: dict[str, tuple[int, int]]
    cycles: int
    bottleneck: str
    luts: int
    target_met: bool = True


def _plan(layers: Sequence[LayerShape], fold: dict[str, tuple[int, int]], met: bool) -> FoldingPlan:
    cyc = {ly.name: exp_cycles(ly, *fold[ly.name]) for ly in layers}
    bottleneck = max(cyc, key=lambda n: cyc[n]) if cyc else ""
    luts = sum(lut_estimate(ly, *fold[ly.name]) for ly in layers)
    return FoldingPlan(fold, cyc.get(bottleneck, 0), bottleneck, luts, met)


def _cheapest_within(layer: LayerShape, cycles: int) -> tuple[int, int] | None:
    """Lowest-LUT folding of ``layer`` with at most ``cycles`` (ties: fewer cycles), or None."""
    best = None
    for pe, simd in fold_options(layer):
        c = exp_cycles(layer, pe, simd)
        if c <= cycles:
            key = (lut_estimate(layer, pe, simd), c, pe, simd)
            if best is None or key < best:
                best = key
    return None if best is None else (best[2], best[3])


def _fastest(layer: LayerShape) -> tuple[int, int]:
    return min(
        fold_options(layer),
        key=lambda ps: (exp_cycles(layer, *ps), lut_estimate(layer, *ps)),
    )


def fold_for_target_cycles(layers: Sequence[LayerShape], target: int) -> FoldingPlan:
    """Cheapest folding (by the LUT model) whose slowest layer takes at most ``target`` cycles.

    Layers are independent: each gets its lowest-LUT legal folding within the target. A layer that
    cannot reach the target even fully parallel gets its fastest folding and ``target_met`` is
    False.
    """
    if target < 1:
        raise BitfabError(f"--target-cycles {target}: must be a positive number of cycles")
    fold: dict[str, tuple[int, int]] = {}
    met = True
    for ly in layers:
        choice = _cheapest_within(ly, target)
        if choice is None:
            met = False
            choice = _fastest(ly)
        fold[ly.name] = choice
    return _plan(layers, fold, met)


def fold_for_lut_budget(layers: Sequence[LayerShape], budget: int) -> FoldingPlan:
    """Fastest folding (lowest slowest-layer cycles) whose LUT estimate is within ``budget``.

    Among foldings with that cycle count, the cheapest. The minimal LUT need for a cycle bound
    falls as the bound grows, so a bisection over every cycle count a layer can take finds it.
    """
    if budget < 1:
        raise BitfabError(f"--lut-budget {budget}: must be a positive number of LUTs")
    candidates = sorted({exp_cycles(ly, *ps) for ly in layers for ps in fold_options(ly)})
    if not candidates:
        return _plan(layers, {}, True)

    def cost(t: int) -> tuple[int, dict[str, tuple[int, int]]] | None:
        fold = {}
        for ly in layers:
            choice = _cheapest_within(ly, t)
            if choice is None:
                return None
            fold[ly.name] = choice
        return sum(lut_estimate(ly, *fold[ly.name]) for ly in layers), fold

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
    """PE = SIMD = 1 everywhere (FINN's default: least hardware, slowest)."""
    return _plan(layers, {ly.name: (1, 1) for ly in layers}, True)


def fold_given(layers: Sequence[LayerShape], given: Mapping[str, Mapping[str, int]]) -> FoldingPlan:
    """A user folding ``{layer name: {"PE": p, "SIMD": s}}``; unnamed layers keep PE=SIMD=1.

    Raises :class:`BitfabError` for an unknown layer name or a violated constraint.
    """
    by_name = {ly.name: ly for ly in layers}
    fold = {ly.name: (1, 1) for ly in layers}
    for name, cfg in given.items():
        if name not in by_name:
            raise BitfabError(f"folding: no HW layer named {name!r}; layers are {sorted(by_name)}")
        unknown = set(cfg) - {"PE", "SIMD"}
        if unknown:
            raise BitfabError(
                f"folding: layer {name}: unknown keys {sorted(unknown)} (use PE, SIMD)"
            )
        pe, simd = cfg.get("PE", 1), cfg.get("SIMD", 1)
        check_folding(by_name[name], pe, simd)
        fold[name] = (pe, simd)
    return _plan(layers, fold, True)
