"""``bitfab mixed``: hardware-aware mixed-precision allocation (stage: :mod:`bitfab.flows.mixed`).

``bitfab mixed FLOAT_CHECKPOINT --board B --array A --budget luts=N[,bram=N][,cycles=N] --out FILE``
measures the float model's per-layer sensitivity, bitfab's per-layer hardware cost on ``B``/``A``,
chooses per-layer weight and activation bits (:mod:`bitfab.flows.mixed.search`) and writes the
ModelConfig JSON that ``bitfab train --config FILE`` takes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bitfab.cli.common import DATASETS, add_command, add_out, array_flag
from bitfab.errors import BitfabError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "mixed",
        help="choose per-layer weight/activation bits under a hardware budget (HAWQ-V2 + HAQ)",
        description="Per-layer sensitivity of a float checkpoint (Hessian trace by Hutchinson's "
        "estimator, or the measured loss change) and bitfab's own per-layer cost model for a "
        "board and array kind (LUT estimate, block RAMs, cycles per image at PE = SIMD = 1) "
        "give the per-layer weight and activation bits of least summed sensitivity within the "
        "budget and the board's own LUT and block-RAM limits. Writes the ModelConfig JSON "
        "(model, wbits, abits, in_bits, dropout) for `bitfab train --config FILE`.",
        examples=[
            "bitfab mixed runs/float/checkpoint.pt --board icebreaker --budget luts=3500 "
            "--out mixed.json && bitfab train --config mixed.json --out runs/mixed",
            "bitfab mixed runs/float --board ulx3s-85f --array parallel --budget luts=20000,bram=40 "
            "--sensitivity loss --out mixed.json",
        ],
    )
    p.add_argument(
        "checkpoint",
        metavar="FLOAT_CHECKPOINT",
        help="checkpoint.pt (or its folder) of `bitfab train --wbits float`",
    )
    p.add_argument("--board", required=True, help="catalogue board, e.g. icebreaker")
    p.add_argument(
        "--array",
        default="bitserial",
        type=array_flag,
        help="PE array kind: parallel, bitserial, bitfusion (default bitserial)",
    )
    p.add_argument(
        "--budget",
        required=True,
        help="luts=N[,bram=N][,cycles=N]: accelerator LUT estimate (the units `bitfab build` "
        "fits), block RAMs, cycles per image",
    )
    add_out(p, "file", "ModelConfig JSON file to write")
    p.add_argument(
        "--sensitivity",
        choices=("hessian", "loss"),
        default="hessian",
        help="hessian: HAWQ-V2 mean Hessian trace x ||Q(T)-T||^2; loss: measured loss increase "
        "(default hessian)",
    )
    p.add_argument("--bits", default="1,2,4,8", help="candidate bit widths (default 1,2,4,8)")
    p.add_argument(
        "--calib", type=int, default=512, help="training images for the sensitivity (512)"
    )
    p.add_argument("--samples", type=int, default=32, help="Hutchinson samples per tensor (32)")
    p.add_argument(
        "--dataset", default="fashion-mnist", choices=DATASETS, help="default fashion-mnist"
    )
    p.add_argument("--data-dir", default=None, help="dataset folder (default: the system one)")
    p.add_argument(
        "--margin", type=float, default=0.8, help="board fill margin as `bitfab build` (0.8)"
    )
    p.add_argument(
        "--no-board-limits",
        action="store_true",
        help="apply only --budget, not the board's own LUT and block-RAM limits",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def parse_bits(text: str) -> tuple[int, ...]:
    try:
        bits = tuple(sorted({int(b) for b in text.split(",") if b.strip()}))
    except ValueError:
        raise BitfabError(f"--bits {text!r}: give a comma list of integers 1-8") from None
    if not bits or any(not 1 <= b <= 8 for b in bits):
        raise BitfabError(f"--bits {text!r}: candidate widths must be integers 1-8")
    return bits


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from bitfab.flows.mixed.search import mixed_precision, parse_budget, resolve_target
    from bitfab.models.config import make_config

    torch.set_num_threads(1)
    budget = parse_budget(args.budget)
    bits = parse_bits(args.bits)
    resolve_target(args.board, args.array)  # unknown board or array: refused before any work
    for name in ("calib", "samples"):
        if getattr(args, name) < 1:
            raise BitfabError(f"--{name} {getattr(args, name)}: must be a positive integer")
    if not 0 < args.margin <= 1:
        raise BitfabError(f"--margin {args.margin}: must be in (0, 1]")
    out = Path(args.out)
    if out.is_dir():
        raise BitfabError(f"--out {out}: is a folder; give a .json file name")
    console = Console(stderr=True, quiet=args.quiet)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=args.quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("cost tables (compiled configurations)", total=None)

        def on_config(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        res = mixed_precision(
            args.checkpoint,
            args.board,
            args.array,
            budget,
            method=args.sensitivity,
            bits=bits,
            calib=args.calib,
            samples=args.samples,
            dataset=args.dataset,
            data_dir=args.data_dir,
            margin=args.margin,
            board_limits=not args.no_board_limits,
            on_stage=lambda s: console.log(s) if not args.quiet else None,
            on_config=on_config,
        )
    cfg = make_config(**res.config)  # validated before anything is written
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    tmp.replace(out)
    print(
        f"mixed precision for {cfg.model} on {args.board} ({args.array}), "
        f"sensitivity {args.sensitivity}, bits {','.join(map(str, bits))}"
    )
    print(f"{'layer':<6} {'wbits':>5} {'abits':>5} {'LUTs':>6} {'BRAM':>5} {'cycles/image':>13}")
    for i, c in enumerate(res.cost.layers):
        a = str(cfg.abits[i]) if i < len(cfg.abits) else "-"
        print(f"{i:<6} {cfg.wbits[i]:>5} {a:>5} {c.luts:>6} {c.bram:>5} {c.cycles:>13}")
    t = res.cost.total
    print(f"{'host':<6} {'':>5} {'':>5} {res.cost.base.luts:>6} {res.cost.base.bram:>5}")
    print(f"{'total':<6} {'':>5} {'':>5} {t.luts:>6} {t.bram:>5} {t.cycles:>13}")
    print("budget: " + ", ".join(f"{k} {v}" for k, v in res.budget.items()))
    print(f"wrote {out}")
    return 0
