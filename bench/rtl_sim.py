"""Simulation speed of Verilator, Icarus and Amaranth's simulator on the same accelerator.

One run, side by side (the machine is shared and noisy: the ratios are the point): the tfc W1A1
accelerator (``runs/tfc_w1a1``, folded for ~1000 cycles per image, bit-parallel arrays) is
verified with each backend through the same ``bitfab.sim.verify`` path on a number of images
suited to the backend's speed (Verilator twice: the standalone executable ``bitfab verify`` uses,
and the same harness clocked from cocotb); cycles per second are measured inside the simulation (start-up
and golden model excluded). The wall time to verify all 10,000 test images comes from a
Verilator run of all images on the same accelerator (``--full``) or from
``bench/results/verify.json``. Results: ``bench/results/rtl_sim.json``.

    .venv/bin/python bench/rtl_sim.py [--full] [--jobs 2]
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

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "rtl_sim.json"
VERIFY_RESULTS = ROOT / "bench" / "results" / "verify.json"
TARGET_CYCLES_PER_S = 100_000
TARGET_VERIFY_S = 300.0
#: backend -> (simulator, Verilator engine, images): the native Verilator executable (C++ clock
#: loop, what ``bitfab verify`` uses), Verilator under cocotb (clock from cocotb), Icarus under
#: cocotb, Amaranth's Python simulator
BACKENDS = {
    "verilator": ("verilator", "native", 4000),
    "verilator-cocotb": ("verilator", "cocotb", 500),
    "icarus": ("icarus", "cocotb", 20),
    "amaranth": ("amaranth", "native", 4),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tfc_w1a1")
    ap.add_argument("--target-cycles", type=int, default=1000)
    ap.add_argument("--full", action="store_true", help="also verify all 10,000 images")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--work", default="/tmp/bitfab_rtl_sim")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from bitfab.hw.accelerator import compile_accelerator
    from bitfab.sim.verify import verify

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    df = work / "df" / "dataflow.onnx"
    if not df.exists():
        subprocess.run(
            [sys.executable, "-m", "bitfab", "dataflow", f"runs/{args.model}/model.onnx",
             "--out", str(df.parent), "--target-cycles", str(args.target_cycles)],
            check=True, cwd=ROOT, capture_output=True,
        )  # fmt: skip
    acc = work / "acc"
    rep = compile_accelerator(df, acc, "parallel")
    rows = {}
    for backend, (sim, engine, n) in BACKENDS.items():
        r = verify(acc, n, sim, chunk=n, write=False, engine=engine)
        rows[backend] = {
            k: r[k]
            for k in ("passed", "images", "cycles_per_image", "total_cycles", "cycles_per_s",
                      "cycles_per_cpu_s", "sim_wall_s", "build_s")
        }  # fmt: skip
        print(backend, json.dumps(rows[backend]), flush=True)
    base = rows["amaranth"]["cycles_per_s"]
    for b in rows:
        rows[b]["ratio_to_amaranth"] = round(rows[b]["cycles_per_s"] / base, 1)
    full = None
    if args.full:
        t0 = time.perf_counter()
        r = verify(acc, None, "verilator", jobs=args.jobs, write=False)
        full = {"source": "this run", "images": r["images"], "passed": r["passed"],
                "wall_s": round(time.perf_counter() - t0, 1), "sim_wall_s": r["sim_wall_s"],
                "golden_s": r["golden_s"], "build_s": r["build_s"], "jobs": args.jobs,
                "cycles_per_s": r["cycles_per_s"]}  # fmt: skip
    elif VERIFY_RESULTS.exists():
        runs = json.loads(VERIFY_RESULTS.read_text()).get("runs", [])
        tfc = [x for x in runs if x.get("model") == args.model and x.get("images") == 10000]
        if tfc:
            full = {"source": "bench/results/verify.json", **{
                k: tfc[0].get(k) for k in ("array", "images", "passed", "wall_s", "sim_wall_s",
                                           "golden_s", "build_s", "jobs", "cycles_per_s")}}  # fmt: skip
    v = rows["verilator"]["cycles_per_s"]
    v_cpu = rows["verilator"]["cycles_per_cpu_s"] or 0
    load = os.getloadavg()[0]
    out = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": "bench/rtl_sim.py " + " ".join(sys.argv[1:]),
        "accelerator": {"model": args.model, "target_cycles": args.target_cycles,
                        "array": "parallel",
                        "cycles_per_image_estimate": rep["performance"]["cycles_per_image"]},
        "backends": rows,
        "verify_10000": full,
        "targets": {
            "verilator_cycles_per_s": TARGET_CYCLES_PER_S,
            "verilator_met": v >= TARGET_CYCLES_PER_S,
            "verify_10000_s": TARGET_VERIFY_S,
            "verify_10000_met": bool(full and full.get("wall_s") and full["wall_s"] < TARGET_VERIFY_S),
            "verilator_cycles_per_cpu_s": v_cpu,
        },
        "note": (
            "cycles_per_s is wall-clock inside the simulation; cycles_per_cpu_s divides by the "
            "CPU time of the simulator processes (start-up and $readmemh included), which does "
            f"not depend on the load (load average {load:.1f} on {os.cpu_count()} cores during "
            "this run, so a single-threaded simulator got a fraction of a core)"
        ),
    }  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
