"""Methods benchmark, parts "ptq" and "datafree": PTQ of the float checkpoints on Fashion-MNIST.

Each row runs ``bitfab quantize``'s code path (:func:`bitfab.models.ptq.quantize`: calibrate,
quantize, evaluate on all 10,000 test images, export QONNX, export check on 500 test images) on
the float checkpoints ``runs/methods/float_tfc`` and ``runs/methods/float_cnv-s`` (``bitfab train
--wbits float``; their epochs are in the rows). Float baseline rows come from their metrics.json.

    nice -n 5 .venv/bin/python bench/methods_ptq.py --parts ptq,datafree

Part "ptq": every method at W8A8, W4A4, W2A2 with 512 random training images. Part "datafree":
``--calib synthetic`` (ZeroQ, 256 images) beside the same method with real images, W8A8, W4A4, W2A2.
Rows are merged into ``bench/results/methods.json`` (``bench/methods_common.merge_part``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from methods_common import merge_part  # noqa: E402

from bitfab.models.datafree import DEFAULT_IMAGES, synthesize  # noqa: E402
from bitfab.models.ptq import METHODS, PAPERS, load_float_checkpoint, quantize  # noqa: E402

FLOAT_DIRS = {"tfc": ROOT / "runs/methods/float_tfc", "cnv-s": ROOT / "runs/methods/float_cnv-s"}
OUT = ROOT / "runs/methods/ptq"
PRECISIONS = {"w8a8": (8, 8), "w4a4": (4, 4), "w2a2": (2, 2)}
DATAFREE_PRECISIONS = ("w8a8", "w4a4", "w2a2")
DATAFREE_METHODS = ("mse", "bias-correction", "gptq")
CALIB = 512
CHECK_IMAGES = 500


def float_rows(models: list[str]) -> list[dict]:
    rows = []
    for m in models:
        met = json.loads((FLOAT_DIRS[m] / "metrics.json").read_text())
        rows.append(
            {
                "method": "float",
                "model": m,
                "precision": "float",
                "accuracy": round(100 * met["test_accuracy"], 2),
                "epochs": met["epochs"],
                "train_seconds": met["train_seconds"],
                "paper": "-",
                "command": f"bitfab train --model {m} --wbits float --epochs {met['epochs']}",
            }
        )
    return rows


def synthetic_set(model: str) -> tuple[torch.Tensor, dict]:
    """The ZeroQ set ``bitfab quantize --calib synthetic`` makes (seed 0), made once per model."""
    fm, _, _ = load_float_checkpoint(FLOAT_DIRS[model])
    x, info = synthesize(fm, DEFAULT_IMAGES, seed=0)
    print(f"{model}: ZeroQ set of {len(x)} images in {info['seconds']} s", flush=True)
    return x, {"kind": "synthetic", **info}


def run_one(model: str, prec: str, method: str, calib: str | int, syn=None) -> dict:
    w, a = PRECISIONS[prec]
    tag = "syn" if calib == "synthetic" else f"c{calib}"
    out = OUT / f"{model}_{prec}_{method}_{tag}"
    if out.exists():
        shutil.rmtree(out)
    t0 = time.perf_counter()
    met = quantize(
        FLOAT_DIRS[model] / "checkpoint.pt",
        out,
        wbits=w,
        abits=a,
        method=method,
        calib=calib if syn is None else syn[0],
        calib_info=None if syn is None else syn[1],
        check_images=CHECK_IMAGES,
        progress=False,
    )
    row = {
        "method": method,
        "model": model,
        "precision": prec,
        "accuracy": round(100 * met["test_accuracy"], 2),
        "float_accuracy": round(100 * met["float_accuracy"], 2),
        "drop": round(100 * (met["float_accuracy"] - met["test_accuracy"]), 2),
        "calibration": met["calibration"],
        "float_epochs": met["float_epochs"],
        "paper": PAPERS[method],
        "seconds": round(time.perf_counter() - t0, 1),
        "quantize_seconds": met["quantize_seconds"],
        "export_ok": met["export_check"]["ok"],
        "command": f"bitfab quantize {FLOAT_DIRS[model].relative_to(ROOT)} --wbits {w} "
        f"--abits {a} --method {method} --calib {calib} --out {out.relative_to(ROOT)}",
    }
    print(
        f"{model} {prec} {method:16s} calib={calib}: {row['accuracy']:.2f}% "
        f"(float {row['float_accuracy']:.2f}) {row['seconds']} s",
        flush=True,
    )
    return row


def tables() -> str:
    """Markdown tables of parts ptq and datafree from bench/results/methods.json."""
    data = json.loads((ROOT / "bench/results/methods.json").read_text())["parts"]
    lines = []
    ptq = data.get("ptq", {}).get("rows", [])
    for model in dict.fromkeys(r["model"] for r in ptq):
        rows = [r for r in ptq if r["model"] == model]
        f = next(r for r in rows if r["method"] == "float")
        lines += [
            f"**{model}** (float {f['accuracy']:.2f}%, {f['epochs']} epochs)",
            "",
            "| method | " + " | ".join(PRECISIONS) + " | seed paper |",
            "|---|" + "---|" * len(PRECISIONS) + "---|",
        ]
        for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "float"):
            acc = {r["precision"]: r["accuracy"] for r in rows if r["method"] == method}
            cells = " | ".join(f"{acc[p]:.2f}" if p in acc else "-" for p in PRECISIONS)
            lines.append(f"| {method} | {cells} | {PAPERS[method]} |")
        lines.append("")
    free = data.get("datafree", {}).get("rows", [])
    if free:
        lines += [
            "| model | precision | method | synthetic (ZeroQ) | real (512 images) | gap |",
            "|---|---|---|---|---|---|",
        ]
        for r in free:
            lines.append(
                f"| {r['model']} | {r['precision']} | {r['method']} | {r['accuracy']:.2f} | "
                f"{r['real_calib_accuracy']:.2f} | {r['gap_to_real']:+.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="ptq,datafree")
    ap.add_argument("--models", default="tfc,cnv-s")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--table", action="store_true", help="print the docs tables and stop")
    args = ap.parse_args()
    if args.table:
        print(tables())
        return
    torch.set_num_threads(1)
    models = args.models.split(",")
    methods = args.methods.split(",")
    parts = args.parts.split(",")
    if "ptq" in parts:
        t0 = time.perf_counter()
        rows = float_rows(models)
        for model in models:
            for prec in PRECISIONS:
                for method in methods:
                    rows.append(run_one(model, prec, method, CALIB))
                    merge_part("ptq", rows, time.perf_counter() - t0)
    if "datafree" in parts:
        t0 = time.perf_counter()
        rows = []
        real = {}
        try:
            data = json.loads((ROOT / "bench/results/methods.json").read_text())
            for r in data["parts"]["ptq"]["rows"]:
                real[(r["model"], r["precision"], r["method"])] = r["accuracy"]
        except (OSError, KeyError, ValueError):
            pass
        for model in models:
            syn = synthetic_set(model)
            for prec in DATAFREE_PRECISIONS:
                for method in DATAFREE_METHODS:
                    row = run_one(model, prec, method, "synthetic", syn)
                    key = (model, prec, method)
                    if key not in real:
                        real[key] = run_one(model, prec, method, CALIB)["accuracy"]
                    row["real_calib_accuracy"] = real[key]
                    row["gap_to_real"] = round(real[key] - row["accuracy"], 2)
                    row["paper"] = "Cai et al. 2020 (CVPR), ZeroQ; " + row["paper"]
                    rows.append(row)
                    merge_part("datafree", rows, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
