"""``bitfab boards``: the board catalogue (stage: :mod:`bitfab.boards.listing`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "boards",
        help="list the supported boards and bare devices",
        description="The board catalogue: device, clock, LUTs, block RAM, DSPs, SPRAM, and the "
        "pins of each board's serial host link and class LEDs.",
        examples=["bitfab boards", "bitfab boards --wide"],
    )
    p.add_argument("--wide", action="store_true", help="one table row per target with every column")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.boards.listing import print_boards

    print_boards(args.wide)
    return 0
