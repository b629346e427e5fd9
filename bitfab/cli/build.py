"""``bitfab build``: QONNX model -> verified bitstream for a board (stage: :mod:`bitfab.flows.build`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command, add_out, add_own_inputs, array_flag, read_folding


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "build",
        help="QONNX model -> verified bitstream for a board, with a report",
        description="The main job: dataflow (FINN streamlining) with folding chosen to fit the "
        "board, compile (Amaranth accelerator), RTL verification against the golden model on "
        "test images (Verilator; any mismatch is an error), board top (UART host link, PLL, "
        "LEDs), Yosys + nextpnr + icepack/ecppack. Writes OUT/report.json (accuracy, "
        "verification, resources, Fmax, cycles and images per second, bitstream sha256, time "
        "per step) and one folder per step; a step whose inputs are unchanged is skipped "
        "(cached by content hash). Exit 2 if the model does not fit the board.",
        examples=[
            "bitfab build runs/tfc/model.onnx --board icebreaker --out runs/tfc/build",
            "bitfab build runs/c/model.onnx --board ulx3s-85f --array bitserial --clock-mhz 50 "
            "--out runs/c/build",
        ],
    )
    p.add_argument("model", help="QONNX model (DIR/model.onnx from 'bitfab train')")
    p.add_argument("--board", required=True, help="board from 'bitfab boards' (e.g. icebreaker)")
    p.add_argument(
        "--array",
        default="parallel",
        type=array_flag,
        help="PE array of every MVAU: parallel, bitserial or bitfusion (default parallel)",
    )
    add_out(p, "folder", "output folder")
    p.add_argument(
        "--clock-mhz",
        type=float,
        default=None,
        help="design clock in MHz (default: the board oscillator; other values use the PLL)",
    )
    p.add_argument(
        "--verify-images",
        type=int,
        default=200,
        help="test images simulated in RTL against the golden model (default 200)",
    )
    add_own_inputs(p, "verify on", seed_flag="--input-seed")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    p.add_argument(
        "--margin",
        type=float,
        default=0.8,
        help="fraction of the board's LUTs the design may fill (default 0.8)",
    )
    p.add_argument(
        "--folding",
        default=None,
        help='folding file {"LAYER": {"PE": p, "SIMD": s, "parallel_window": 0|1}, ...} (as '
        "'bitfab dataflow --folding'; unnamed layers PE=SIMD=1) instead of the fastest folding "
        "that fits; still checked against the board",
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bitfab.flows.build import build, summary_lines

    console = Console(stderr=True, quiet=args.quiet)
    folding = read_folding(args.folding) if args.folding else None
    report = build(
        args.model,
        args.board,
        args.array,
        args.out,
        clock_mhz=args.clock_mhz,
        verify_images=args.verify_images,
        seed=args.seed,
        margin=args.margin,
        folding=folding,
        progress=not args.quiet,
        console=console,
        verify_inputs=args.inputs,
        verify_random=args.random,
        verify_seed=args.input_seed,
    )
    out = Console()
    for line in summary_lines(report):
        out.print(line, highlight=False)
    out.print(f"report: {args.out}/report.json", highlight=False)
    return 0
