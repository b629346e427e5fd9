"""``bitfab --help`` and every ``bitfab COMMAND --help``: wall time of a fresh process.

Each command line runs ``--runs`` times (after one warm-up run that fills the OS file cache) as
its own process, as a user types it; the figure is the median and the worst wall time in
seconds. Results go to ``bench/results/cli_startup.json`` (with the machine and the command).
Target (issue 11): ``bitfab --help`` under 1 s on a warm machine.

    .venv/bin/python bench/cli_startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bitfab.cli import COMMANDS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cli_startup.json"
TARGET_S = 1.0


def wall(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``argv`` (one untimed warm-up first)."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs per command line (10)")
    args = ap.parse_args()
    exe = shutil.which("bitfab") or str(Path(sys.executable).with_name("bitfab"))
    lines = [[exe, "--help"]] + [[exe, c.replace("_", "-"), "--help"] for c in COMMANDS]
    rows = []
    for argv in lines:
        t = wall(argv, args.runs)
        name = " ".join(["bitfab", *argv[1:]])
        rows.append({"command": name, "median_s": round(statistics.median(t), 3),
                     "max_s": round(max(t), 3), "runs": len(t)})  # fmt: skip
        print(f"{name:32} median {rows[-1]['median_s']:.3f} s  max {rows[-1]['max_s']:.3f} s")
    top = rows[0]
    out = {
        "bench": "cli_startup",
        "command": f".venv/bin/python bench/cli_startup.py --runs {args.runs}",
        "machine": f"{platform.machine()} {platform.system()}, python {platform.python_version()}",
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "target_s": TARGET_S,
        "target_met": top["max_s"] < TARGET_S,
        "results": rows,
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"bitfab --help: median {top['median_s']} s, max {top['max_s']} s "
          f"(target < {TARGET_S} s: {'met' if out['target_met'] else 'NOT met'}) -> {RESULTS}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
