"""The CLI builds every parser without importing the heavy stacks (``bitfab --help`` stays fast)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "brevitas", "qonnx", "finn", "amaranth", "onnx")


def test_building_every_parser_imports_no_heavy_package():
    code = (
        "import json, sys\n"
        "import bitfab.cli as c\n"
        "p = c.build_parser()\n"
        "names = sorted(p._subparsers._group_actions[0].choices)\n"
        f"print(json.dumps([names, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    names, heavy = json.loads(out.stdout)
    assert {"train", "quantize", "build", "explore", "mixed", "compile"} <= set(names)
    assert heavy == [], f"building the parsers imported {heavy}"


def test_version_flag():
    from bitfab import __version__

    out = subprocess.run(
        [sys.executable, "-m", "bitfab", "--version"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == f"bitfab {__version__}"


def test_no_argparse_outside_the_cli_package():
    """Every command line of the package is parsed in bitfab/cli/ (one place for flags, help and
    examples); stage modules take Python arguments only."""
    import ast
    from pathlib import Path

    import bitfab

    root = Path(bitfab.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        if path.relative_to(root).parts[0] == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            if any(n == "argparse" or n.startswith("argparse.") for n in names):
                offenders.append(f"{path.relative_to(root.parent)}:{node.lineno}")
    assert offenders == [], f"argparse outside bitfab/cli/: {offenders}"
