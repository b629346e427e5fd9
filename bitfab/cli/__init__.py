"""The ``bitfab`` command line: one module per command, shared pieces in :mod:`bitfab.cli.common`.

A command module has ``register(sub)`` (its parser, whose ``--help`` ends with examples) and
``run(args) -> int``; it only parses arguments and calls the stage API, imported inside ``run`` so
that building every parser imports neither torch nor Brevitas (``bitfab --help`` is instant).
A :class:`bitfab.errors.BitfabError` is printed as one ``error:`` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bitfab.cli.common import HelpFormatter, check_out
from bitfab.errors import BitfabError

#: command modules of bitfab.cli, in the order ``bitfab --help`` lists them (the flow's order)
COMMANDS: tuple[str, ...] = (
    "train",
    "quantize",
    "mixed",
    "dataflow",
    "compile",
    "verify",
    "build",
    "flow",
    "explore",
    "synth",
    "boards",
    "run",
    "board_sim",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``bitfab`` parser with every command registered."""
    from bitfab import __version__

    parser = argparse.ArgumentParser(
        prog="bitfab",
        description="Low-bit neural networks from Brevitas QAT through FINN dataflow to "
        "open-toolchain FPGA hardware. 'bitfab COMMAND --help' shows a command's options and "
        "examples.",
        epilog="examples:\n"
        "  bitfab train --model tfc --wbits 1 --in-bits 1 --epochs 5 --out runs/tfc\n"
        "  bitfab build runs/tfc/model.onnx --board icebreaker --out runs/tfc/build\n",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bitfab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"bitfab.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bitfab ARGV``; returns the exit code (2: bad input, 130: interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "out_kind", None):
            check_out(args.out, args.out_kind)
        return int(args.func(args) or 0)
    except BitfabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


__all__ = ["COMMANDS", "build_parser", "main"]
