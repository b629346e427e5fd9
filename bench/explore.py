"""``bitfab explore`` benchmark: a 36-point sweep, Pareto builds, points per hour on 1 and 2 workers.

Sweep: tfc and cnv-s x W1A1, W2A2, W4A4 x parallel, bit-serial, bit-fusion arrays x iCEBreaker
and ULX3S-85F = 36 points. Training is kept cheap (``--epochs`` 1 on the first ``--limit``
10,000 Fashion-MNIST images; the accuracy figures are those of such short training, not the
zoo's best). ``--max-luts`` 10000 caps every design at 10,000 logic cells (board top
included): without it the fit fills the ULX3S-85F with fully unrolled designs (~63,000 cells)
whose compile alone took over 15 minutes here on a loaded machine.

1. **full**: the whole sweep with ``--jobs`` 2 (training, estimates for every point, then
   ``bitfab build`` of at most ``--synth-max`` Pareto points, the smallest first) into
   ``--out`` (default ``runs/explore_bench``; its ``report.html`` is the HTML report).
2. **estimate throughput**: the estimate phase again, models already trained, point cache off,
   with 1 and then 2 local workers (each into a fresh temporary folder): points per hour. On a
   subset (``--throughput-models``/``--throughput-wbits``/``--throughput-boards``, default tfc
   W1A1 and W2A2 on the iCEBreaker, 3 arrays: 6 points) to keep the bench short on a shared
   machine; ``--throughput-models tfc,cnv-s --throughput-wbits 1,2,4 --throughput-boards
   icebreaker,ulx3s-85f`` for all 36.

Writes ``bench/results/explore.json`` (machine, command, wall times, points/hour, per-point
figures, Pareto fronts, estimate-vs-synthesis errors).

    nice -n 5 .venv/bin/python bench/explore.py [--epochs 1] [--limit 10000] [--synth-max 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "explore.json"

SWEEP = {
    "model": "tfc,cnv-s",
    "wbits": "1,2,4",
    "array": "parallel,bitserial,bitfusion",
    "board": "icebreaker,ulx3s-85f",
}


def _machine() -> dict:
    """bitfab's machine record (cpu, cores, platform) plus the load when the bench started."""
    from bitfab.models.train import machine_info

    return {
        **machine_info(),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
        "note": "2 cores shared with other engineers' jobs; run with nice -n 5",
    }


def _tell(phase: str, done: int, total: int) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {phase}: {done}/{total}", file=sys.stderr, flush=True)


