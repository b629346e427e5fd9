"""The ``bitfab`` command line. It only parses arguments and calls the stage APIs.

Stage modules are imported inside the command functions so that ``bitfab --help`` is instant.
A :class:`bitfab.errors.BitfabError` is printed as one ``error:`` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bitfab.errors import BitfabError


# --- train (owned by bitfab.models) -------------------------------------------------------------
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="QAT-train a zoo model and export QONNX",
                       description="Quantization-aware training with Brevitas; writes DIR/model.onnx "
                       "(QONNX), DIR/metrics.json and DIR/checkpoint.pt.")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    raise BitfabError("train: not implemented yet")


# --- dataflow (owned by bitfab.dataflow) --------------------------------------------------------
def _add_dataflow(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dataflow", help="streamline QONNX into a folded FINN HW-layer graph",
                       description="FINN conversion, streamlining and HW-layer conversion, then "
                       "PE/SIMD folding; writes OUT/dataflow.onnx and OUT/dataflow.json. "
                       "Without a folding option every layer gets PE=SIMD=1.")
    p.add_argument("model", help="QONNX model (e.g. DIR/model.onnx from 'bitfab train')")
    p.add_argument("--out", required=True, help="output folder")
    fold = p.add_mutually_exclusive_group()
    fold.add_argument("--target-cycles", type=int, metavar="N",
                      help="cheapest folding whose slowest layer needs <= N cycles per image")
    fold.add_argument("--lut-budget", type=int, metavar="N",
                      help="fastest folding whose LUT estimate is <= N (see docs/dataflow.md)")
    fold.add_argument("--folding", metavar="JSON",
                      help='folding file {"LAYER": {"PE": p, "SIMD": s}, ...}; checked against '
                      "FINN's constraints")
    p.set_defaults(func=_cmd_dataflow)


def _cmd_dataflow(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from bitfab.dataflow.build import build_dataflow

    folding = None
    if args.folding is not None:
        try:
            folding = json.loads(Path(args.folding).read_text())
        except (OSError, ValueError) as e:
            raise BitfabError(f"--folding {args.folding}: cannot read JSON ({e})") from None
        if not isinstance(folding, dict):
            raise BitfabError(f"--folding {args.folding}: expected an object of layer names")
    rep = build_dataflow(args.model, args.out, target_cycles=args.target_cycles,
                         lut_budget=args.lut_budget, folding=folding, progress=True)
    met = "" if rep["folding"]["target_met"] else " (target NOT met: fastest folding used)"
    print(f"{len(rep['layers'])} HW layers ({', '.join(rep['op_types'])}); "
          f"{rep['cycles_per_image']} cycles/image, bottleneck {rep['bottleneck']}, "
          f"~{rep['lut_estimate']} LUT{met} -> {args.out}")
    return 0


# --- main ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bitfab",
        description="Low-bit neural networks from Brevitas QAT through FINN dataflow to "
        "open-toolchain FPGA hardware.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_dataflow(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BitfabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
