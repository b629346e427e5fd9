"""``bitfab synth``: Yosys + nextpnr for a Verilog file or one PE array out of context
(stage: :mod:`bitfab.fpga`).

A PE array spec (``--array parallel --pe 4 --simd 16 --wbits 1 --abits 1``) is wrapped in an
out-of-context harness whose own cost is measured and reported separately.
"""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command, add_out, array_flag
from bitfab.errors import BitfabError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "synth",
        help="synthesize + place and route a design or PE array (Yosys, nextpnr)",
        description="Yosys + nextpnr (YoWASP) for an iCE40/ECP5 board or bare device. Writes "
        "OUT/report.json (LUT, FF, carry, BRAM, DSP, post-route Fmax, utilization, tool times), "
        "the tool logs and, with --bitstream, the bitstream. PE arrays are wrapped in an "
        "out-of-context harness whose own cost is measured and reported separately.",
        examples=[
            "bitfab synth --array bitserial --pe 4 --simd 16 --wbits 2 --abits 2 --board up5k "
            "--out synth/bs",
            "bitfab synth runs/tfc/acc/accelerator.v --top accelerator --board ulx3s-85f "
            "--out synth/tfc",
        ],
    )
    p.add_argument("verilog", nargs="?", help="Verilog file (.v/.sv); omit with --array")
    p.add_argument(
        "--array",
        type=array_flag,
        default=None,
        help="synthesize a bitfab PE array instead: parallel, bitserial or bitfusion",
    )
    p.add_argument("--pe", type=int, default=4, help="PE rows (default 4)")
    p.add_argument("--simd", type=int, default=16, help="SIMD lanes (default 16)")
    p.add_argument("--wbits", type=int, default=1, help="weight bits 1-8 (default 1)")
    p.add_argument("--abits", type=int, default=1, help="activation bits 1-8 (default 1)")
    p.add_argument(
        "--kind",
        default=None,
        help="bipolar/signed/unsigned (default: bipolar at 1 bit, else signed)",
    )
    p.add_argument(
        "--board",
        "--target",
        dest="target",
        required=True,
        help="board or bare device (see 'bitfab boards'); --target is the older name",
    )
    add_out(p, "folder", "output folder")
    p.add_argument("--clock-mhz", type=float, default=None, help="nextpnr clock constraint")
    p.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    p.add_argument("--top", default="top", help="top module name (Verilog)")
    p.add_argument("--dsp", action="store_true", help="allow hard DSP multipliers")
    p.add_argument("--bitstream", action="store_true", help="also pack a bitstream")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bitfab.boards import get_target
    from bitfab.fpga import synthesize

    console = Console(stderr=True)
    if (args.array is None) == (args.verilog is None):
        raise BitfabError("synth: give either a Verilog file or --array KIND, not both or neither")
    get_target(args.target)  # an unknown target fails before anything is built
    design = make_array(args) if args.array else args.verilog
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


def make_array(args: argparse.Namespace):  # noqa: ANN201 - an Amaranth component
    """The PE array of ``--array/--pe/--simd/--wbits/--abits/--kind``, or BitfabError."""
    from bitfab.hw.arrays import array_class

    def kind(bits: int) -> str:
        return args.kind or ("bipolar" if bits == 1 else "signed")

    cls = array_class(args.array)
    try:
        return cls(args.pe, args.simd, args.wbits, args.abits, kind(args.wbits), kind(args.abits))
    except ValueError as exc:
        raise BitfabError(f"synth --array {args.array}: {exc}") from None