def _row(r: dict) -> dict:
    keys = ("name", "status", "stage", "reason", "accuracy", "lut", "ff", "bram", "dsp",
            "fmax_mhz", "clock_mhz", "cycles_per_image", "images_per_s", "images_per_s_per_lut",
            "source", "pareto", "estimate_error")  # fmt: skip
    out = {k: r.get(k) for k in keys}
    if r.get("synth"):
        out["estimate_lut"] = r["estimate"]["lut"]
        out["estimate_images_per_s"] = r["estimate"]["images_per_s"]
        out["build_seconds"] = r["synth"]["build_seconds"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--limit", type=int, default=10000)
    ap.add_argument("--synth-max", type=int, default=2)
    ap.add_argument(
        "--max-luts",
        type=int,
        default=10000,
        help="logic cells per design at most (default 10000: ULX3S designs stay quick to compile)",
    )
    ap.add_argument("--out", default=str(ROOT / "runs" / "explore_bench"))
    ap.add_argument("--cache", default=None, help="model cache (default ~/.cache/bitfab/explore)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument(
        "--throughput-only",
        action="store_true",
        help="keep the full sweep of bench/results/explore.json (and --out), run only part 2",
    )
    ap.add_argument(
        "--collect-partial",
        action="store_true",
        help="the full sweep was stopped: record the points finished in --out (estimate.json / "
        "synth.json as written) as a partial result, the rest as not run",
    )
    ap.add_argument("--throughput-models", default="tfc", help="models of the throughput runs")
    ap.add_argument("--throughput-wbits", default="1,2", help="bits of the throughput runs")
    ap.add_argument("--throughput-boards", default="icebreaker", help="boards, throughput runs")
    args = ap.parse_args()

    from bitfab.flows.explore.spec import make_spec

    opts = {**SWEEP, "epochs": args.epochs, "limit": args.limit, "verify_images": 50,
            "max_luts": args.max_luts}  # fmt: skip
    spec = make_spec(
        {**opts, "synth_pareto": args.synth_max > 0, "synth_max": max(1, args.synth_max)}
    )
    result: dict = {
        "bench": "explore",
        "command": "nice -n 5 .venv/bin/python bench/explore.py " + " ".join(sys.argv[1:]),
        "machine": _machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sweep": {**opts, "points": len(spec.points()), "synth_pareto_max": args.synth_max},
    }
    if args.collect_partial:
        _collect_partial(spec, args, result)
        return 0
    if args.throughput_only:  # part 1 from an earlier run
        now = result
        result = json.loads(RESULTS.read_text())
        result["throughput_run"] = {k: now[k] for k in ("command", "machine", "date")}
        full = json.loads((Path(args.out) / "results.json").read_text())
    else:
        full = _full(spec, args, result)
    if not args.skip_throughput:
        _throughput(args, opts, full, result)
    print(json.dumps(result.get("full", {}).get("counts")))
    print(json.dumps(result.get("estimate_throughput"), indent=1))
    return 0


def _full(spec, args: argparse.Namespace, result: dict) -> dict:  # noqa: ANN001
    """Part 1: the whole sweep with 2 workers (estimates, Pareto builds, report)."""
    from bitfab.flows.explore.sweep import run_sweep

    t0 = time.perf_counter()
    full = run_sweep(spec, args.out, jobs=2, cache_dir=args.cache, progress=_tell)
    result["full"] = {
        "jobs": 2,
        "wall_s": round(time.perf_counter() - t0, 1),
        "phases": full["phases"],
        "counts": full["counts"],
        "report": str(Path(args.out) / "report.html"),
        "models": [
            {
                k: m.get(k)
                for k in ("model", "wbits", "abits", "accuracy", "train_seconds", "cached", "error")
            }  # fmt: skip
            for m in full["models"]
        ],
        "pareto": full["pareto"],
        "estimate_error": full["estimate_error"],
        "points": [_row(r) for r in full["points"]],
    }
    _write(result)
    return full


def _collect_partial(spec, args: argparse.Namespace, result: dict) -> None:  # noqa: ANN001
    """Records of a stopped full sweep from the points' own files (no recomputation)."""
    from bitfab.flows.explore.cache import default_cache_dir, model_key
    from bitfab.flows.explore.pareto import estimate_errors, mark_pareto
    from bitfab.flows.explore.runner import _flatten
    from bitfab.flows.explore.sweep import write_reports

    out = Path(args.out).resolve()
    cache = Path(args.cache) if args.cache else default_cache_dir()
    train = {"epochs": spec.train.epochs, "seed": spec.train.seed, "limit": spec.train.limit,
             "dataset": spec.train.dataset}  # fmt: skip
    recs, models = [], {}
    for p in spec.points():
        key = model_key(p.model_config(), train)
        if key not in models:
            m = json.loads((cache / "models" / key / "metrics.json").read_text())
            models[key] = {"model": p.model, "wbits": p.wbits, "abits": p.abits, "key": key,
                           "accuracy": m["test_accuracy"], "train_seconds": m["train_seconds"],
                           "cached": True}  # fmt: skip
        rec = {"name": p.name, "point": p.to_json(), "model_key": key,
               "accuracy": models[key]["accuracy"], "status": "ok", "reason": None,
               "stage": None, "estimate": None, "synth": None, "cached": True}  # fmt: skip
        folder = out / "points" / p.name
        for what in ("estimate", "synth"):
            f = folder / f"{what}.json"
            if not f.is_file():
                if what == "estimate":
                    rec.update(status="failed", stage="not run",
                               reason="not run: the bench was stopped (time budget)")  # fmt: skip
                break
            d = json.loads(f.read_text())
            if d.get("error"):
                rec.update(status="failed", stage=what, reason=d["error"])
                break
            rec[what] = d["result"]
        s = rec["synth"]
        if s and not s["timing_met"]:
            rec.update(status="failed", stage="timing",
                       reason=f"timing not met: post-route Fmax {s['fmax_mhz']} MHz < clock "
                       f"{s['clock_mhz']:g} MHz")  # fmt: skip
        rec.update(_flatten(rec))
        recs.append(rec)
    fronts = mark_pareto(recs)
    results = {
        "version": 1, "spec": spec.to_json(), "executor": "local pool, 2 workers (stopped)",
        "jobs": 2, "ray": None, "models": list(models.values()), "points": recs,
        "pareto": fronts, "estimate_error": estimate_errors(recs),
        "counts": {"points": len(recs), "ok": sum(r["status"] == "ok" for r in recs),
                   "failed": sum(r["status"] != "ok" for r in recs),
                   "synthesized": sum(bool(r.get("synth")) for r in recs), "cached": len(recs),
                   "not_run": sum(r["stage"] == "not run" for r in recs)},
        "phases": {}, "seconds": 0.0,
    }  # fmt: skip
    write_reports(results, out)
    result["full"] = {
        "jobs": 2,
        "partial": True,
        "note": "the full sweep was stopped at the session's time budget; points not finished "
        "are recorded as not run",
        "counts": results["counts"],
        "report": str(out / "report.html"),
        "models": list(models.values()),
        "pareto": fronts,
        "estimate_error": results["estimate_error"],
        "points": [_row(r) for r in recs],
    }
    _write(result)


def _throughput(args: argparse.Namespace, opts: dict, full: dict, result: dict) -> None:
    """Part 2: the estimate phase of a subset, point cache off, 1 and 2 workers."""
    from bitfab.flows.explore.spec import make_spec
    from bitfab.flows.explore.sweep import run_sweep

    sub = {"model": args.throughput_models, "wbits": args.throughput_wbits,
           "board": args.throughput_boards}  # fmt: skip
    est_spec = make_spec({**opts, **sub})
    full_est = {r["name"]: r for r in full["points"]}
    result["estimate_throughput"] = {}
    for jobs in (1, 2):
        with tempfile.TemporaryDirectory(prefix="explore_bench_") as tmp:
            t0 = time.perf_counter()
            res = run_sweep(est_spec, tmp, jobs=jobs, cache_dir=args.cache, use_cache=False,
                            progress=_tell, report=False)  # fmt: skip
            wall = time.perf_counter() - t0
        pts_s = res["phases"]["points_s"]
        same = [a["estimate"] == full_est[a["name"]]["estimate"] for a in res["points"]]
        result["estimate_throughput"][f"jobs_{jobs}"] = {
            "subset": sub,
            "points": len(res["points"]),
            "points_phase_s": pts_s,
            "wall_s": round(wall, 1),
            "points_per_hour": round(len(res["points"]) / pts_s * 3600, 1),
            "models_cached": all(m.get("cached") for m in res["models"]),
            "estimates_equal_full_sweep": all(same),
            "loadavg_after": list(os.getloadavg()),
        }
        _write(result)
    t1 = result["estimate_throughput"]["jobs_1"]["points_per_hour"]
    t2 = result["estimate_throughput"]["jobs_2"]["points_per_hour"]
    result["estimate_throughput"]["speedup_2_vs_1"] = round(t2 / t1, 2)
    _write(result)


def _write(result: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    os.replace(tmp, RESULTS)


if __name__ == "__main__":
    sys.exit(main())
