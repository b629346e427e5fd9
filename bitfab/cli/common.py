"""Pieces every ``bitfab`` command shares: the sub-parser with its examples, the model options,
folding files and the progress bar callback.

Only the standard library is imported here, so building every parser stays instant
(``tests/test_cli_startup.py``); each command imports its stage when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from bitfab.errors import BitfabError

#: test-image sets of train / verify / run / quantize
DATASETS = ("fashion-mnist", "digits")
#: older spellings of the PE array kinds, accepted on the command line only
ARRAY_ALIASES = {"bitparallel": "parallel", "bit-parallel": "parallel", "bit-serial": "bitserial"}


def array_flag(value: str) -> str:
    """argparse ``type`` of ``--array``: a kind of :data:`bitfab.kinds.ARRAY_KINDS` or an alias,
    returned as the canonical kind."""
    from bitfab.kinds import ARRAY_KINDS

    kind = ARRAY_ALIASES.get(value.lower(), value.lower())
    if kind not in ARRAY_KINDS:
        raise argparse.ArgumentTypeError(f"{value!r}: expected one of {', '.join(ARRAY_KINDS)}")
    return kind


def array_list_flag(value: str) -> str:
    """argparse ``type`` of a comma list of array kinds (explore): aliases mapped, order kept."""
    return ",".join(array_flag(v.strip()) if v.strip() else v for v in value.split(","))


class Parser(argparse.ArgumentParser):
    """argparse's parser whose usage errors are one ``error:`` line (exit code 2), like every
    other bad input of bitfab, naming the flag and pointing at ``--help``."""

    def error(self, message: str):  # noqa: ANN201 - never returns
        import re

        message = re.sub(r"^argument ([^:]+): ", r"\1 ", message)
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that the examples epilog keeps its lines as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,  # noqa: A002 - argparse's own keyword
    description: str,
    examples: Sequence[str],
) -> argparse.ArgumentParser:
    """A sub-parser whose ``--help`` ends with ``examples`` (one command line each)."""
    if not examples:
        raise ValueError(f"command {name}: give at least one example")
    epilog = "examples:\n" + "".join(f"  {e}\n" for e in examples)
    return sub.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter
    )


def add_out(p: argparse.ArgumentParser, kind: str, help: str) -> None:  # noqa: A002
    """``--out``: a ``"folder"`` or a ``"file"`` the command writes; checked by
    :func:`check_out` before the command starts any work."""
    p.add_argument("--out", required=True, help=help)
    p.set_defaults(out_kind=kind)


def check_out(path: str, kind: str) -> None:
    """BitfabError unless ``path`` can be written as a ``kind`` ("folder"/"file"): not a file
    where a folder goes (or the other way round), and the nearest existing folder on its way is
    writable."""
    out = Path(path)
    if kind == "folder" and out.exists() and not out.is_dir():
        raise BitfabError(f"--out {path}: exists and is not a folder; give a folder path")
    if kind == "file" and out.is_dir():
        raise BitfabError(f"--out {path}: is a folder; give a file name")
    probe = out if kind == "folder" and out.is_dir() else out.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise BitfabError(f"--out {path}: {probe} is a file, so it cannot hold the output")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BitfabError(f"--out {path}: {probe} is not writable; choose another --out")


def add_own_inputs(p: argparse.ArgumentParser, action: str, seed_flag: str = "--seed") -> None:
    """``--inputs FILE``, ``--random N`` and the random seed (``seed_flag``, dest
    ``input_seed``): inputs other than test images, for ``action`` ("verify on", "run")."""
    p.add_argument(
        "--inputs",
        metavar="FILE",
        default=None,
        help=f"{action} these inputs instead of test images: a .npy/.npz float array [N, "
        "<model input shape>] of values as the QONNX model takes them (quantized like the "
        "model's input quantizer)",
    )
    p.add_argument(
        "--random",
        type=int,
        metavar="N",
        default=None,
        help=f"{action} N inputs drawn uniformly from the model's input grid (for models whose "
        "input is not a 28 x 28 image)",
    )
    p.add_argument(
        seed_flag,
        dest="input_seed",
        metavar="S",
        type=int,
        default=0,
        help="random generator seed for --random (default 0)",
    )


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--model, --wbits, --abits, --in-bits, --dropout, --config (see bitfab.models.config)."""
    p.add_argument(
        "--model",
        default=None,
        help="zoo model: tfc, sfc, lfc (FINN MLPs), cnv-s (iCE40 UP5K CNN), cnv-m (ECP5 CNN); "
        "default tfc",
    )
    p.add_argument(
        "--wbits",
        default=None,
        help="weight bits 1-8, one number or one per weight layer; 32/float = float model "
        "(default 1)",
    )
    p.add_argument(
        "--abits",
        default=None,
        help="activation bits 1-8, one number or one per hidden activation (default = wbits)",
    )
    p.add_argument(
        "--in-bits",
        default=None,
        help="input bits: 1 = bipolar sign of pixel>=128, 2-8 = unsigned (8 = exact pixel); "
        "default 8; 1 = FINN's classic binarized TFC input",
    )
    p.add_argument("--dropout", type=float, default=None, help="dropout rate (default 0)")
    p.add_argument(
        "--config",
        default=None,
        help="config file with model, wbits, abits, in_bits, dropout (quantizer): TOML, or JSON "
        "(FILE.json: the 'config' dict of a metrics.json, as 'bitfab mixed' writes); flags "
        "override it",
    )


def model_opts(args: argparse.Namespace) -> dict:
    """The model config keys given by --config and the flags (flags win); not yet validated."""
    from bitfab.models.config import load_config_file

    opts = load_config_file(args.config) if args.config else {}
    flags = {
        "model": args.model,
        "wbits": args.wbits,
        "abits": args.abits,
        "in_bits": args.in_bits,
        "dropout": args.dropout,
    }
    opts.update({k: v for k, v in flags.items() if v is not None})
    return opts


def add_folding_target(p: argparse.ArgumentParser, *, folding_file: bool) -> None:
    """The mutually exclusive folding choices of ``dataflow`` (and ``flow`` without a file)."""
    fold = p.add_mutually_exclusive_group()
    fold.add_argument(
        "--target-cycles",
        type=int,
        metavar="N",
        help="cheapest folding whose slowest layer needs <= N cycles per image",
    )
    fold.add_argument(
        "--lut-budget",
        type=int,
        metavar="N",
        help="fastest folding whose LUT estimate is <= N (see docs/dataflow.md)",
    )
    if folding_file:
        fold.add_argument(
            "--folding",
            metavar="JSON",
            help='folding file {"LAYER": {"PE": p, "SIMD": s, "parallel_window": 0|1}, ...}; '
            "checked against FINN's constraints (a depthwise sliding window's SIMD must equal "
            "the PE of the Pool it feeds)",
        )


def read_folding(path: str) -> dict:
    """A folding file (JSON object of layer names), or BitfabError naming the file."""
    try:
        folding = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BitfabError(f"--folding {path}: cannot read JSON ({e})") from None
    if not isinstance(folding, dict):
        raise BitfabError(f'--folding {path}: expected an object {{"LAYER": {{"PE": p, ...}}}}')
    return folding


@contextlib.contextmanager
def progress_callback(
    label: str, *, quiet: bool, total: int | None = None
) -> Iterator[Callable[[int, int], None] | None]:
    """:func:`bitfab.progress.progress_bar` on stderr as a ``progress(done, total)`` callback, or
    ``None`` with ``quiet``."""
    if quiet:
        yield None
        return
    from bitfab.progress import progress_bar

    with progress_bar(None, label, total) as update:
        yield update
