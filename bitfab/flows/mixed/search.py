"""Hardware-aware mixed precision: per-layer weight and activation bits under a hardware budget.

The objective is HAWQ-V2's (Dong et al. 2020): minimise the summed sensitivity
``sum_i Omega_w[i](w_i) + sum_i Omega_a[i](a_i)`` (:mod:`bitfab.models.sensitivity`: Hessian trace
x squared quantization perturbation, or the measured loss increase). The constraints are HAQ's
(Wang et al. 2019): the hardware's own figures for a named board and array kind, here **bitfab's
cost model** rather than a proxy such as bit-operations:

- ``luts``: the accelerator's LUT estimate (:func:`bitfab.hw.perf.lut_estimate` per unit plus its
  output FIFO, summed as ``accelerator.json`` does; the units ``bitfab build`` fits to a board);
- ``bram``: block RAMs, counted per memory of the elaborated accelerator by Yosys's mapping rule
  (:func:`bitfab.fpga.fit.bram_blocks`), plus the host link's;
- ``cycles``: cycles per image (:func:`bitfab.hw.perf.model_perf`: the slowest unit).

All at the smallest folding (PE = SIMD = 1, FINN's default): the budget bounds the design's
smallest form, and ``bitfab build`` spends what the board has left on folding.

**Per-layer costs.** Weight layer ``i``'s units (its MVAU and, in front of it, the sliding window,
pool, padding, plus the FIFO after each) depend on its input bits ``a_{i-1}`` (``in_bits`` for the
first), its weight bits ``w_i`` and its output activation bits ``a_i`` (none for the classifier).
:func:`cost_tables` measures every such triple by compiling a covering set of whole
configurations through bitfab's flow (export -> FINN streamlining -> compiler ->
``accelerator_report``), ``k**3`` configurations for ``k`` candidate widths (config ``s = (x, y,
z)`` sets ``a_j = s[j mod 3]``, ``w_j = s[(j + 1) mod 3]``, so layer ``j``'s triple ``(s[j-1],
s[j+1], s[j])`` takes three distinct entries of ``s`` and runs over all of ``B^3``). The tables
are cached in ``$BITFAB_CACHE/mixed`` (default ``~/.cache/bitfab/mixed``) under the SHA-256 of their inputs (model, bits, array,
board, the float weights, the bitfab sources the flow runs). The weights are the float model's (clipped to [-1, 1]), so accumulator widths and
thresholds are the model's own.

**Allocation** (:func:`allocate`): exact dynamic programming along the layer chain (the state is
the activation width between two layers) keeping, per state, the Pareto set of (objective, LUTs,
block RAMs, cycles); every label over a budget is dropped. :func:`brute_force` enumerates all
configurations (tests). The chosen configuration is then compiled as a whole (:func:`config_cost`)
and its direct cost is what is reported and checked against the budget.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitfab.errors import BitfabError
from bitfab.hw.elaboratable import unused_ok

#: bitfab sources whose code the cost tables run (a change there invalidates cached tables).
COST_SOURCES = (
    "models/config.py", "models/zoo.py", "models/quant.py", "models/export.py", "dataflow", "hw",
    "flows/mixed/search.py", "fpga/fit.py",
)  # fmt: skip

#: Budget keys (``--budget luts=N,bram=N,cycles=N``).
BUDGET_KEYS = ("luts", "bram", "cycles")

Triple = tuple[int, int, int | None]  # (input bits, weight bits, output activation bits)


@dataclass(frozen=True)
class Cost:
    """Hardware cost: LUT estimate, block RAMs, cycles per image (the slowest unit)."""

    luts: int = 0
    bram: int = 0
    cycles: int = 0

    def __add__(self, o: Cost) -> Cost:
        return Cost(self.luts + o.luts, self.bram + o.bram, max(self.cycles, o.cycles))

    def to_json(self) -> dict[str, int]:
        return {"luts": self.luts, "bram": self.bram, "cycles": self.cycles}

    def over(self, budget: Mapping[str, int]) -> list[str]:
        """The budget keys this cost exceeds."""
        return [k for k in BUDGET_KEYS if k in budget and getattr(self, k) > budget[k]]


def parse_budget(text: str) -> dict[str, int]:
    """``"luts=900,bram=20,cycles=100000"`` -> dict; any subset of :data:`BUDGET_KEYS`."""
    out: dict[str, int] = {}
    for part in [p for p in text.replace(" ", "").split(",") if p]:
        key, eq, val = part.partition("=")
        if not eq or key not in BUDGET_KEYS:
            raise BitfabError(
                f"--budget {text!r}: expected key=N pairs with keys {', '.join(BUDGET_KEYS)} "
                "(e.g. luts=900,bram=20)"
            )
        try:
            n = int(val)
        except ValueError:
            raise BitfabError(f"--budget {key}={val!r}: not an integer") from None
        if n < 1:
            raise BitfabError(f"--budget {key}={n}: must be a positive integer")
        out[key] = n
    if not out:
        raise BitfabError(f"--budget {text!r}: give at least one of {', '.join(BUDGET_KEYS)}")
    return out


# --------------------------------------------------------------------------------------------
# costs from bitfab's flow
# --------------------------------------------------------------------------------------------


@dataclass
class ConfigCost:
    """Cost of one whole configuration: ``layers[i]`` for weight layer ``i``'s units, ``base``
    for what belongs to no layer (the host link's memories), ``total`` the sum."""

    layers: list[Cost]
    base: Cost
    total: Cost
    units: list[tuple[str, int]] = field(default_factory=list)  # (unit name, weight layer)


def _quant_model(cfg, float_state: Mapping[str, Any] | None):  # noqa: ANN001, ANN202
    import torch

    from bitfab.models.zoo import build_model

    torch.manual_seed(0)
    model = build_model(cfg)
    if float_state is not None:
        model.load_state_dict(dict(float_state), strict=False)
        model.clip_weights()
    model.eval()
    return model


def config_cost(
    cfg,  # noqa: ANN001 - ModelConfig
    array: str,
    target,  # noqa: ANN001 - bitfab.boards.Target
    float_state: Mapping[str, Any] | None = None,
) -> ConfigCost:
    """Compile ``cfg`` (weights and BatchNorm from ``float_state``, else random) through bitfab's
    flow at PE = SIMD = 1 and split ``accelerator_report``'s units over the weight layers: the
    units after MVAU ``i-1`` up to MVAU ``i`` (and their FIFOs) are layer ``i``'s; units after the
    last MVAU belong to the last layer."""
    from bitfab.dataflow.build import choose_plan
    from bitfab.dataflow.convert import to_dataflow
    from bitfab.dataflow.load import load_qonnx
    from bitfab.dataflow.transforms import ApplyFolding
    from bitfab.fpga.fit import host_link_memories
    from bitfab.hw.accelerator import Accelerator, accelerator_report
    from bitfab.hw.compiler import compile_graph
    from bitfab.models.export import export_model

    model = _quant_model(cfg, float_state)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_model(model, path)
        base = to_dataflow(load_qonnx(path), f"{cfg.model} {cfg.to_dict()}")
    plan, _ = choose_plan(base)
    df = base.transform(ApplyFolding(plan.fold))
    acc = Accelerator(compile_graph(df, array))
    unused_ok(acc)
    rep = accelerator_report(acc)
    n = cfg.arch.n_weight_layers
    owner: dict[str, int] = {}
    layer, units = 0, []
    for ly in rep["layers"]:
        owner[ly["name"]] = min(layer, n - 1)
        units.append((ly["name"], owner[ly["name"]]))
        if ly["op_type"] == "MVAU":
            layer += 1
    if layer != n:
        raise BitfabError(f"{cfg.model}: compiled {layer} MVAUs, expected {n} weight layers")
    luts = [0] * n
    cyc = [0] * n
    for ly in rep["layers"]:
        luts[owner[ly["name"]]] += ly["luts"]
        cyc[owner[ly["name"]]] = max(cyc[owner[ly["name"]]], ly["cycles"])
    for f in rep["fifos"]:
        luts[owner[f["after"]]] += f["luts"]
    bram = [0] * n
    base_bram = 0
    for mpath, _, _, _, blocks in host_link_memories(acc, target.family):
        parts = mpath.split(".")
        unit = parts[2] if len(parts) > 2 and parts[1] == "acc" else None
        if unit is not None and unit.startswith("fifo_"):
            unit = unit[len("fifo_") :]
        if unit in owner:
            bram[owner[unit]] += blocks
        else:
            base_bram += blocks
    layers = [Cost(luts[i], bram[i], cyc[i]) for i in range(n)]
    base_cost = Cost(0, base_bram, 0)
    total = base_cost
    for c in layers:
        total = total + c
    if total.luts != rep["luts"] or total.cycles != rep["performance"]["cycles_per_image"]:
        raise BitfabError(f"{cfg.model}: per-layer costs do not add up to accelerator_report")
    return ConfigCost(layers, base_cost, total, units)


def layer_triples(wbits: Sequence[int], abits: Sequence[int], in_bits: int) -> list[Triple]:
    """``(input bits, weight bits, output bits)`` of every weight layer (``None`` output for the
    classifier)."""
    ins = [in_bits, *abits]
    outs: list[int | None] = [*abits, None]
    return [(ins[i], wbits[i], outs[i]) for i in range(len(wbits))]


def covering_configs(n_layers: int, bits: Sequence[int]) -> list[tuple[list[int], list[int]]]:
    """``(wbits, abits)`` configurations whose layer triples cover every (input, weight, output)
    combination of ``bits`` in every layer: ``len(bits)**3`` of them (module doc)."""
    out = []
    for s in itertools.product(bits, repeat=3):
        abits = [s[j % 3] for j in range(n_layers - 1)]
        wbits = [s[(j + 1) % 3] for j in range(n_layers)]
        out.append((wbits, abits))
    return out


@dataclass
class CostTables:
    """``layers[i][(a_in, w, a_out)]`` = :class:`Cost` of weight layer ``i``; ``base`` the
    constant (host link); the model name, candidate ``bits``, ``in_bits``, array and board."""

    model: str
    bits: tuple[int, ...]
    in_bits: int
    array: str
    board: str
    layers: list[dict[Triple, Cost]]
    base: Cost

    def cost(self, wbits: Sequence[int], abits: Sequence[int]) -> Cost:
        """Additive cost of a configuration from the tables."""
        total = self.base
        for i, t in enumerate(layer_triples(wbits, abits, self.in_bits)):
            total = total + self.layers[i][t]
        return total

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CostTables:
        layers = [
            {
                tuple(e["triple"]): Cost(e["luts"], e["bram"], e["cycles"])  # type: ignore[misc]
                for e in rows
            }
            for rows in d["layers"]
        ]
        b = d["base"]
        return cls(
            d["model"], tuple(d["bits"]), d["in_bits"], d["array"], d["board"], layers,
            Cost(b["luts"], b["bram"], b["cycles"]),
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "bits": list(self.bits),
            "in_bits": self.in_bits,
            "array": self.array,
            "board": self.board,
            "base": self.base.to_json(),
            "layers": [
                [{"triple": list(t), **c.to_json()} for t, c in sorted(d.items(), key=str)]
                for d in self.layers
            ],
        }


def cost_tables(
    model: str,
    bits: Sequence[int],
    array: str,
    target,  # noqa: ANN001 - bitfab.boards.Target
    float_state: Mapping[str, Any] | None = None,
    in_bits: int | None = None,
    on_config: Callable[[int, int], None] | None = None,
) -> CostTables:
    """Measure every layer's cost for every triple of ``bits`` (:func:`covering_configs`, each
    compiled by :func:`config_cost`). ``on_config(done, total)`` reports progress."""
    from bitfab.models.config import ARCHS, make_config

    arch = ARCHS[model]
    n = arch.n_weight_layers
    ib = arch.default_in_bits if in_bits is None else in_bits
    bits = tuple(sorted(set(bits)))
    key = _tables_key(model, bits, ib, array, target, float_state)
    cached = _cache_dir() / f"{key}.json" if key else None
    if cached is not None and cached.is_file():
        try:
            return CostTables.from_json(json.loads(cached.read_text()))
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is rebuilt
    configs = covering_configs(n, bits)
    layers: list[dict[Triple, Cost]] = [{} for _ in range(n)]
    base = None
    for k, (wb, ab) in enumerate(configs):
        if on_config:
            on_config(k, len(configs))
        cfg = make_config(model, wbits=wb, abits=ab, in_bits=ib)
        cc = config_cost(cfg, array, target, float_state)
        base = cc.base if base is None else base
        for i, t in enumerate(layer_triples(wb, ab, ib)):
            layers[i].setdefault(t, cc.layers[i])
    if on_config:
        on_config(len(configs), len(configs))
    assert base is not None
    tables = CostTables(model, bits, ib, array, target.name, layers, base)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(tables.to_json()) + "\n")
        os.replace(tmp, cached)
    return tables


