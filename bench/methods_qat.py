"""Methods benchmark, part "qat": each QAT quantizer family on Fashion-MNIST.

Trains tfc and cnv-s with every ``bitfab train --quantizer`` family (finn, stats, lsq, pact) at
W2A2, W4A4 and W8A8, plus W1A1 for the families that apply at 1 bit (finn only), and merges one row
per run into ``bench/results/methods.json`` (part ``qat``, see ``bench/methods_common.py``). The
W4A4 rows are the QAT reference of the PTQ target (best PTQ at W4A4 within 2 points of QAT W4A4).

    nice -n 5 .venv/bin/python bench/methods_qat.py            # tfc 2 epochs, cnv-s 1 epoch
    .venv/bin/python bench/methods_qat.py --table              # docs/methods.md's table

Few epochs keep the part affordable on 2 shared cores (~40 min): the figures compare families at
equal, short training, not converged accuracy (bench/accuracy.py trains longer). Every run keeps
its folder under ``--runs`` (model.onnx, metrics.json); a run whose metrics.json exists with the
same config and epochs is reused, so a stopped bench restarts where it stopped.
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

import torch  # noqa: E402

from bench.methods_common import merge_part  # noqa: E402
from bitfab.models.config import QUANTIZER_MIN_BITS, make_config  # noqa: E402
from bitfab.models.quant import FAMILIES  # noqa: E402
from bitfab.models.train import train  # noqa: E402

PRECISIONS = {"w1a1": 1, "w2a2": 2, "w4a4": 4, "w8a8": 8}
DEFAULT_EPOCHS = {"tfc": 2, "cnv-s": 1}
CHECK_IMAGES = 500  # QONNX-vs-torch export check per run (test images)


def plan(models: list[str], families: list[str], precisions: list[str]) -> list[tuple]:
    """(model, family, precision) runs; 1-bit runs only for families that apply at 1 bit."""
    runs = []
    for model in models:
        for prec in precisions:
            for fam in families:
                if PRECISIONS[prec] >= QUANTIZER_MIN_BITS[fam]:
                    runs.append((model, fam, prec))
    return runs


def run_one(model: str, fam: str, prec: str, epochs: int, runs_dir: Path) -> dict:
    bits = PRECISIONS[prec]
    cfg = make_config(model=model, wbits=bits, abits=bits, quantizer=fam)
    out = runs_dir / f"{model}_{prec}_{fam}"
    mpath = out / "metrics.json"
    m = json.loads(mpath.read_text()) if mpath.exists() else None
    if m is None or m.get("config") != cfg.to_dict() or m.get("epochs") != epochs:
        shutil.rmtree(out, ignore_errors=True)
        m = train(cfg, out, epochs=epochs, check_images=CHECK_IMAGES, progress=False)
    chk = m["export_check"]
    return {
        "method": f"qat-{fam}",
        "family": fam,
        "model": model,
        "precision": prec,
        "wbits": bits,
        "abits": bits,
        "accuracy": round(100 * m["test_accuracy"], 2),
        "test_images": m["test_images"],
        "paper": FAMILIES[fam].paper,
        "epochs": epochs,
        "train_images": m["train_images"],
        "train_seconds": m["train_seconds"],
        "export_check": f"{chk['argmax_agree']}/{chk['images']} agree, ok={chk['ok']}",
        "qonnx": str((out / "model.onnx").relative_to(ROOT)) if out.is_relative_to(ROOT) else "",
        "role": "QAT reference of the PTQ W4A4 target" if prec == "w4a4" else "",
    }


def table(path: Path = ROOT / "bench" / "results" / "methods.json") -> str:
    """Markdown table of the part's rows: one line per family, one column per model/precision."""
    rows = json.loads(path.read_text())["parts"]["qat"]["rows"]
    cols = [(m, p) for m in DEFAULT_EPOCHS for p in ("w1a1", "w2a2", "w4a4", "w8a8")]
    acc = {(r["family"], r["model"], r["precision"]): r["accuracy"] for r in rows}
    head = "| family | " + " | ".join(f"{m} {p.upper()}" for m, p in cols) + " | seed paper |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for fam in FAMILIES:
        cells = [
            f"{acc[(fam, m, p)]:.2f}"
            if (fam, m, p) in acc
            else "n/a"
            if PRECISIONS[p] < QUANTIZER_MIN_BITS[fam]
            else "-"
            for m, p in cols
        ]
        lines.append(f"| {fam} | " + " | ".join(cells) + f" | {FAMILIES[fam].paper} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tfc,cnv-s")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--precisions", default="w4a4,w2a2,w8a8,w1a1")
    ap.add_argument("--epochs", default=",".join(f"{k}={v}" for k, v in DEFAULT_EPOCHS.items()))
    ap.add_argument("--runs", default=str(ROOT / "runs" / "methods" / "qat"))
    ap.add_argument("--table", action="store_true", help="print the docs table and stop")
    args = ap.parse_args(argv)
    if args.table:
        print(table())
        return 0
    torch.set_num_threads(1)
    epochs = {k: int(v) for k, v in (p.split("=") for p in args.epochs.split(","))}
    runs = plan(args.models.split(","), args.families.split(","), args.precisions.split(","))
    runs_dir = Path(args.runs)
    t0 = time.perf_counter()
    rows: list[dict] = []
    for i, (model, fam, prec) in enumerate(runs):
        t = time.perf_counter()
        rows.append(run_one(model, fam, prec, epochs[model], runs_dir))
        r = rows[-1]
        print(
            f"[{i + 1}/{len(runs)}] {model} {prec} {fam}: {r['accuracy']:.2f}% "
            f"({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
        merge_part("qat", rows, time.perf_counter() - t0)  # partial rows survive a stop
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
