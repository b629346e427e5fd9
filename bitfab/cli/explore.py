"""``bitfab explore``: design-space sweeps (stage: :mod:`bitfab.flows.explore`)."""

from __future__ import annotations

import argparse
import contextlib

from bitfab.cli.common import DATASETS, add_command, add_out, array_list_flag

#: flag -> sweep option (flags given on the command line override the --sweep TOML file)
_FLAGS = ("model", "wbits", "abits", "array", "board", "epochs", "seed", "limit", "dataset",
          "synth", "synth_pareto", "synth_max", "verify_images", "margin", "clock_mhz",
          "in_bits", "max_luts")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "explore",
        help="design-space sweep: precision x PE array x board -> Pareto fronts, HTML report",
        description="For every point of the sweep (model x wbits x abits x array x board): train "
        "the model (or reuse the cached one with the same config, seed and epochs), streamline "
        "it with the folding fitted to the board, compile the accelerator and estimate LUTs, "
        "block RAM, cycles/image and images/s; with --synth also build it (RTL verification, "
        "Yosys + nextpnr, bitstream: Fmax, LUT/FF/BRAM/DSP). A failing point (does not fit, "
        "fails timing) is recorded with its reason. Writes OUT/results.json, OUT/results.csv "
        "and OUT/report.html (Pareto plots, sortable table, per-layer breakdowns; no network "
        "needed). Finished points are cached in OUT/points: an interrupted sweep resumes. "
        "See docs/explore.md.",
        examples=[
            "bitfab explore --model tfc --wbits 1,2,4 --array parallel,bitserial,bitfusion "
            "--board icebreaker --out sweeps/tfc",
            "bitfab explore --sweep sweep.toml --synth-pareto --jobs 2 --out sweeps/s1",
        ],
    )
    add_out(p, "folder", "output folder")
    p.add_argument("--sweep", metavar="TOML", help="sweep file (keys as the flags, e.g. "
                   'model = ["tfc", "cnv-s"], wbits = [1, 2]); flags override it')  # fmt: skip
    p.add_argument(
        "--model", help="models, comma-separated (tfc, sfc, lfc, cnv-s, cnv-m; default tfc)"
    )
    p.add_argument("--wbits", help="weight bits, comma-separated, 1-8 (default 1)")
    p.add_argument(
        "--abits",
        help="activation bits, comma-separated: every (wbits, abits) pair is a point "
        "(default: equal to wbits, i.e. W1A1, W2A2, ...)",
    )
    p.add_argument("--in-bits", type=int, default=None, help="input bits (default: the model's)")
    p.add_argument(
        "--array",
        type=array_list_flag,
        help="PE arrays, comma-separated: parallel, bitserial, bitfusion (default parallel)",
    )
    p.add_argument("--board", help="boards, comma-separated (default icebreaker; 'bitfab boards')")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default 1)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default 0)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="training and test data (default fashion-mnist)")  # fmt: skip
    p.add_argument("--synth", action="store_true", default=None,
                   help="build every point (RTL verification, synthesis, place and route)")  # fmt: skip
    p.add_argument("--synth-pareto", action="store_true", default=None,
                   help="after the estimates, build the Pareto points (at most --synth-max)")  # fmt: skip
    p.add_argument(
        "--synth-max", type=int, default=None, help="builds for --synth-pareto (default 4)"
    )
    p.add_argument("--verify-images", type=int, default=None,
                   help="test images verified in RTL per build (default 100)")  # fmt: skip
    p.add_argument("--margin", type=float, default=None,
                   help="fraction of the board a design may fill (default 0.8)")  # fmt: skip
    p.add_argument("--max-luts", type=int, default=None,
                   help="at most N logic cells per design on any board (caps --margin on big boards)")  # fmt: skip
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="design clock for every board (default: oscillator; ECP5 50 MHz via PLL)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run on this Ray cluster (host:port or auto) instead of the local pool")  # fmt: skip
    p.add_argument("--cache", default=None,
                   help="trained-model cache (default $BITFAB_CACHE/explore or ~/.cache/bitfab/explore)")  # fmt: skip
    p.add_argument("--no-cache", action="store_true",
                   help="recompute every point (trained models are still reused)")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def sweep_options(args: argparse.Namespace) -> dict:
    """The sweep options from ``--sweep`` and the flags (flags win); not yet validated."""
    from bitfab.flows.explore.spec import load_sweep_toml

    opts = load_sweep_toml(args.sweep) if args.sweep else {}
    opts.update({k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None})
    return opts


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bitfab.errors import BitfabError
    from bitfab.flows.explore.spec import make_spec
    from bitfab.flows.explore.sweep import run_sweep

    spec = make_spec(sweep_options(args))  # every check before any work
    if args.jobs < 1:
        raise BitfabError(f"--jobs {args.jobs}: must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise BitfabError(f"--out {out}: exists and is not a folder")
    n = len(spec.points())
    with contextlib.ExitStack() as stack:
        tell = None
        if not args.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            bar = stack.enter_context(
                Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    TimeRemainingColumn(),
                    transient=False,
                )
            )
            tasks: dict[str, int] = {}
            names = {
                "train": "train models",
                "points": f"points ({n})",
                "synth": "build Pareto points",
            }

            def tell(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = bar.add_task(names.get(phase, phase), total=total)
                bar.update(tasks[phase], completed=done, total=total)

        res = run_sweep(
            spec,
            out,
            jobs=args.jobs,
            ray=args.ray,
            cache_dir=args.cache,
            use_cache=not args.no_cache,
            progress=tell,
        )
    c = res["counts"]
    print(
        f"{c['points']} points: {c['ok']} ok, {c['failed']} failed, {c['synthesized']} "
        f"synthesized, {c['cached']} cached; {res['executor']}, {res['seconds']:.1f} s -> "
        f"{out}/report.html"
    )
    for board, names in res["pareto"].items():
        print(f"  Pareto {board}: {', '.join(names) or 'none'}")
    return 0
