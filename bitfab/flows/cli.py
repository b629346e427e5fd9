"""Command-line pieces for ``bitfab synth``, ``bitfab boards`` and ``bitfab build`` (wired up by
``bitfab/cli.py``).

Only ``argparse`` is imported at module level, so building the parser stays instant; the flows
and Amaranth are imported when a command runs.

``bitfab synth`` takes a Verilog file, or a PE array spec (``--array bitparallel --pe 4 --simd 16
--wbits 1 --abits 1``) synthesized out of context, and writes OUT/report.json plus the logs.
"""

from __future__ import annotations

import argparse

from bitfab.kinds import ARRAY_ALIASES, ARRAY_KINDS, array_kind

#: --array choices of synth: the kinds and their older spellings
ARRAYS = (*ARRAY_KINDS, *ARRAY_ALIASES)


def add_synth(sub: argparse._SubParsersAction) -> None:
    """Register ``bitfab synth``."""
    p = sub.add_parser(
        "synth",
        help="synthesize + place and route a design or PE array (Yosys, nextpnr)",
        description="Yosys + nextpnr (YoWASP) for an iCE40/ECP5 board or bare device. Writes "
        "OUT/report.json (LUT, FF, carry, BRAM, DSP, post-route Fmax, utilization, tool times), "
        "the tool logs and, with --bitstream, the bitstream. PE arrays are wrapped in an "
        "out-of-context harness whose own cost is measured and reported separately.",
    )
    p.add_argument("verilog", nargs="?", help="Verilog file (.v/.sv); omit with --array")
    p.add_argument("--array", choices=ARRAYS, help="synthesize a bitfab PE array instead")
    p.add_argument("--pe", type=int, default=4, help="PE rows (default 4)")
    p.add_argument("--simd", type=int, default=16, help="SIMD lanes (default 16)")
    p.add_argument("--wbits", type=int, default=1, help="weight bits 1-8 (default 1)")
    p.add_argument("--abits", type=int, default=1, help="activation bits 1-8 (default 1)")
    p.add_argument(
        "--kind",
        default=None,
        help="bipolar/signed/unsigned (default: bipolar at 1 bit, else signed)",
    )
    p.add_argument("--target", required=True, help="board or device (see 'bitfab boards')")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--clock-mhz", type=float, default=None, help="nextpnr clock constraint")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    p.add_argument("--top", default="top", help="top module name (Verilog)")
    p.add_argument("--dsp", action="store_true", help="allow hard DSP multipliers")
    p.add_argument("--bitstream", action="store_true", help="also pack a bitstream")
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bitfab.errors import BitfabError
    from bitfab.fpga import synthesize

    console = Console(stderr=True)
    if (args.array is None) == (args.verilog is None):
        raise BitfabError("synth: give either a Verilog file or --array KIND, not both or neither")
    from bitfab.boards import get_target

    get_target(args.target)  # an unknown target fails before anything is built
    if args.array:
        design = _make_array(args)
    else:
        design = args.verilog
    report = synthesize(
        design,
        args.target,
        args.out,
        clock_mhz=args.clock_mhz,
        top=args.top,
        seed=args.seed,
        dsp=args.dsp,
        bitstream=args.bitstream,
        console=console,
    )
    Console().print(report.table())
    return 0


def _make_array(args: argparse.Namespace):
    from bitfab.errors import BitfabError

    def kind(bits: int) -> str:
        return args.kind or ("bipolar" if bits == 1 else "signed")

    from bitfab.hw.arrays import array_class

    cls = array_class(array_kind(args.array))
    try:
        return cls(args.pe, args.simd, args.wbits, args.abits, kind(args.wbits), kind(args.abits))
    except ValueError as exc:
        raise BitfabError(f"synth --array {args.array}: {exc}") from None


def add_boards(sub: argparse._SubParsersAction) -> None:
    """Register ``bitfab boards``."""
    p = sub.add_parser(
        "boards",
        help="list the supported boards and bare devices",
        description="The board catalogue: device, clock, LUTs, block RAM, DSPs, SPRAM, and the "
        "pins of each board's serial host link and class LEDs.",
    )
    p.add_argument("--wide", action="store_true", help="one table row per target with every column")
    p.set_defaults(func=cmd_boards)


def cmd_boards(args: argparse.Namespace) -> int:
    from bitfab.boards.listing import print_boards

    print_boards(args.wide)
    return 0


def add_build(sub: argparse._SubParsersAction) -> None:
    """Register ``bitfab build``."""
    p = sub.add_parser(
        "build",
        help="QONNX model -> verified bitstream for a board, with a report",
        description="The main job: dataflow (FINN streamlining) with folding chosen to fit the "
        "board, compile (Amaranth accelerator), RTL verification against the golden model on "
        "test images (Verilator; any mismatch is an error), board top (UART host link, PLL, "
        "LEDs), Yosys + nextpnr + icepack/ecppack. Writes OUT/report.json (accuracy, "
        "verification, resources, Fmax, cycles and images per second, bitstream sha256, time "
        "per step) and one folder per step; a step whose inputs are unchanged is skipped "
        "(cached by content hash). Exit 2 if the model does not fit the board.",
    )
    p.add_argument("model", help="QONNX model (DIR/model.onnx from 'bitfab train')")
    p.add_argument("--board", required=True, help="board from 'bitfab boards' (e.g. icebreaker)")
    p.add_argument(
        "--array",
        default="parallel",
        help="PE array of every MVAU: parallel, bitserial or bitfusion (default parallel)",
    )
    p.add_argument("--out", required=True, help="output folder")
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
    p.set_defaults(func=cmd_build)


def read_folding(path: str) -> dict:
    """A folding file (JSON object of layer names), or BitfabError naming the file."""
    import json
    from pathlib import Path

    from bitfab.errors import BitfabError

    try:
        folding = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BitfabError(f"--folding {path}: cannot read JSON ({e})") from None
    if not isinstance(folding, dict):
        raise BitfabError(f'--folding {path}: expected an object {{"LAYER": {{"PE": p, ...}}}}')
    return folding


def cmd_build(args: argparse.Namespace) -> int:
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
    )
    out = Console()
    for line in summary_lines(report):
        out.print(line, highlight=False)
    out.print(f"report: {args.out}/report.json", highlight=False)
    return 0
