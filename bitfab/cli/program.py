"""``bitfab program``: flash a built bitstream onto its board (the board's own programmer, as its
amaranth-boards platform runs it: iceprog, openFPGALoader, dfu-util, tinyprog)."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
from pathlib import Path

from bitfab.cli.common import add_command
from bitfab.errors import BitfabError

#: where to get each programmer
INSTALL = {
    "iceprog": "apt install fpga-icestorm (or the OSS CAD Suite)",
    "openFPGALoader": "apt install openfpgaloader (or the OSS CAD Suite)",
    "dfu-util": "apt install dfu-util",
    "tinyprog": "pip install tinyprog",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "program",
        help="flash the bitstream of a 'bitfab build' folder onto its board",
        description="Reads OUT/report.json of 'bitfab build' (the board and the bitstream) and "
        "runs the board's programmer on it (and, for weights in SPRAM, writes the weight image "
        "at its flash offset: iceprog -o), as the board's amaranth-boards platform does "
        "(iCEBreaker: iceprog; ULX3S: openFPGALoader -b ulx3s; OrangeCrab, Fomu: dfu-util; "
        "TinyFPGA BX: tinyprog). The tool can be overridden by the platform's environment "
        "variable ($ICEPROG, $OPENFPGALOADER, $DFU_UTIL, $TINYPROG). --dry-run prints the "
        "command only.",
        examples=[
            "bitfab program runs/tfc/build",
            "bitfab program runs/tfc/build --dry-run",
        ],
    )
    p.add_argument("build", help="output folder of 'bitfab build' (holds report.json)")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.set_defaults(func=run)


def command_for(build_dir: Path) -> list[str]:
    """The programmer command for the bitstream of ``build_dir``, or BitfabError."""
    from bitfab.boards import get_target

    report_path = build_dir / "report.json"
    if not report_path.is_file():
        raise BitfabError(f"{build_dir}: no report.json; pass the --out folder of 'bitfab build'")
    try:
        report = json.loads(report_path.read_text())
        board, bitstream = report["board"], Path(report["bitstream"]["path"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BitfabError(f"{report_path}: not a 'bitfab build' report ({e}); rebuild") from None
    if not bitstream.is_absolute():
        bitstream = build_dir / bitstream
    if not bitstream.is_file():
        local = build_dir / "bitstream" / bitstream.name  # the folder was moved
        if not local.is_file():
            raise BitfabError(f"{bitstream}: bitstream missing; rerun 'bitfab build'")
        bitstream = local
    return get_target(board).program_command(bitstream)


def weights_command_for(build_dir: Path) -> list[str] | None:
    """The command that writes the weight image of a build with SPRAM weights at its flash
    offset (None for a build without)."""
    report = json.loads((build_dir / "report.json").read_text())
    rec = report.get("weight_image")
    if not rec:
        return None
    image = Path(rec["path"])
    if not image.is_file():
        image = build_dir / "bitstream" / image.name
        if not image.is_file():
            raise BitfabError(f"{rec['path']}: weight image missing; rerun 'bitfab build'")
    return [*rec["program"][:-1], str(image)]


def run(args: argparse.Namespace) -> int:
    from bitfab.fpga.toolchain import run_group

    cmds = [command_for(Path(args.build))]
    wcmd = weights_command_for(Path(args.build))
    if wcmd:
        cmds.append(wcmd)
    for cmd in cmds:
        line = " ".join(shlex.quote(a) for a in cmd)
        if args.dry_run:
            print(line)
            continue
        if shutil.which(cmd[0]) is None:
            hint = INSTALL.get(Path(cmd[0]).name, "install it")
            raise BitfabError(f"{cmd[0]} not found: {hint}; or flash by hand: {line}")
        print(f"flashing: {line}", flush=True)
        code = run_group(cmd)
        if code != 0:
            raise BitfabError(
                f"{cmd[0]} failed (exit {code}); is the board plugged in (and the USB device "
                "accessible to this user)?"
            )
    return 0
