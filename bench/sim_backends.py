"""Verilator vs Icarus, side by side in one run, on one PE array (same Verilog, same cases).

``.venv/bin/python bench/sim_backends.py --help``; the measurement is
:func:`bitfab.sim.compare_backends.compare` (every run must agree with the numpy reference, the
command fails otherwise). Prints one table row per backend x harness x case and, with ``--json``,
writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bitfab.kinds import ARRAY_KINDS as ARRAYS
from bitfab.sim.compare_backends import compare


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="bench/sim_backends.py",
        description="Verilator vs Icarus on one PE array, side by side (same Verilog, same cases).",
    )
    ap.add_argument("--array", choices=sorted(ARRAYS), default="parallel")
    ap.add_argument("--pe", type=int, default=4)
    ap.add_argument("--simd", type=int, default=4)
    ap.add_argument("--wbits", type=int, default=4)
    ap.add_argument("--abits", type=int, default=4)
    ap.add_argument("--dots", type=int, default=2000, help="dot products per case")
    ap.add_argument("--folds", type=int, default=4, help="input words per dot product")
    ap.add_argument("--backends", nargs="+", default=["verilator", "icarus"])
    ap.add_argument(
        "--no-skip-idle",
        action="store_true",
        help="step every clock cycle in Python (no sleeping through idle cycles)",
    )
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    a = ap.parse_args(argv)
    out = compare(
        a.array,
        a.pe,
        a.simd,
        a.wbits,
        a.abits,
        dots=a.dots,
        folds=a.folds,
        backends=tuple(a.backends),
        skip_idle=not a.no_skip_idle,
    )
    print(
        f"{out['design']}: {out['words_per_case']} input words per case, "
        f"skip_idle={out['skip_idle']} ({out['machine']})"
    )
    print(
        f"{'backend':10} {'harness':8} {'case':16} {'cycles':>8} {'tb s':>7} {'cycles/s':>9} "
        f"{'build s':>8}"
    )
    for r in out["results"]:
        print(
            f"{r['backend']:10} {r['harness']:8} {r['case']:16} {r['cycles']:8d} {r['tb_s']:7.2f} "
            f"{r['cycles_per_s']:9d} {r['build_s']:8.1f}"
        )
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
