"""Full-set golden check: dataflow golden model vs QONNX model on all Fashion-MNIST test images.

For each trained run (``runs/tfc_w1a1``, ``runs/cnv_w2a2``, ``runs/mixed`` by default):

1. ``bitfab.dataflow.build_dataflow(runs/NAME/model.onnx, WORK/NAME)`` (PE=SIMD=1), timed;
2. :func:`bitfab.dataflow.golden.check_agreement` on all 10,000 test images: the class of the
   dataflow graph executed by FINN/qonnx (uint8 pixels in) against the class of the QONNX model
   (pixels / 255 in), image by image, with the golden and QONNX speeds (images/s);
3. both accuracies against the labels;
4. golden speed per image (plain ``execute_onnx``) and batched, side by side on 200 images.

Results go to ``bench/results/golden_agreement.json`` (rewritten at once after every run, so
finished runs survive an interruption). Disagreements are split into float ties of the QONNX
scores (the integer scores are equal, see ``AgreementReport``) and real mismatches.

Run (shared 2-core machine)::

    nice -n 5 .venv/bin/python bench/golden_agreement.py
    .venv/bin/python bench/golden_agreement.py --runs tfc_w1a1 --limit 500   # quick look
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "golden_agreement.json"
DEFAULT_RUNS = ("tfc_w1a1", "cnv_w2a2", "mixed")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".golden_agreement.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def run_one(
    name: str, runs_dir: Path, work: Path, images: np.ndarray, labels: np.ndarray, batch: int
) -> dict:
    import shutil

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bitfab.dataflow.build import build_dataflow
    from bitfab.dataflow.golden import check_agreement, images_per_second

    # work on a snapshot: the training stage may replace runs/NAME while this runs
    orig = runs_dir / name / "model.onnx"
    snap = work / f"{name}_src"
    snap.mkdir(parents=True, exist_ok=True)
    mtime = dt.datetime.fromtimestamp(orig.stat().st_mtime).isoformat(timespec="seconds")
    src = Path(shutil.copy2(orig, snap / "model.onnx"))
    metrics_src = runs_dir / name / "metrics.json"
    metrics = json.loads(metrics_src.read_text()) if metrics_src.exists() else {}
    out = work / name
    t0 = time.perf_counter()
    report = build_dataflow(src, out, progress=True)
    t_build = time.perf_counter() - t0
    with Progress(
        TextColumn(f"[bold]{name}[/] golden + QONNX"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} images"),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=2 * len(images))
        t1 = time.perf_counter()
        rep = check_agreement(
            src, out / "dataflow.onnx", images, batch=batch, progress=lambda k: bar.advance(task, k)
        )
        t_check = time.perf_counter() - t1
    summary = rep.summary()
    # per-image execute_onnx vs the batched run, side by side on the same images
    speed = images_per_second(out / "dataflow.onnx", images[:200], (1, batch))
    return {
        "run": name,
        "model": str(orig.relative_to(ROOT)) if orig.is_relative_to(ROOT) else str(orig),
        "config": metrics.get("config"),
        "trained_test_accuracy": metrics.get("test_accuracy"),
        "model_mtime": mtime,
        "dataflow_seconds": round(t_build, 2),
        "op_types": report["op_types"],
        "hw_layers": len(report["layers"]),
        "cycles_per_image_pe1": report["cycles_per_image"],
        **summary,
        "golden_accuracy": float(np.mean(rep.golden == labels)),
        "qonnx_accuracy": float(np.mean(rep.reference == labels)),
        "check_wall_seconds": round(t_check, 2),
        "golden_images_per_s_side_by_side": {
            "images": min(200, len(images)),
            "batch_1_execute_onnx": round(speed[1], 2),
            f"batch_{batch}": round(speed[batch], 2),
        },
        "batch": batch,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), help="run folder names")
    ap.add_argument("--runs-dir", default=str(ROOT / "runs"))
    ap.add_argument("--work", default=None, help="where dataflow outputs go (default: temp)")
    ap.add_argument("--limit", type=int, default=None, help="first N test images only")
    ap.add_argument("--batch", type=int, default=100, help="images per golden execution")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)

    from bitfab.errors import BitfabError
    from bitfab.models.data import load_dataset

    images, labels = load_dataset("fashion-mnist", "test")
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]
    images = images.reshape(len(images), 28, 28)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bitfab_golden_"))
    result = {
        "benchmark": "golden_agreement",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "shared by other jobs",
        },
        "dataset": "fashion-mnist test",
        "images": len(images),
        "runs": [],
    }
    status = 0
    for name in args.runs:
        if not (Path(args.runs_dir) / name / "model.onnx").exists():
            result["runs"].append({"run": name, "error": "model.onnx missing"})
            status = 1
            continue
        t = time.perf_counter()
        try:
            entry = run_one(name, Path(args.runs_dir), work, images, labels, args.batch)
        except (OSError, BitfabError) as e:
            result["runs"].append({"run": name, "error": f"{type(e).__name__}: {e}"})
            _write_json(Path(args.out), result)
            status = 1
            continue
        entry["wall_seconds"] = round(time.perf_counter() - t, 2)
        result["runs"].append(entry)
        _write_json(Path(args.out), result)
        print(
            f"{name}: {entry['mismatch_count']} mismatches ({entry['tie_mismatch_count']} "
            f"ties, {entry['real_mismatch_count']} real) on {entry['images']} images; golden "
            f"{entry['golden_images_per_s']:.0f} img/s, QONNX {entry['qonnx_images_per_s']:.0f}"
            f" img/s; accuracy golden {entry['golden_accuracy']:.4f} QONNX "
            f"{entry['qonnx_accuracy']:.4f}; {entry['wall_seconds']:.0f} s"
        )
        if entry["real_mismatch_count"]:
            status = 1
    _write_json(Path(args.out), result)
    return status


if __name__ == "__main__":
    sys.exit(main())
