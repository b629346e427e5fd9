"""Quantization-methods benchmark: runs every part in turn, then checks issue 6's targets.

Parts (each a script that merges its rows into ``bench/results/methods.json``; a missing script
is skipped): ``ptq`` and ``datafree`` (bench/methods_ptq.py), ``qat`` (bench/methods_qat.py),
``mixed`` (bench/methods_mixed.py). Then the targets are evaluated from the JSON and stored as
part ``targets``:

- PTQ at W8A8 within 0.3 points of float (best method per model, and every method);
- data-free calibration within 1 point of real-data calibration at W8A8 (same method);
- best PTQ at W4A4 within 2 points of QAT at W4A4 (QAT rows from part ``qat``).

    nice -n 5 .venv/bin/python bench/methods.py            # all parts, then the targets
    nice -n 5 .venv/bin/python bench/methods.py --targets-only
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from methods_common import RESULTS, merge_part  # noqa: E402

PARTS = [
    ("methods_ptq.py", ["--parts", "ptq,datafree"]),
    ("methods_qat.py", []),
    ("methods_mixed.py", []),
]


def _rows(data: dict, part: str) -> list[dict]:
    return data.get("parts", {}).get(part, {}).get("rows", [])


def _acc(row: dict) -> float | None:
    for k in ("accuracy", "test_accuracy"):
        if isinstance(row.get(k), (int, float)):
            v = float(row[k])
            return v * 100 if v <= 1.0 else v
    return None


def targets(data: dict) -> list[dict]:
    """The issue's targets as rows: target, model, measured figures, met (None = no data)."""
    ptq, free, qat = _rows(data, "ptq"), _rows(data, "datafree"), _rows(data, "qat")
    out = []
    floats = {r["model"]: r["accuracy"] for r in ptq if r["method"] == "float"}
    for model, f_acc in floats.items():
        w8 = [r for r in ptq if r["model"] == model and r["precision"] == "w8a8"]
        if w8:
            best = max(w8, key=lambda r: r["accuracy"])
            worst = min(w8, key=lambda r: r["accuracy"])
            out.append(
                {
                    "target": "PTQ W8A8 within 0.3 points of float",
                    "model": model,
                    "float": f_acc,
                    "best": f"{best['method']} {best['accuracy']:.2f}",
                    "worst": f"{worst['method']} {worst['accuracy']:.2f}",
                    "gap_best": round(f_acc - best["accuracy"], 2),
                    "gap_worst": round(f_acc - worst["accuracy"], 2),
                    "met": f_acc - best["accuracy"] <= 0.3,
                    "met_every_method": f_acc - worst["accuracy"] <= 0.3,
                }
            )
    for r in free:
        if r["precision"] == "w8a8":
            out.append(
                {
                    "target": "data-free within 1 point of real-data calibration at W8A8",
                    "model": r["model"],
                    "method": r["method"],
                    "synthetic": r["accuracy"],
                    "real": r["real_calib_accuracy"],
                    "gap": r["gap_to_real"],
                    "met": r["gap_to_real"] <= 1.0,
                }
            )
    for model in floats:
        w4 = [r for r in ptq if r["model"] == model and r["precision"] == "w4a4"]
        q4 = [
            _acc(r)
            for r in qat
            if r.get("model") == model
            and str(r.get("precision", "")).lower() == "w4a4"
            and _acc(r) is not None
        ]
        best = max(w4, key=lambda r: r["accuracy"]) if w4 else None
        row = {
            "target": "best PTQ W4A4 within 2 points of QAT W4A4",
            "model": model,
            "best_ptq": f"{best['method']} {best['accuracy']:.2f}" if best else None,
            "best_qat": max(q4) if q4 else None,
        }
        if best and q4:
            row["gap"] = round(max(q4) - best["accuracy"], 2)
            row["met"] = row["gap"] <= 2.0
        else:
            row["met"] = None  # the qat part has not run yet
        out.append(row)
    mixed = _rows(data, "mixed")
    for uni in mixed:
        if uni.get("method") != "uniform" or not uni.get("fits_board"):
            continue  # a uniform config that does not fit the board is no baseline there
        for r in mixed:
            if (
                r.get("model") == uni["model"]
                and r.get("method", "").startswith("mixed")
                and (r.get("budget") or {}).get("luts") == uni["cost"]["luts"]
            ):
                delta = round(_acc(r) - _acc(uni), 2)
                out.append(
                    {
                        "target": "mixed precision >= 1 point above uniform at the same LUT "
                        f"budget on the UP5K ({uni['board']}, {uni['array']})",
                        "model": r["model"],
                        "method": r["method"],
                        "uniform": f"{uni['precision']} {_acc(uni):.2f}",
                        "mixed": round(_acc(r), 2),
                        "seeds": r.get("seeds"),
                        "gap": delta,
                        "met": delta >= 1.0,
                    }
                )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets-only", action="store_true", help="only evaluate the targets")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if not args.targets_only:
        for script, extra in PARTS:
            path = ROOT / "bench" / script
            if not path.exists():
                print(f"{script}: not present, skipped", flush=True)
                continue
            print(f"== {script} {' '.join(extra)}", flush=True)
            done = subprocess.run([sys.executable, str(path), *extra], cwd=ROOT)
            if done.returncode != 0:
                print(f"{script}: exit {done.returncode}", flush=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    rows = targets(data)
    merge_part("targets", rows, time.perf_counter() - t0)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
