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

from bitfab.cli.common import HelpFormatter, Parser, check_out
from bitfab.errors import BitfabError, Terminated

#: command modules of bitfab.cli, in the order ``bitfab --help`` lists them (the flow's order)
COMMANDS: tuple[str, ...] = (
    "train",
    "quantize",
    "mixed",
    "dataflow",
    "compile",
    "verify",
    "build",
    "program",
    "flow",
    "explore",
    "synth",
    "boards",
    "run",
    "board_sim",
    "doctor",
)


def build_parser() -> argparse.ArgumentParser:
    """The ``bitfab`` parser with every command registered."""
    from bitfab import __version__

    parser = Parser(
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


#: what to do after an interrupted command, where there is something to say
RESUME_HINTS = {
    "train": "rerun with --resume to continue from the last finished epoch",
    "build": "rerun the same command: finished steps are reused",
    "explore": "rerun the same command: finished points are reused",
}


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bitfab ARGV``; returns the exit code (2: bad input, 130: interrupted by Ctrl-C,
    143: terminated by SIGTERM; either way staged outputs are removed and tools ended)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version (0) or a usage error (2, its line printed)
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    else:  # signal handlers can only be set in the main thread
        previous = None
    try:
        if getattr(args, "out_kind", None):
            check_out(args.out, args.out_kind)
        return int(args.func(args) or 0)
    except BitfabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        what = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted"
        hint = RESUME_HINTS.get(args.command)
        print(f"error: {what}" + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


__all__ = ["COMMANDS", "build_parser", "main"]
