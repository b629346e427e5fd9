"""``bitfab board-sim``: a simulated board on a pty for ``bitfab run``
(stage: :mod:`bitfab.sim.board_sim`)."""

from __future__ import annotations

import argparse
import sys

from bitfab.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "board-sim",
        help="a simulated board (Verilator) on a pty, to test 'bitfab run' without hardware",
        description="Builds the board top of accelerator DIR (UART host link and accelerator) "
        "with Verilator (cached after the first build), prints the pty that stands for the "
        "board's serial port and serves it until interrupted (Ctrl-C).",
        examples=[
            "bitfab board-sim --acc runs/tfc/acc      # prints e.g. /dev/pts/3",
            "bitfab run --port /dev/pts/3 --acc runs/tfc/acc --images 200",
        ],
    )
    p.add_argument("--acc", required=True, help="folder written by 'bitfab compile'")
    p.add_argument(
        "--divisor",
        type=int,
        default=None,
        help="clock cycles per UART bit (default bitfab.sim.board_sim.SIM_DIVISOR)",
    )
    p.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="inter-byte timeout in clock cycles (default bitfab.sim.board_sim.SIM_TIMEOUT)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.sim.board_sim import simulated_board

    print(
        "building the simulated board (Verilator, cached after the first build)...",
        file=sys.stderr,
        flush=True,
    )
    given = {"divisor": args.divisor, "timeout": args.timeout}
    sim = simulated_board(args.acc, **{k: v for k, v in given.items() if v is not None})
    print(sim.port, flush=True)
    try:
        sim.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0
