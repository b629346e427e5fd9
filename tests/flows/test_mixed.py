"""Mixed-precision allocation: covering configurations, the exact allocator against brute force,
per-layer costs against bitfab's whole-model cost, `bitfab mixed` end to end (config JSON, budget,
errors), and the chosen model through dataflow, compile and RTL verification."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from bitfab.cli import main
from bitfab.errors import BitfabError
from bitfab.flows.mixed.search import (
    Cost,
    CostTables,
    allocate,
    brute_force,
    cheapest,
    config_cost,
    cost_tables,
    covering_configs,
    layer_triples,
    mixed_precision,
    parse_budget,
)

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# pure parts
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "bits"), [(2, (1, 2)), (4, (1, 2, 4, 8)), (5, (2, 4, 8)), (7, (1, 3))]
)
def test_covering_configs_cover_every_triple(n, bits):
    configs = covering_configs(n, bits)
    assert len(configs) == len(bits) ** 3
    seen = [set() for _ in range(n)]
    for wb, ab in configs:
        assert len(wb) == n and len(ab) == n - 1
        for i, t in enumerate(layer_triples(wb, ab, 8)):
            seen[i].add(t)
    for i in range(n):
        ins = [8] if i == 0 else bits
        outs = [None] if i == n - 1 else bits
        assert seen[i] == set(itertools.product(ins, bits, outs))


def _random_case(rng: random.Random, n: int, bits: tuple[int, ...]):
    layers = []
    for i in range(n):
        ins = [8] if i == 0 else bits
        outs = [None] if i == n - 1 else bits
        layers.append(
            {
                t: Cost(rng.randint(0, 100), rng.randint(0, 6), rng.randint(1, 1000))
                for t in itertools.product(ins, bits, outs)
            }
        )
    tables = CostTables("t", bits, 8, "bitserial", "x", layers, Cost(rng.randint(0, 20), 1, 0))
    sw = [{b: rng.random() for b in bits} for _ in range(n)]
    sa = [{b: rng.random() for b in bits} for _ in range(n - 1)]
    budget = {}
    if rng.random() < 0.9:
        budget["luts"] = rng.randint(50, 60 * n)
    if rng.random() < 0.6:
        budget["bram"] = rng.randint(2, 4 * n)
    if rng.random() < 0.4:
        budget["cycles"] = rng.randint(300, 1000)
    return tables, sw, sa, budget


@pytest.mark.parametrize("seed", range(40))
def test_allocate_equals_brute_force(seed):
    """The DP's optimum (objective and budget) equals exhaustive search on random tables with
    random sensitivities and budgets, infeasible ones included."""
    rng = random.Random(seed)
    n = rng.randint(2, 4)
    bits = tuple(sorted(rng.sample([1, 2, 4, 8], rng.randint(2, 3))))
    tables, sw, sa, budget = _random_case(rng, n, bits)
    got = allocate(tables, sw, sa, budget)
    ref = brute_force(tables, sw, sa, budget)
    if ref is None:
        assert got is None
        return
    assert got is not None
    assert got.objective == pytest.approx(ref.objective, abs=1e-12)
    assert got.cost == tables.cost(got.wbits, got.abits)
    assert not got.cost.over(budget)
    # the objective recomputed from the chosen bits
    obj = sum(sw[i][b] for i, b in enumerate(got.wbits)) + sum(
        sa[i][b] for i, b in enumerate(got.abits)
    )
    assert got.objective == pytest.approx(obj, abs=1e-12)


def test_cheapest_is_the_minimum_over_all_configs():
    rng = random.Random(7)
    tables, _, _, _ = _random_case(rng, 3, (1, 2, 4))
    costs = [
        tables.cost(wb, ab)
        for wb in itertools.product((1, 2, 4), repeat=3)
        for ab in itertools.product((1, 2, 4), repeat=2)
    ]
    low = cheapest(tables)
    assert low["luts"].luts == min(c.luts for c in costs)
    assert low["bram"].bram == min(c.bram for c in costs)
    assert low["cycles"].cycles == min(c.cycles for c in costs)


def test_parse_budget():
    assert parse_budget("luts=900,bram=20") == {"luts": 900, "bram": 20}
    assert parse_budget("cycles=5") == {"cycles": 5}
    for bad in ("", "luts", "ff=3", "luts=x", "luts=0"):
        with pytest.raises(BitfabError, match="--budget"):
            parse_budget(bad)


# --------------------------------------------------------------------------------------------
# bitfab's cost model and the whole command (a tiny float tfc trained on digits)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def float_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mixed") / "float"
    cmd = [sys.executable, "-m", "bitfab", "train", "--model", "tfc", "--wbits", "float",
           "--epochs", "1", "--limit", "300", "--dataset", "digits", "--out", str(out), "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def tables_12(float_ckpt):
    from bitfab.boards import get_target
    from bitfab.models.sensitivity import load_float_checkpoint

    fm = load_float_checkpoint(float_ckpt)
    state = fm.model.state_dict()
    tabs = cost_tables("tfc", (1, 2), "bitserial", get_target("icebreaker"), state)
    return tabs, state


def test_tables_add_up_to_the_whole_model_cost(tables_12):
    """Two mixed configurations compiled whole: bitfab's accelerator LUT estimate, cycles and
    block RAMs equal the sum of the per-layer table entries (and the per-layer split adds up)."""
    from bitfab.boards import get_target
    from bitfab.models.config import make_config

    tabs, state = tables_12
    assert len(tabs.layers) == 4 and all(len(d) for d in tabs.layers)
    for wb, ab in (([1, 2, 2, 1], [2, 1, 2]), ([2, 1, 1, 2], [1, 1, 2])):
        cfg = make_config("tfc", wbits=wb, abits=ab)
        direct = config_cost(cfg, "bitserial", get_target("icebreaker"), state)
        assert direct.total == tabs.cost(wb, ab)
        assert direct.total.luts > 0 and direct.total.bram > 0 and direct.total.cycles > 0
    # more bits cost more block RAM (weights) and bit-serial cycles
    lo, hi = tabs.cost([1] * 4, [1] * 3), tabs.cost([2] * 4, [2] * 3)
    assert hi.bram > lo.bram and hi.cycles > lo.cycles


def test_mixed_precision_is_the_brute_force_optimum_within_budget(float_ckpt, tables_12):
    tabs, _ = tables_12
    uniform1 = tabs.cost([1] * 4, [1] * 3)
    budget = {"luts": uniform1.luts + 40, "bram": 30}
    res = mixed_precision(
        float_ckpt, "icebreaker", "bitserial", budget, method="loss", bits=(1, 2),
        calib=64, dataset="digits", board_limits=False, tables=tabs,
    )  # fmt: skip
    assert not res.cost.total.over(budget)
    ref = brute_force(tabs, res.sensitivity.weight, res.sensitivity.act, budget)
    assert ref is not None and res.objective == pytest.approx(ref.objective, abs=1e-12)
    assert res.config["model"] == "tfc" and len(res.config["wbits"]) == 4


def test_cli_writes_a_config_and_prints_the_choice(float_ckpt, tables_12, tmp_path, capsys):
    from bitfab.models.config import ModelConfig

    tabs, _ = tables_12
    luts = tabs.cost([2] * 4, [1] * 3).luts
    out = tmp_path / "mixed.json"
    rc = main(["mixed", str(float_ckpt), "--board", "icebreaker", "--array", "bitserial",
               "--budget", f"luts={luts}", "--out", str(out), "--bits", "1,2", "--dataset",
               "digits", "--calib", "64", "--samples", "4", "--quiet"])  # fmt: skip
    text = capsys.readouterr().out
    assert rc == 0
    cfg = ModelConfig.from_dict(json.loads(out.read_text()))
    assert cfg.model == "tfc" and set(cfg.wbits) <= {1, 2} and set(cfg.abits) <= {1, 2}
    total = tabs.cost(cfg.wbits, cfg.abits)
    assert total.luts <= luts and total.bram <= 30  # the board's block RAMs apply too
    assert "total" in text and f"luts {luts}" in text and str(total.luts) in text
    assert "bram 30" in text
    # bitfab train takes the file as it is
    rc = main(["train", "--config", str(out), "--epochs", "1", "--limit", "100", "--dataset",
               "digits", "--out", str(tmp_path / "train"), "--quiet", "--check-images", "10"])  # fmt: skip
    assert rc == 0
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert metrics["config"] == cfg.to_dict()


def test_cli_refuses_a_budget_nothing_meets(float_ckpt, tables_12, tmp_path, capsys):
    tabs, _ = tables_12
    low = cheapest(tabs)["luts"].luts
    out = tmp_path / "x.json"
    rc = main(["mixed", str(float_ckpt), "--board", "icebreaker", "--budget",
               f"luts={low - 1}", "--out", str(out), "--bits", "1,2", "--dataset", "digits",
               "--calib", "32", "--sensitivity", "loss", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert f"luts {low}" in err[0] and "cheapest" in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--board", "nosuchboard"], "nosuchboard"),
        (["--board", "icebreaker", "--array", "systolic"], "systolic"),
        (["--board", "icebreaker", "--bits", "1,9"], "--bits"),
        (["--board", "icebreaker", "--budget", "ff=3"], "--budget"),
    ],
)
def test_cli_bad_input_one_line(tmp_path, capsys, args, needle):
    argv = ["mixed", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o.json"), *args]
    if "--budget" not in args:
        argv += ["--budget", "luts=1000"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_cli_missing_checkpoint(tmp_path, capsys):
    rc = main(["mixed", str(tmp_path / "none.pt"), "--board", "icebreaker", "--budget",
               "luts=1000", "--out", str(tmp_path / "o.json")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "float checkpoint" in err[0]


@pytest.mark.verilator
def test_mixed_model_passes_dataflow_compile_and_verify(float_ckpt, tables_12, tmp_path):
    """A mixed configuration chosen by the allocator, QAT-trained briefly, goes through bitfab
    dataflow, compile (bit-serial) and RTL verification on 200 images with zero mismatches."""
    from bitfab.models.config import ModelConfig
    from bitfab.sim.verify import verify

    tabs, _ = tables_12
    budget = {"luts": tabs.cost([2] * 4, [1] * 3).luts, "bram": 30}
    res = mixed_precision(
        float_ckpt, "icebreaker", "bitserial", budget, method="hessian", bits=(1, 2),
        calib=64, samples=4, dataset="digits", tables=tabs,
    )  # fmt: skip
    cfg = ModelConfig.from_dict(res.config)
    assert cfg.precision == "mixed" or len(set(cfg.wbits + cfg.abits)) == 1
    (tmp_path / "mixed.json").write_text(json.dumps(res.config))
    py = [sys.executable, "-m", "bitfab"]
    for cmd in (
        [*py, "train", "--config", str(tmp_path / "mixed.json"), "--epochs", "1", "--limit",
         "300", "--dataset", "digits", "--out", str(tmp_path / "train"), "--quiet",
         "--check-images", "20"],
        [*py, "dataflow", str(tmp_path / "train" / "model.onnx"), "--out", str(tmp_path / "df"),
         "--target-cycles", "400"],
        [*py, "compile", str(tmp_path / "df" / "dataflow.onnx"), "--out", str(tmp_path / "acc"),
         "--array", "bitserial"],
    ):  # fmt: skip
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    rep = verify(tmp_path / "acc", 200, "verilator", chunk=200, dataset="digits")
    assert rep["passed"], rep["first_mismatch"]
    assert rep["images"] == 200
