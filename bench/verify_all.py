"""Verify every zoo accelerator on all 10,000 Fashion-MNIST test images (bench, not a test).

For tfc W1A1, tfc W2A2, cnv-s W2A2 and a mixed-precision tfc (``runs/<model>/model.onnx``),
each with the three PE array kinds: ``bitfab dataflow`` (folding target per model and array so
that a run stays within minutes), ``bitfab compile``, ``bitfab verify`` in Verilator on all test
images, back to back. Results (one record per run, merged into the file so partial runs keep
earlier ones) go to ``bench/results/verify.json``: zero mismatches and measured cycles per
image within 10 % of the estimate are the acceptance criteria.

    .venv/bin/python bench/verify_all.py [--images N] [--models tfc_w1a1,...] [--arrays ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from bitfab.kinds import ARRAY_KINDS as ARRAYS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "verify.json"
PY = sys.executable
MODELS = ("tfc_w1a1", "tfc_w2a2", "cnv_w2a2", "mixed")
#: folding target (cycles per image of the slowest layer) per model and array kind; bit-serial
#: arrays take wbits*abits cycles per fold, so their target is lower
TARGETS = {
    ("tfc_w1a1", "parallel"): 1000,
    ("tfc_w1a1", "bitserial"): 1000,
    ("tfc_w1a1", "bitfusion"): 1000,
    ("tfc_w2a2", "parallel"): 1000,
    ("tfc_w2a2", "bitserial"): 250,
    ("tfc_w2a2", "bitfusion"): 1000,
    ("mixed", "parallel"): 1000,
    ("mixed", "bitserial"): 100,
    ("mixed", "bitfusion"): 1000,
    ("cnv_w2a2", "parallel"): 2000,
    ("cnv_w2a2", "bitserial"): 400,
    ("cnv_w2a2", "bitfusion"): 2000,
}


def run(cmd: list[str]) -> str:
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-800:]}")
    return p.stdout.strip()


def dataflow(model: str, target: int, work: Path) -> Path:
    out = work / f"df_{model}_{target}"
    if not (out / "dataflow.onnx").exists():
        run(
            [
                PY,
                "-m",
                "bitfab",
                "dataflow",
                f"runs/{model}/model.onnx",
                "--out",
                str(out),
                "--target-cycles",
                str(target),
            ]
        )
    return out / "dataflow.onnx"


def merge(record: dict, results: Path = RESULTS) -> None:
    data = json.loads(results.read_text()) if results.exists() else {"runs": []}
    key = (record["model"], record["array"], record["images"])
    data["runs"] = [r for r in data["runs"] if (r["model"], r["array"], r["images"]) != key]
    data["runs"].append(record)
    data["machine"] = f"{platform.processor() or platform.machine()}, {platform.node()}"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--arrays", default=",".join(ARRAYS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/bitfab_verify_all")
    ap.add_argument("--results", default=str(RESULTS), help="JSON file the records merge into")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    for model in args.models.split(","):
        for arr in args.arrays.split(","):
            target = TARGETS[(model, arr)]
            t0 = time.perf_counter()
            rec = {"model": model, "array": arr, "images": args.images, "target_cycles": target}
            try:
                df = dataflow(model, target, work)
                acc = work / f"acc_{model}_{arr}"
                rec["compile"] = run(
                    [PY, "-m", "bitfab", "compile", str(df), "--array", arr, "--out", str(acc)]
                )
                cmd = [
                    PY,
                    "-m",
                    "bitfab",
                    "verify",
                    str(acc),
                    "--images",
                    str(args.images),
                    "--jobs",
                    str(args.jobs),
                    "--quiet",
                ]
                p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
                rec["command"] = " ".join(cmd[2:])
                rep = json.loads((acc / "verify.json").read_text())
                rec.update(
                    {
                        k: rep[k]
                        for k in (
                            "passed",
                            "mismatching_words",
                            "first_mismatch",
                            "cycles_per_image",
                            "latency",
                            "estimate",
                            "ratio_cycles_per_image",
                            "ratio_latency",
                            "cycles_per_s",
                            "cycles_per_cpu_s",
                            "engine",
                            "sim_wall_s",
                            "build_s",
                            "golden_s",
                            "wall_s",
                            "jobs",
                        )
                    }
                )
                rec["within_10pct"] = abs(rep["ratio_cycles_per_image"] - 1) <= 0.10
                if p.returncode not in (0, 1):
                    rec["error"] = p.stderr.strip()[-800:]
            except Exception as e:  # noqa: BLE001 - record and go on with the next run
                rec["error"] = f"{type(e).__name__}: {e}"
            rec["bench_wall_s"] = round(time.perf_counter() - t0, 1)
            merge(rec, Path(args.results))
            print(
                json.dumps(
                    {
                        k: rec.get(k)
                        for k in (
                            "model",
                            "array",
                            "passed",
                            "cycles_per_image",
                            "estimate",
                            "wall_s",
                            "error",
                        )
                    }
                ),
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
