"""Train, export and verify two QONNX models that bitfab did not define (bench, not a test).

The models (``examples/foreign_models.py``: a 784-128-96-10 mixed-precision MLP and a two-conv W2A2
CNN) are plain ``brevitas.nn`` layers trained with a plain PyTorch loop on Fashion-MNIST and
exported with ``brevitas.export.export_qonnx``; bitfab's zoo and training code are not used.
Then, as an outside user would, bitfab's CLI: ``dataflow MODEL.onnx --target-cycles N``,
``compile DIR/dataflow.onnx --array A`` and ``verify DIR3 --images N --backend verilator``.
One record per (model, array) is merged into ``bench/results/foreign.json``: test accuracy
(torch on all test images, QONNX execution on ``--qonnx-images``), images verified, mismatches,
measured cycles per image vs the estimate, wall times.

    .venv/bin/python bench/foreign_models.py --models mlp --arrays parallel,bitserial,bitfusion
    .venv/bin/python bench/foreign_models.py --models cnn --images 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from bitfab.kinds import ARRAY_KINDS as ARRAYS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "foreign.json"
PY = sys.executable
#: folding target (cycles per image of the slowest layer, FINN's count) per model and array; the
#: bit-serial array takes wbits*abits cycles per fold (32 for the MLP's W4 x 8-bit input layer,
#: 4 for the CNN's W2A2 layers), so its target is lower to keep a run within minutes; at 150 the
#: MLP's bit-serial accelerator (MVAU_0 PE*SIMD ~ 700) took over 8 minutes in ``bitfab compile``
TARGETS = {
    ("mlp", "parallel"): 2000,
    ("mlp", "bitserial"): 400,
    ("mlp", "bitfusion"): 2000,
    ("cnn", "parallel"): 2000,
    ("cnn", "bitserial"): 500,
    ("cnn", "bitfusion"): 2000,
    ("cnn_pad1", "parallel"): 2000,
    ("cnn_pad1", "bitserial"): 500,
    ("cnn_pad1", "bitfusion"): 2000,
}
VERIFY_KEYS = (
    "passed",
    "mismatching_chunks",
    "first_mismatch",
    "cycles_per_image",
    "latency",
    "estimate",
    "ratio_cycles_per_image",
    "ratio_latency",
    "cycles_per_s",
    "sim_wall_s",
    "build_s",
    "golden_s",
    "wall_s",
    "jobs",
    "chunks",
)


def run(cmd: list[str]) -> str:
    """Run a bitfab CLI command from the repository root; raise with its stderr on failure."""
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[2:])} failed ({p.returncode}): {p.stderr.strip()[-600:]}"
        )
    return p.stdout.strip()


def train_and_export(name: str, epochs: int, qonnx_images: int, work: Path) -> tuple[Path, dict]:
    """Train model ``name`` on all Fashion-MNIST training images, export QONNX, measure accuracy.

    Reuses ``work/name/model.onnx`` when ``metrics.json`` there says the same epochs.
    """
    out = work / name
    metrics_file = out / "metrics.json"
    onnx_file = out / "model.onnx"
    if metrics_file.exists() and onnx_file.exists():
        m = json.loads(metrics_file.read_text())
        if m.get("epochs") == epochs and m.get("qonnx_images", 0) >= qonnx_images:
            return onnx_file, m
    import torch

    from bitfab.models.data import load_dataset
    from examples import foreign_models as fm

    out.mkdir(parents=True, exist_ok=True)
    x_train, y_train = load_dataset("fashion-mnist", "train")
    x_test, y_test = load_dataset("fashion-mnist", "test")
    torch.manual_seed(0)
    model = fm.MODELS[name]()
    t0 = time.perf_counter()
    fm.train(model, x_train, y_train, epochs, log=lambda s: print(f"[{name}] {s}", flush=True))
    train_s = time.perf_counter() - t0
    torch_pred = fm.torch_predict(model, x_test)
    fm.export(model, onnx_file)
    t0 = time.perf_counter()
    q_pred = fm.qonnx_predict(onnx_file, x_test[:qonnx_images])
    m = {
        "epochs": epochs,
        "train_images": len(x_train),
        "train_s": round(train_s, 1),
        "torch_test_acc": round(float((torch_pred == y_test).mean()), 4),
        "torch_test_images": len(y_test),
        "qonnx_test_acc": round(float((q_pred == y_test[:qonnx_images]).mean()), 4),
        "qonnx_images": qonnx_images,
        "qonnx_agrees_with_torch": round(float((q_pred == torch_pred[:qonnx_images]).mean()), 4),
        "qonnx_s": round(time.perf_counter() - t0, 1),
    }
    metrics_file.write_text(json.dumps(m, indent=2) + "\n")
    return onnx_file, m


def tied_folding(df_json: Path) -> dict | None:
    """A folding where every depthwise sliding window's SIMD equals the PE of the Pool after it
    (the larger of the two), or None if the folding already holds that tie (the compiler needs
    it; older ``bitfab dataflow`` versions did not enforce it)."""
    layers = json.loads(df_json.read_text())["layers"]
    fold = {ly["name"]: {"PE": ly.get("PE") or 1, "SIMD": ly.get("SIMD") or 1} for ly in layers}
    changed = False
    for a, b in zip(layers, layers[1:], strict=False):
        if a["op_type"] == "ConvolutionInputGenerator" and a.get("depthwise"):
            if b["op_type"] == "Pool" and fold[a["name"]]["SIMD"] != fold[b["name"]]["PE"]:
                v = max(fold[a["name"]]["SIMD"], fold[b["name"]]["PE"])
                fold[a["name"]]["SIMD"] = fold[b["name"]]["PE"] = v
                changed = True
    return fold if changed else None


def dataflow(onnx_file: Path, target: int, out: Path) -> tuple[Path, str]:
    """``bitfab dataflow --target-cycles``; re-run with a tied folding file if needed."""
    cmd = [PY, "-m", "bitfab", "dataflow", str(onnx_file), "--out", str(out)]
    summary = run([*cmd, "--target-cycles", str(target)])
    fold = tied_folding(out / "dataflow.json")
    if fold is not None:
        f = out.parent / f"{out.name}_folding.json"
        f.write_text(json.dumps(fold))
        summary = run([*cmd, "--folding", str(f)]) + " (SWG/Pool tie applied)"
    return out / "dataflow.onnx", summary


def merge(record: dict, results: Path) -> None:
    """Replace the record with the same (model, array, images) in ``results``, or add it."""
    data = json.loads(results.read_text()) if results.exists() else {"runs": []}
    key = (record["model"], record["array"], record["images"])
    data["runs"] = [r for r in data["runs"] if (r["model"], r["array"], r["images"]) != key]
    data["runs"].append(record)
    data["runs"].sort(key=lambda r: (r["model"], r["array"], r["images"]))
    data["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n")


def bench_one(name: str, arr: str, args: argparse.Namespace, work: Path) -> dict:
    """Train/export (cached), dataflow, compile and verify one (model, array); return the record."""
    t0 = time.perf_counter()
    target = TARGETS[(name, arr)] if args.target is None else args.target
    rec: dict = {"model": name, "array": arr, "images": args.images, "target_cycles": target}
    if os.environ.get("BITFAB_COMMIT"):
        rec["bitfab_commit"] = os.environ["BITFAB_COMMIT"]
    try:
        onnx_file, metrics = train_and_export(name, args.epochs, args.qonnx_images, work)
        rec.update(metrics)
        t1 = time.perf_counter()
        df, rec["dataflow"] = dataflow(onnx_file, target, work / f"df_{name}_{arr}_{target}")
        rec["dataflow_s"] = round(time.perf_counter() - t1, 1)
        acc = work / f"acc_{name}_{arr}_{target}"
        t1 = time.perf_counter()
        rec["compile"] = run(
            [PY, "-m", "bitfab", "compile", str(df), "--array", arr, "--out", str(acc)]
        )
        rec["compile_s"] = round(time.perf_counter() - t1, 1)
        cmd = [PY, "-m", "bitfab", "verify", str(acc), "--images", str(args.images)]
        cmd += ["--backend", "verilator", "--jobs", str(args.jobs), "--quiet"]
        rec["command"] = " ".join(["python", *cmd[1:]])
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if p.returncode not in (0, 1):
            raise RuntimeError(f"verify failed ({p.returncode}): {p.stderr.strip()[-600:]}")
        rep = json.loads((acc / "verify.json").read_text())
        rec.update({k: rep[k] for k in VERIFY_KEYS if k in rep})
        # verify compares every output and reports the first mismatching image; 0 when passed
        rec["mismatches"] = 0 if rep["passed"] else ">=1 (see first_mismatch)"
        rec["within_10pct"] = abs(rep["ratio_cycles_per_image"] - 1) <= 0.10
    except Exception as e:  # noqa: BLE001 - record the failure and go on with the next run
        rec["error"] = f"{type(e).__name__}: {e}"
    rec["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn", help="comma list of mlp, cnn, cnn_pad1")
    ap.add_argument("--arrays", default=",".join(ARRAYS), help="comma list of PE array kinds")
    ap.add_argument("--images", type=int, default=10000, help="test images to verify")
    ap.add_argument("--epochs", type=int, default=5, help="training epochs (60,000 images each)")
    ap.add_argument("--qonnx-images", type=int, default=1000, help="images for QONNX accuracy")
    ap.add_argument("--target", type=int, default=None, help="override the folding target")
    ap.add_argument("--jobs", type=int, default=2, help="simulator runs at once")
    ap.add_argument("--work", default="/tmp/bitfab_foreign", help="work folder (cached training)")
    ap.add_argument("--results", default=str(RESULTS), help="JSON file the records merge into")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for training")
    args = ap.parse_args()
    import torch

    # one thread: on a shared 2-core machine torch's default (2 spinning threads) trained the MLP
    # 17x slower (52 s instead of 3 s for 6,000 images, measured side by side at load 6)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        for arr in args.arrays.split(","):
            rec = bench_one(name, arr, args, work)
            merge(rec, Path(args.results))
            keys = ("model", "array", "images", "passed", "cycles_per_image", "wall_s", "error")
            print(json.dumps({k: rec.get(k) for k in keys}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
