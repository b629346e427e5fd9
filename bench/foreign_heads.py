"""Foreign models of every head and input kind through bitfab's CLI, verified in Verilator.

The corpus: ``examples/foreign_corpus.py`` (plain Brevitas, non-image inputs: a bipolar
binary classifier, a 5-class tabular MLP, a 3-output regressor, Softmax / LogSoftmax / ArgMax
tails; each exported with the legacy (TorchScript) and the dynamo exporter) and brevitas_examples'
bnn_pynq ``TFC_1W1A``, ``TFC_2W2A``, ``SFC_1W1A`` (untrained: ``pretrained=False``; pixel input).
Per (model, exporter, array), as an outside user would:
``bitfab dataflow MODEL.onnx --out DF [--target-cycles N]``,
``bitfab compile DF/dataflow.onnx --array A --out ACC``,
``bitfab verify ACC --random N --seed 0 --backend verilator --jobs 2`` (every input drawn
uniformly over the model's input grid). One record per (model, array, images) is merged into
``bench/results/foreign.json`` (the ``heads`` list) and the table in ``docs/foreign_models.md``
between its ``foreign-heads`` markers is rewritten from all of them.

    .venv/bin/python bench/foreign_heads.py --random 1000
    .venv/bin/python bench/foreign_heads.py --models binary,regression --arrays parallel
    .venv/bin/python bench/foreign_heads.py --models CNV_1W1A,CNV_1W2A,CNV_2W2A,LFC_1W1A \\
        --exporters legacy --arrays parallel
    .venv/bin/python bench/foreign_heads.py --table-only   # rewrite the docs table from JSON
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bitfab.kinds import ARRAY_KINDS  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "foreign.json"
DOC = ROOT / "docs" / "foreign_models.md"
BEGIN, END = "<!-- foreign-heads:begin -->", "<!-- foreign-heads:end -->"
PY = sys.executable
#: brevitas_examples models (pixel input) and their folding targets (cycles per image)
BNN_PYNQ = {"TFC_1W1A": 2000, "TFC_2W2A": 2000, "SFC_1W1A": 4000}
#: larger brevitas_examples models, not in the default list (slower): CNV variants (3 x 32 x 32
#: pixel input) and LFC (784-1024-1024-1024-10); folding targets (cycles per image)
CNV = {"CNV_1W1A": 20000, "CNV_1W2A": 20000, "CNV_2W2A": 20000, "LFC_1W1A": 8000}
EXPORTERS = ("legacy", "dynamo")


def commit() -> str:
    env = os.environ.get("BITFAB_COMMIT")
    if env:
        return env
    p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "bitfab"], cwd=ROOT, capture_output=True
    )
    return p.stdout.decode().strip() + ("+dirty" if dirty.stdout.strip() else "")


def run(cmd: list[str]) -> str:
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[2:4])} failed ({p.returncode}): {p.stderr.strip()[-400:]}"
        )
    return p.stdout.strip()


def export(name: str, exporter: str, work: Path) -> Path:
    """The QONNX file of a corpus or brevitas_examples model (cached in ``work``)."""
    path = work / f"{name}_{exporter}.onnx"
    if path.exists():
        return path
    if name in BNN_PYNQ or name in CNV:
        import torch
        from brevitas.export import export_qonnx
        from brevitas_examples.bnn_pynq.models import model_with_cfg

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(0)
            model, _ = model_with_cfg(name.lower(), pretrained=False)
            model.eval()
            export_qonnx(
                model,
                input_t=torch.rand(1, 3, 32, 32)
                if name.startswith("CNV")
                else torch.rand(1, 1, 28, 28),
                export_path=str(path),
                dynamo=exporter == "dynamo",
            )
        return path
    from examples import foreign_corpus as fc

    if name.endswith("_finnonnx"):  # FINN-ONNX as FINN's examples ship it (converted already)
        from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model

        from bitfab.dataflow.transforms import QuantizerInput

        src = export(name.removesuffix("_finnonnx"), exporter, work)
        m = cleanup_model(ModelWrapper(str(src))).transform(QuantizerInput())
        m = m.transform(ConvertQONNXtoFINN())
        for prop in list(m.graph.metadata_props):  # a foreign file carries no bitfab record
            m.graph.metadata_props.remove(prop)
        m.save(str(path))
        return path
    return fc.export(fc.make(name), path, dynamo=exporter == "dynamo")


def bench_one(name: str, exporter: str, arr: str, args: argparse.Namespace, work: Path) -> dict:
    rec = {
        "model": f"{name} ({exporter})",
        "source": "brevitas_examples.bnn_pynq (untrained)"
        if name in BNN_PYNQ or name in CNV
        else "examples/foreign_corpus.py, as FINN-ONNX (MultiThreshold, INT4-annotated input)"
        if name.endswith("_finnonnx")
        else "examples/foreign_corpus.py (plain Brevitas)",
        "array": arr,
        "images": args.random,
        "bitfab_commit": commit(),
    }
    t0 = time.perf_counter()
    try:
        q = export(name, exporter, work)
        df, acc = work / f"df_{name}_{exporter}", work / f"acc_{name}_{exporter}_{arr}"
        cmd = [PY, "-m", "bitfab", "dataflow", str(q), "--out", str(df)]
        if name in BNN_PYNQ or name in CNV:
            cmd += ["--target-cycles", str({**BNN_PYNQ, **CNV}[name])]
        if not (df / "dataflow.json").exists():
            rec["dataflow"] = run(cmd).splitlines()
        dj = json.loads((df / "dataflow.json").read_text())
        rec["input"] = dj["input"]["meaning"]
        rec["output"] = dj["output"]["meaning"]
        rec["head"] = dj["output"]["head"]
        rec["self_check"] = dj.get("self_check")
        rec["compile"] = run(
            [PY, "-m", "bitfab", "compile", str(df / "dataflow.onnx"), "--array", arr]
            + ["--out", str(acc)]
        )
        vcmd = [PY, "-m", "bitfab", "verify", str(acc), "--random", str(args.random)]
        vcmd += ["--seed", "0", "--backend", "verilator", "--jobs", str(args.jobs), "--quiet"]
        rec["command"] = " ".join(["python", *vcmd[1:]])
        subprocess.run(vcmd, cwd=ROOT, capture_output=True, text=True)
        v = json.loads((acc / "verify.json").read_text())
        for k in ("passed", "inputs", "mismatching_words", "cycles_per_image", "latency"):
            rec[k] = v.get(k)
        rec["estimate"] = v["estimate"]
        rec["ratio_cycles_per_image"] = v["ratio_cycles_per_image"]
        rec["verify_wall_s"] = v["wall_s"]
    except Exception as e:  # noqa: BLE001 - recorded, the bench goes on
        rec["error"] = str(e)[:400]
    rec["bench_wall_s"] = round(time.perf_counter() - t0, 1)
    return rec


def merge(record: dict, results: Path) -> None:
    """Replace the ``heads`` record with the same (model, array, images), or add it."""
    data = json.loads(results.read_text()) if results.exists() else {"runs": []}
    key = (record["model"], record["array"], record["images"])
    heads = [r for r in data.get("heads", []) if (r["model"], r["array"], r["images"]) != key]
    heads.append(record)
    heads.sort(key=lambda r: (r["model"], r["array"], r["images"]))
    data["heads"] = heads
    data["heads_machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    results.write_text(json.dumps(data, indent=2) + "\n")


def table(results: Path) -> str:
    data = json.loads(results.read_text())
    rows = [
        "| model (exporter) | source | array | head | inputs | mismatches | cycles/image "
        "measured / estimate | bitfab commit |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data.get("heads", []):
        if r.get("error"):
            rows.append(
                f"| {r['model']} | {r['source']} | {r['array']} | - | - | error: "
                f"{r['error'][:120]} | - | {r['bitfab_commit']} |"
            )
            continue
        src = r.get("inputs") or {}
        inputs = f"{src.get('count')} random ({src.get('grid')}, seed {src.get('seed')})"
        mism = r["mismatching_words"] if r["passed"] else f"FAIL ({r['mismatching_words']})"
        rows.append(
            f"| {r['model']} | {r['source']} | {r['array']} | {r['head']} | {inputs} | {mism} | "
            f"{r['cycles_per_image']:g} / {r['estimate']['cycles_per_image']} "
            f"(x{r['ratio_cycles_per_image']}) | {r['bitfab_commit']} |"
        )
    machine = data.get("heads_machine", "")
    return "\n".join(rows) + f"\n\nMachine: {machine}; generated by `bench/foreign_heads.py`.\n"


def write_doc(results: Path, doc: Path) -> None:
    text = doc.read_text()
    block = f"{BEGIN}\n{table(results)}{END}"
    if BEGIN in text:
        a, b = text.index(BEGIN), text.index(END) + len(END)
        text = text[:a] + block + text[b:]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    corpus = ["binary", "tabular", "regression", "softmax", "logsoftmax", "argmax", "topk"]
    corpus += ["perchannel", "avgpool", "strided", "regression_finnonnx"]
    ap.add_argument("--models", default=",".join(corpus + list(BNN_PYNQ)), help="comma list")
    ap.add_argument("--exporters", default=",".join(EXPORTERS), help="legacy,dynamo")
    ap.add_argument("--arrays", default=",".join(ARRAY_KINDS), help="comma list of PE arrays")
    ap.add_argument("--random", type=int, default=1000, help="random inputs to verify")
    ap.add_argument("--jobs", type=int, default=2, help="simulator runs at once")
    ap.add_argument("--work", default="/tmp/bitfab_foreign_heads", help="work folder")
    ap.add_argument("--results", default=str(RESULTS), help="JSON file the records merge into")
    ap.add_argument("--table-only", action="store_true", help="only rewrite the docs table")
    args = ap.parse_args()
    if not args.table_only:
        import torch

        torch.set_num_threads(1)
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.models.split(","):
            for exporter in args.exporters.split(","):
                for arr in args.arrays.split(","):
                    rec = bench_one(name, exporter, arr, args, work)
                    merge(rec, Path(args.results))
                    keys = ("model", "array", "passed", "mismatching_words", "error")
                    print(json.dumps({k: rec.get(k) for k in keys}), flush=True)
    write_doc(Path(args.results), DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
