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
                       "PE/SIMD folding; writes OUT/dataflow.onnx and OUT/dataflow.json.")
    p.add_argument("model", help="QONNX model (e.g. DIR/model.onnx from 'bitfab train')")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_dataflow)


def _cmd_dataflow(args: argparse.Namespace) -> int:
    raise BitfabError("dataflow: not implemented yet")


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