def _cache_dir() -> Path:
    from bitfab.cache import cache_dir

    return cache_dir("mixed")


def _tables_key(model, bits, in_bits, array, target, float_state) -> str | None:  # noqa: ANN001
    """SHA-256 of everything the tables depend on; None (no caching) without float weights."""
    if float_state is None:
        return None
    from bitfab.content_hash import source_hash
    from bitfab.flows.build import tool_versions

    h = hashlib.sha256()
    meta = [model, list(bits), in_bits, array, target.name, target.family, tool_versions()]
    meta.append(source_hash(COST_SOURCES))
    h.update(json.dumps(meta, sort_keys=True).encode())
    for k in sorted(float_state):
        h.update(k.encode())
        h.update(float_state[k].detach().cpu().numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# allocation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """A chosen configuration: ``wbits``/``abits`` per layer, its summed sensitivity
    ``objective`` and its additive table cost."""

    wbits: tuple[int, ...]
    abits: tuple[int, ...]
    objective: float
    cost: Cost


def _objective(
    sw: Sequence[Mapping[int, float]],
    sa: Sequence[Mapping[int, float]],
    wbits: Sequence[int],
    abits: Sequence[int],
) -> float:
    return sum(sw[i][b] for i, b in enumerate(wbits)) + sum(sa[i][b] for i, b in enumerate(abits))


def allocate(
    tables: CostTables,
    sw: Sequence[Mapping[int, float]],
    sa: Sequence[Mapping[int, float]],
    budget: Mapping[str, int],
    bits: Sequence[int] | None = None,
) -> Allocation | None:
    """The configuration of least summed sensitivity whose table cost is within ``budget``
    (exact: dynamic programming over the chain with Pareto sets, module doc); ``None`` if no
    configuration fits. ``sw[i][b]``/``sa[i][b]``: sensitivity of weight layer / activation ``i``
    at ``b`` bits; ``bits``: candidate widths (default the tables')."""
    cand = tuple(tables.bits if bits is None else bits)
    n = len(tables.layers)
    # label: (objective, cost, wbits, abits)
    states: dict[int | None, list[tuple[float, Cost, tuple[int, ...], tuple[int, ...]]]] = {
        tables.in_bits: [(0.0, tables.base, (), ())]
    }
    if tables.base.over(budget):
        return None
    for i in range(n):
        outs: list[int | None] = [None] if i == n - 1 else list(cand)
        nxt: dict[int | None, list] = {}
        for a_in, labels in states.items():
            for w in cand:
                for a in outs:
                    c = tables.layers[i].get((a_in, w, a))
                    if c is None:
                        raise BitfabError(f"no cost for layer {i} triple {(a_in, w, a)}")
                    add = sw[i][w] + (sa[i][a] if a is not None else 0.0)
                    for obj, cost, wb, ab in labels:
                        nc = cost + c
                        if nc.over(budget):
                            continue
                        nab = ab if a is None else (*ab, a)
                        nxt.setdefault(a, []).append((obj + add, nc, (*wb, w), nab))
        states = {a: _pareto(labels) for a, labels in nxt.items()}
    finals = [lb for labels in states.values() for lb in labels]
    if not finals:
        return None
    obj, cost, wb, ab = min(finals, key=lambda lb: (lb[0], lb[1].luts, lb[1].bram, lb[1].cycles))
    return Allocation(wb, ab, obj, cost)


def _pareto(labels: list) -> list:
    """Labels not dominated in (objective, LUTs, block RAMs, cycles)."""
    labels = sorted(labels, key=lambda lb: (lb[0], lb[1].luts, lb[1].bram, lb[1].cycles))
    kept: list = []
    for lb in labels:
        c = lb[1]
        if any(
            k[1].luts <= c.luts and k[1].bram <= c.bram and k[1].cycles <= c.cycles for k in kept
        ):
            continue  # an earlier label (objective <=) is at least as cheap everywhere
        kept.append(lb)
    return kept


def brute_force(
    tables: CostTables,
    sw: Sequence[Mapping[int, float]],
    sa: Sequence[Mapping[int, float]],
    budget: Mapping[str, int],
    bits: Sequence[int] | None = None,
) -> Allocation | None:
    """:func:`allocate` by enumerating every configuration (for tests; ``k**(2n-1)`` of them)."""
    cand = tuple(tables.bits if bits is None else bits)
    n = len(tables.layers)
    best = None
    for wb in itertools.product(cand, repeat=n):
        for ab in itertools.product(cand, repeat=n - 1):
            c = tables.cost(wb, ab)
            if c.over(budget):
                continue
            key = (_objective(sw, sa, wb, ab), c.luts, c.bram, c.cycles)
            if best is None or key < best[0]:
                best = (key, Allocation(tuple(wb), tuple(ab), key[0], c))
    return None if best is None else best[1]


def cheapest(tables: CostTables) -> dict[str, Cost]:
    """Per budget key, the configuration cost that minimises it (what any budget must allow)."""
    out = {}
    for key in BUDGET_KEYS:
        big = {k: 1 << 62 for k in BUDGET_KEYS if k != key}
        lo, hi = 0, 1
        # the least value of `key` any configuration reaches: allocate with a flat objective
        # under a growing, then bisected, bound
        flat = [dict.fromkeys(tables.bits, 0.0) for _ in tables.layers]
        while allocate(tables, flat, flat, {**big, key: hi}) is None:
            lo, hi = hi, hi * 2
        while lo + 1 < hi:
            mid = (lo + hi) // 2
            if allocate(tables, flat, flat, {**big, key: mid}) is None:
                lo = mid
            else:
                hi = mid
        found = allocate(tables, flat, flat, {**big, key: hi})
        assert found is not None
        out[key] = found.cost
    return out


# --------------------------------------------------------------------------------------------
# the whole job: sensitivity, tables, allocation, direct check
# --------------------------------------------------------------------------------------------


@dataclass
class MixedResult:
    """What ``bitfab mixed`` chose: the config dict, its direct cost (whole model compiled), the
    table cost, the budget (given and the board's), the sensitivity and the tries."""

    config: dict[str, Any]
    cost: ConfigCost
    table_cost: Cost
    budget: dict[str, int]
    objective: float
    sensitivity: Any
    tables: CostTables
    tries: list[dict[str, Any]]


def board_budget(target, margin: float) -> dict[str, int]:  # noqa: ANN001
    """The board's own limits in the cost model's units: the LUT-estimate budget ``bitfab
    build`` fits against (:func:`bitfab.fpga.fit.lut_budget`) and its block RAMs."""
    from bitfab.fpga.fit import lut_budget

    return {"luts": lut_budget(target, margin), "bram": target.bram_blocks}


def resolve_target(board: str, array: str):  # noqa: ANN201
    """The catalogue target and a checked array kind (one-line errors for unknown names)."""
    from bitfab.boards import get_target
    from bitfab.kinds import ARRAY_KINDS

    target = get_target(board)
    if array not in ARRAY_KINDS:
        raise BitfabError(f"array kind {array!r}: expected one of {', '.join(ARRAY_KINDS)}")
    return target


def mixed_precision(
    checkpoint: str | os.PathLike[str],
    board: str,
    array: str,
    budget: Mapping[str, int],
    *,
    method: str = "hessian",
    bits: Sequence[int] = (1, 2, 4, 8),
    calib: int = 512,
    samples: int = 32,
    dataset: str = "fashion-mnist",
    data_dir: str | os.PathLike[str] | None = None,
    margin: float = 0.8,
    board_limits: bool = True,
    tables: CostTables | None = None,
    seed: int = 0,
    on_stage: Callable[[str], None] | None = None,
    on_config: Callable[[int, int], None] | None = None,
) -> MixedResult:
    """Sensitivity of the float checkpoint, cost tables for ``board``/``array``, allocation under
    ``budget`` (plus the board's own LUT and block-RAM limits when ``board_limits``), then the
    chosen configuration compiled whole. If its direct cost exceeds the budget (the tables are
    additive; FIFO depths between layers are not quite), the overflowing bound shrinks by the
    overflow and the allocation is redone (up to 4 tries)."""
    import torch

    from bitfab.models.config import make_config
    from bitfab.models.data import load_dataset, to_model_input
    from bitfab.models.sensitivity import load_float_checkpoint, sensitivity

    target = resolve_target(board, array)
    bits = tuple(sorted(set(bits)))
    if not bits or any(not 1 <= b <= 8 for b in bits):
        raise BitfabError(f"--bits {list(bits)}: candidate widths must be 1-8")
    if calib < 1:
        raise BitfabError(f"--calib {calib}: need at least one calibration image")
    full = dict(budget)
    if board_limits:
        for k, v in board_budget(target, margin).items():
            full[k] = min(full.get(k, v), v)
    fm = load_float_checkpoint(checkpoint)
    stage = on_stage or (lambda _s: None)
    stage("sensitivity")
    xs, ys = load_dataset(dataset, "train", data_dir)
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(xs), generator=gen)[:calib].numpy()
    x = torch.from_numpy(to_model_input(xs[idx]))
    y = torch.from_numpy(ys[idx])
    sens = sensitivity(fm, x, y, method, bits, samples, seed)
    state = fm.model.state_dict()
    if tables is None:
        stage("cost tables")
        tables = cost_tables(fm.cfg.model, bits, array, target, state, on_config=on_config)
    stage("allocation")
    tries = []
    bound = dict(full)
    for _ in range(4):
        alloc = allocate(tables, sens.weight, sens.act, bound)
        if alloc is None:
            low = cheapest(tables)
            what = ", ".join(f"{k} {low[k].to_json()[k]}" for k in BUDGET_KEYS if k in bound)
            given = ", ".join(f"{k}={v}" for k, v in full.items())
            raise BitfabError(
                f"no configuration of {fm.cfg.model} with bits {list(bits)} meets the budget "
                f"{given} ({board}, {array}; board limits included): the cheapest reach {what}; "
                "raise the budget or allow fewer bits"
            )
        cfg = make_config(
            fm.cfg.model, wbits=list(alloc.wbits), abits=list(alloc.abits), in_bits=tables.in_bits
        )
        direct = config_cost(cfg, array, target, state)
        over = direct.total.over(full)
        tries.append(
            {
                "bound": dict(bound),
                "wbits": list(alloc.wbits),
                "abits": list(alloc.abits),
                "table_cost": alloc.cost.to_json(),
                "direct_cost": direct.total.to_json(),
                "fits": not over,
            }
        )
        if not over:
            return MixedResult(
                cfg.to_dict(), direct, alloc.cost, full, alloc.objective, sens, tables, tries
            )
        for k in over:
            excess = getattr(direct.total, k) - full[k]
            bound[k] = max(1, bound[k] - max(1, excess, math.ceil(0.02 * full[k])))
    raise BitfabError(
        f"the allocation's compiled cost kept exceeding the budget after {len(tries)} tries "
        f"(last {tries[-1]['direct_cost']}); lower the budget slightly"
    )
