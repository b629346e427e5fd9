"""Run a sweep: train the distinct models, estimate every point, build the asked ones, report.

Phases (each through the pool: :class:`LocalPool` or :class:`RayPool`):

1. **models**: one training per distinct (model, wbits, abits) with the sweep's training
   options, cached by content hash (:mod:`bitfab.flows.explore.cache`);
2. **points**: estimate every point (with ``synth``: and build it);
3. with ``synth_pareto``: build the 3-objective Pareto points (at most ``synth_max``, spread
   over the boards, each board's smallest (fewest LUTs, the quickest builds) first);
4. ``DIR/results.json``, ``DIR/results.csv``, ``DIR/report.html``.

Finished points are cached in ``DIR/points`` by content hash: an interrupted sweep, run again
with the same command, only runs what is missing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bitfab.flows.explore.cache import default_cache_dir, write_json_atomic
from bitfab.flows.explore.pareto import estimate_errors, mark_pareto
from bitfab.flows.explore.pool import LocalPool, RayPool
from bitfab.flows.explore.runner import run_point, train_model
from bitfab.flows.explore.spec import Point, SweepSpec

#: results.json layout version
RESULTS_VERSION = 1

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _pool(jobs: int, ray: str | None) -> LocalPool | RayPool:
    return RayPool(ray) if ray else LocalPool(jobs)


def run_sweep(
    spec: SweepSpec,
    out_dir: str | os.PathLike[str],
    *,
    jobs: int = 1,
    ray: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
    report: bool = True,
) -> dict[str, Any]:
    """Run ``spec`` into ``out_dir`` with ``jobs`` local workers or on the Ray cluster ``ray``.

    ``cache_dir``: trained models (default :func:`default_cache_dir`); ``use_cache``: False
    recomputes every point (trained models are still reused). Returns the results (also
    ``out_dir/results.json``); failing points are in it with their reason."""
    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cache = str(Path(cache_dir).resolve() if cache_dir else default_cache_dir())
    points = spec.points()
    train = {
        "epochs": spec.train.epochs,
        "seed": spec.train.seed,
        "limit": spec.train.limit,
        "dataset": spec.train.dataset,
    }
    opts = {"margin": spec.margin, "verify_images": spec.verify_images, "max_luts": spec.max_luts}
    tell = progress or (lambda phase, done, total: None)
    phases: dict[str, float] = {}

    with _pool(jobs, ray) as pool:
        # 1. models
        t = time.perf_counter()
        cfgs: dict[tuple, dict] = {}
        for p in points:
            cfgs.setdefault((p.model, p.wbits, p.abits, p.in_bits), p.model_config())
        cfg_list = list(cfgs)
        models: dict[tuple, dict] = {}
        tell("train", 0, len(cfg_list))
        args = [(cfgs[c], train, cache) for c in cfg_list]
        for n, (i, m) in enumerate(pool.map_unordered(train_model, args), 1):
            models[cfg_list[i]] = m
            tell("train", n, len(cfg_list))
        phases["train_s"] = round(time.perf_counter() - t, 2)

        def model_of(p: Point) -> dict:
            return models[(p.model, p.wbits, p.abits, p.in_bits)]

        # 2. points
        t = time.perf_counter()
        records: list[dict | None] = [None] * len(points)
        tell("points", 0, len(points))
        args = [(p, model_of(p), opts, str(out), spec.synth, use_cache) for p in points]
        for n, (i, rec) in enumerate(pool.map_unordered(run_point, args), 1):
            records[i] = rec
            tell("points", n, len(points))
        phases["points_s"] = round(time.perf_counter() - t, 2)
        recs: list[dict] = [r for r in records if r is not None]

        # 3. synthesis of the Pareto points
        if spec.synth_pareto and not spec.synth:
            t = time.perf_counter()
            mark_pareto(recs)
            chosen = pick_for_synth(recs, spec.synth_max)
            tell("synth", 0, len(chosen))
            args = [
                (points[i], model_of(points[i]), opts, str(out), True, use_cache) for i in chosen
            ]
            for n, (j, rec) in enumerate(pool.map_unordered(run_point, args), 1):
                recs[chosen[j]] = rec
                tell("synth", n, len(chosen))
            phases["synth_s"] = round(time.perf_counter() - t, 2)
        where = pool.describe()

    fronts = mark_pareto(recs)
    results = {
        "version": RESULTS_VERSION,
        "spec": spec.to_json(),
        "executor": where,
        "jobs": None if ray else jobs,
        "ray": ray,
        "models": [
            {"model": c[0], "wbits": c[1], "abits": c[2], "in_bits": c[3], **models[c]}
            for c in cfg_list
        ],
        "points": recs,
        "pareto": fronts,
        "estimate_error": estimate_errors(recs),
        "counts": {
            "points": len(recs),
            "ok": sum(r["status"] == "ok" for r in recs),
            "failed": sum(r["status"] != "ok" for r in recs),
            "synthesized": sum(bool(r.get("synth")) for r in recs),
            "cached": sum(bool(r.get("cached")) for r in recs),
        },
        "phases": phases,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if report:
        write_reports(results, out)
    return results


def pick_for_synth(recs: list[dict], cap: int) -> list[int]:
    """Indices of the Pareto points to synthesize: at most ``cap``, taken round-robin over the
    boards, each board's smallest (estimated LUTs: the quickest builds) first."""
    by_board: dict[str, list[int]] = {}
    for i, r in enumerate(recs):
        if r.get("pareto"):
            by_board.setdefault(r["point"]["board"], []).append(i)
    for v in by_board.values():
        v.sort(key=lambda i: (recs[i]["lut"] or 0, -(recs[i]["images_per_s"] or 0)))
    chosen: list[int] = []
    while len(chosen) < cap and any(by_board.values()):
        for v in by_board.values():
            if v and len(chosen) < cap:
                chosen.append(v.pop(0))
    return chosen


def write_reports(results: dict, out: Path) -> None:
    """``results.json``, ``results.csv`` and ``report.html`` in ``out`` (each atomically)."""
    from bitfab.flows.explore.report import write_csv, write_html

    write_json_atomic(out / "results.json", results)
    write_csv(results["points"], out / "results.csv")
    write_html(results, out / "report.html")
