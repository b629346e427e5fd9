"""``bitfab doctor``: check the parts bitfab needs and print the fix for each missing one
(stage: :mod:`bitfab.flows.doctor`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "doctor",
        help="check FINN, Verilator, the YoWASP tools, the dataset (and a serial port)",
        description="One line per part: ok, missing (a stage needs it) or warn (optional), what "
        "was found and the fix. Exit code 0 when every required part is there, 1 otherwise. The "
        "first run of each YoWASP tool compiles it into the YoWASP cache (minutes); doctor does "
        "that once so the first build does not.",
        examples=["bitfab doctor", "bitfab doctor --port /dev/ttyUSB1 --no-tools"],
    )
    p.add_argument("--port", default=None, help="also check that this serial port opens")
    p.add_argument(
        "--no-tools", action="store_true", help="skip running the Yosys/nextpnr tools (fast)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.flows.doctor import run_checks

    checks = run_checks(args.port, tools=not args.no_tools)
    width = max(len(c.part) for c in checks)
    for c in checks:
        line = f"{c.part:<{width}}  {c.status:<7}  {c.found}"
        if c.fix and c.status != "ok":
            line += f"  -> {c.fix}"
        print(line)
    missing = [c.part for c in checks if c.status == "missing"]
    print(f"{len(checks) - len(missing)}/{len(checks)} parts ready" +
          (f"; missing: {', '.join(missing)}" if missing else ""))  # fmt: skip
    return 1 if missing else 0
