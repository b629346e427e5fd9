"""The bad-path campaign: wrong, corrupt, missing and interrupted inputs through every command.

Each case runs ``bitfab ...`` as a user would (a fresh process in a scratch folder) and is
classified: **clean** (the expected exit code, one ``error:`` line on stderr, no traceback,
nothing half-written: the output does not exist unless it did before, no staging litter),
**traceback**, **wrong exit code**, **half-written output** or **hang** (over the timeout).
The inputs are made here: a tiny tfc trained on the 8x8 digits (seconds), copies of it with a
0-bit and a 9-bit Quant node, truncated and garbage files, a compiled accelerator with a corrupt
``accelerator.json``. Results: ``bench/results/fault_campaign.json``.

    .venv/bin/python bench/fault_campaign.py [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fault_campaign.json"
BITFAB = [sys.executable, "-m", "bitfab"]
TIMEOUT_S = 300


@dataclass
class Case:
    name: str
    argv: list[str]
    code: int = 2  # expected exit code
    out: str | None = None  # output that must not be half-written (relative to the work dir)
    signal_after: str | None = None  # send SIGINT/SIGTERM when this file appears
    sig: int = 0
    env: dict[str, str] = field(default_factory=dict)
    expect_files: tuple[str, ...] = ()  # for cases that must succeed
    absent: tuple[str, ...] = ()  # files that must not exist afterwards (relative to the work dir)


def _with_bits(src: Path, dst: Path, bits: float) -> Path:
    proto = onnx.load(str(src))
    inits = {t.name: t for t in proto.graph.initializer}
    node = next(n for n in proto.graph.node if n.op_type == "Quant" and n.input[3] in inits)
    inits[node.input[3]].CopyFrom(
        numpy_helper.from_array(np.array(bits, dtype=np.float32), node.input[3])
    )
    onnx.save(proto, str(dst))
    return dst


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"setup failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")


def make_inputs(w: Path) -> None:
    """The models, accelerators and broken files the cases use."""
    _run([*BITFAB, "train", "--model", "tfc", "--wbits", "1", "--epochs", "1", "--dataset",
          "digits", "--limit", "300", "--quiet", "--out", "m"], w)  # fmt: skip
    _run([*BITFAB, "dataflow", "m/model.onnx", "--target-cycles", "2000", "--out", "df"], w)
    _run([*BITFAB, "compile", "df/dataflow.onnx", "--out", "acc"], w)
    good = (w / "m" / "model.onnx").read_bytes()
    (w / "trunc.onnx").write_bytes(good[: len(good) // 2])
    (w / "garbage.onnx").write_bytes(b"\x00\xffnot a model" * 50)
    (w / "empty.onnx").write_bytes(b"")
    _with_bits(w / "m" / "model.onnx", w / "bits0.onnx", 0)
    _with_bits(w / "m" / "model.onnx", w / "bits9.onnx", 9)
    (w / "afile").write_text("a file, not a folder")
    (w / "bad.json").write_text("{not json")
    (w / "bad.toml").write_text("model = [")
    for name, text in (("acc_badjson", '{"fifos": ['), ("acc_nofifos", "{}")):
        shutil.copytree(w / "acc", w / name)
        (w / name / "accelerator.json").write_text(text)
    shutil.copytree(w / "acc", w / "acc_nodf")
    (w / "acc_nodf" / "dataflow.onnx").unlink()


def cases() -> list[Case]:
    df = ["dataflow"]
    return [
        Case("dataflow: missing model", [*df, "nope.onnx", "--out", "o"], out="o"),
        Case("dataflow: truncated model", [*df, "trunc.onnx", "--out", "o"], out="o"),
        Case("dataflow: garbage model", [*df, "garbage.onnx", "--out", "o"], out="o"),
        Case("dataflow: empty file", [*df, "empty.onnx", "--out", "o"], out="o"),
        Case("dataflow: a folder as the model", [*df, "m", "--out", "o"], out="o"),
        Case("dataflow: 0-bit Quant", [*df, "bits0.onnx", "--out", "o"], out="o"),
        Case("dataflow: 9-bit Quant", [*df, "bits9.onnx", "--out", "o"], out="o"),
        Case("dataflow: --out is a file", [*df, "m/model.onnx", "--out", "afile"]),
        Case("dataflow: --out under a file", [*df, "m/model.onnx", "--out", "afile/o"]),
        Case(
            "dataflow: corrupt folding file",
            [*df, "m/model.onnx", "--folding", "bad.json", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case(
            "dataflow: unrealisable folding",
            [*df, "m/model.onnx", "--folding", "fold5.json", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case("compile: a QONNX model", ["compile", "m/model.onnx", "--out", "o"], out="o"),
        Case("compile: missing graph", ["compile", "nope.onnx", "--out", "o"], out="o"),
        Case(
            "compile: unknown array",
            ["compile", "df/dataflow.onnx", "--array", "systolic", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case(
            "compile: corrupt array config",
            ["compile", "df/dataflow.onnx", "--config", "bad.toml", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case("verify: not an accelerator folder", ["verify", "m", "--images", "2"]),
        Case("verify: corrupt accelerator.json", ["verify", "acc_badjson", "--images", "2"]),
        Case("verify: accelerator.json without fifos", ["verify", "acc_nofifos", "--images", "2"]),
        Case("verify: dataflow.onnx missing", ["verify", "acc_nodf", "--images", "2"]),
        Case("verify: --jobs 0", ["verify", "acc", "--jobs", "0"]),
        Case("verify: --chunk 0", ["verify", "acc", "--chunk", "0"]),
        Case(
            "build: unknown board",
            ["build", "m/model.onnx", "--board", "icebreakr", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case(
            "build: bare device",
            ["build", "m/model.onnx", "--board", "up5k", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case(
            "build: --out is a file",
            ["build", "m/model.onnx", "--board", "icebreaker", "--out", "afile"],
        ),  # fmt: skip
        Case(
            "build: corrupt model",
            ["build", "trunc.onnx", "--board", "icebreaker", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case("train: 9-bit weights", ["train", "--wbits", "9", "--out", "o"], out="o"),
        Case("train: unknown model", ["train", "--model", "resnet", "--out", "o"], out="o"),
        Case("train: corrupt config", ["train", "--config", "bad.toml", "--out", "o"], out="o"),
        Case("train: --out is a file", ["train", "--out", "afile"]),
        Case(
            "quantize: missing checkpoint",
            ["quantize", "nope.pt", "--wbits", "4", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case(
            "mixed: --out is a folder",
            ["mixed", "nope.pt", "--board", "icebreaker", "--budget", "luts=1", "--out", "m"],
        ),  # fmt: skip
        Case(
            "mixed: bad budget",
            ["mixed", "nope.pt", "--board", "icebreaker", "--budget", "ff=3", "--out", "o.json"],
            out="o.json",
        ),  # fmt: skip
        Case("explore: unknown array", ["explore", "--array", "systolic", "--out", "o"], out="o"),
        Case("explore: unknown board", ["explore", "--board", "zynq", "--out", "o"], out="o"),
        Case("run: no such port", ["run", "--port", "/dev/nonexistent", "--acc", "acc"]),
        Case("run: --window 9", ["run", "--port", "/dev/null", "--acc", "acc", "--window", "9"]),
        Case("program: not a build folder", ["program", "m"]),
        Case(
            "synth: unknown target",
            ["synth", "--array", "bitserial", "--board", "zynq", "--out", "o"],
            out="o",
        ),  # fmt: skip
        Case("cli: unknown command", ["nosuch"]),
        Case("cli: missing arguments", ["build"]),
        Case(
            "train: SIGINT mid-training",
            ["train", "--epochs", "1000", "--dataset", "digits", "--quiet", "--out", "t_int"],
            code=130,
            absent=("t_int/model.onnx", "t_int/metrics.json"),
            signal_after="t_int/checkpoint.pt",
            sig=signal.SIGINT,
        ),  # fmt: skip
        Case(
            "train: SIGTERM mid-training",
            ["train", "--epochs", "1000", "--dataset", "digits", "--quiet", "--out", "t_term"],
            code=143,
            absent=("t_term/model.onnx", "t_term/metrics.json"),
            signal_after="t_term/checkpoint.pt",
            sig=signal.SIGTERM,
        ),  # fmt: skip
        Case(
            "dataflow: --out on another file system (tmpfs)",
            ["dataflow", "m/model.onnx", "--out", "/dev/shm/{uid}"],
            code=0,
            expect_files=("/dev/shm/{uid}/dataflow.onnx",),
        ),  # fmt: skip
    ]


def classify(case: Case, w: Path) -> dict:
    uid = f"bitfab-fault-{os.getpid()}"
    argv = [a.replace("{uid}", uid) for a in case.argv]
    out = w / case.out if case.out else None
    existed = out.exists() if out else False
    before = set(w.iterdir())
    t0 = time.perf_counter()
    proc = subprocess.Popen([*BITFAB, *argv], cwd=w, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **case.env})  # fmt: skip
    if case.signal_after:
        deadline = time.time() + TIMEOUT_S
        while not (w / case.signal_after).exists() and time.time() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        if proc.poll() is None:
            proc.send_signal(case.sig)
    try:
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"case": case.name, "result": "hang", "seconds": TIMEOUT_S}
    seconds = round(time.perf_counter() - t0, 1)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    litter = [p.name for p in set(w.iterdir()) - before if ".tmp-" in p.name]
    if out is not None and out.is_dir():
        litter += [p.name for p in out.iterdir() if ".tmp-" in p.name]
    if "Traceback" in err:
        result = "traceback"
    elif proc.returncode != case.code:
        result = "wrong exit code"
    elif case.code != 0 and not (len(lines) == 1 and lines[0].startswith("error: ")):
        result = "not one error line"
    elif litter or (out is not None and not existed and out.exists() and case.code != 0):
        result = "half-written output"
    elif any((w / f).exists() for f in case.absent):  # (the resume checkpoint may stay)
        result = "half-written output"
    elif any(not Path(f.replace("{uid}", uid)).exists() for f in case.expect_files):
        result = "output missing"
    else:
        result = "clean"
    for f in case.expect_files:  # tidy what the successful cases wrote outside the work dir
        shutil.rmtree(Path(f.replace("{uid}", uid)).parent, ignore_errors=True)
    return {"case": case.name, "result": result, "exit": proc.returncode, "seconds": seconds,
            "stderr": lines[-1][:300] if lines else ""}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bitfab-faults-") as d:
        w = Path(d)
        make_inputs(w)
        (w / "fold5.json").write_text(json.dumps({"MVAU_0": {"PE": 5, "SIMD": 1}}))
        rows = []
        for case in cases():
            if args.only and args.only not in case.name:
                continue
            r = classify(case, w)
            rows.append(r)
            print(f"{r['result']:<20} {r['case']:<48} {r.get('stderr', '')[:110]}", flush=True)
    totals: dict[str, int] = {}
    for r in rows:
        totals[r["result"]] = totals.get(r["result"], 0) + 1
    summary = {
        "bench": "fault_campaign",
        "command": ".venv/bin/python bench/fault_campaign.py",
        "machine": f"{platform.machine()} {platform.system()}, python {platform.python_version()}",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cases": len(rows),
        "totals": totals,
        "results": rows,
    }
    if not args.only:
        RESULTS.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"{len(rows)} cases: " + ", ".join(f"{v} {k}" for k, v in sorted(totals.items())))
    return 0 if totals.get("clean", 0) == len(rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
