"""The import rule of docs/architecture.md, enforced on every module of the package.

Every ``import`` and ``from ... import`` of every module under ``bitfab/`` is read with ``ast`` --
function-level and ``TYPE_CHECKING`` imports included -- and checked against two rules:

1. a module imports only modules of its own layer or of an earlier one (``LAYERS`` below);
2. a module never imports a private name (``_x``) of another module, nor reads one as an
   attribute of an imported bitfab module (``mod._x``).

``bench/`` may use the package but never ``tests``.  The last tests plant violations in a scratch
tree and check that the checker catches each one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The layers, lowest first.  A module's layer is the longest prefix of its dotted name listed here.
LAYERS: list[tuple[str, ...]] = [
    (
        "bitfab.errors",
        "bitfab.staging",
        "bitfab.cache",
        "bitfab.content_hash",
        "bitfab.kinds",
        "bitfab.progress",
    ),
    ("bitfab.boards",),
    ("bitfab.models",),
    ("bitfab.dataflow",),
    ("bitfab.hw",),
    ("bitfab.fpga",),
    ("bitfab.sim",),
    ("bitfab.host",),
    ("bitfab.flows",),
    ("bitfab.api",),
    ("bitfab.cli", "bitfab.__main__"),
]
# The package's __init__ is the documented Python API: its lazy ``__getattr__`` may reach any layer
# below the CLI, and importing ``bitfab`` itself (to reach a submodule) is allowed from anywhere.
TOP_INIT = "bitfab"


def layer_of(name: str) -> int | None:
    """Index in LAYERS of a dotted module name (None: not a bitfab module, or the bare package)."""
    best, best_len = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    """The absolute module of a (possibly relative) ``from X import`` in module ``mod``."""
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    # a package's __init__ is its own package; a plain module's package is its parent
    base = base[: len(base) - node.level + (1 if _is_pkg.get(mod) else 0)]
    return ".".join(base + ([node.module] if node.module else []))


_is_pkg: dict[str, bool] = {}


def imports_of(path: Path, mod: str) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            for a in node.names:
                out.append((node.lineno, src, a.name))
    return out


def private_attribute_reads(path: Path, mod: str) -> list[tuple[int, str, str]]:
    """(line, module, name) for ``alias._name`` where alias is bound by ``import bitfab.x as alias``
    or ``from bitfab.x import y`` with ``bitfab.x.y`` a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("bitfab.") and a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            for a in node.names:
                full = f"{src}.{a.name}"
                if full in _is_pkg:
                    aliases[a.asname or a.name] = full
    out = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            out.append((node.lineno, aliases[node.value.id], node.attr))
    return out


def violations(root: Path, package: str = "bitfab") -> list[str]:
    """Every breach of the two rules in ``root/package``, as ``file:line: message`` lines."""
    files = sorted((root / package).rglob("*.py"))
    _is_pkg.clear()
    for f in files:
        _is_pkg[module_name(f, root)] = f.name == "__init__.py"
    bad: list[str] = []
    for f in files:
        mod = module_name(f, root)
        here = layer_of(mod)
        where = f.relative_to(root)
        for line, src, name in imports_of(f, mod):
            targets = [src]
            if name is not None and f"{src}.{name}" in _is_pkg:
                targets = [f"{src}.{name}"]  # ``from bitfab.hw import mvau``: the submodule
            for t in targets:
                if not (t == package or t.startswith(package + ".")):
                    continue
                there = layer_of(t)
                if mod != TOP_INIT and here is not None and there is not None and there > here:
                    bad.append(
                        f"{where}:{line}: {mod} (layer {LAYERS[here][0]}) imports {t} "
                        f"(later layer {LAYERS[there][0]})"
                    )
            if (
                name is not None
                and name.startswith("_")
                and not name.startswith("__")
                and src != mod
                and src.startswith(package)
            ):
                bad.append(f"{where}:{line}: {mod} imports private name {name} of {src}")
        for line, src, name in private_attribute_reads(f, mod):
            if src != mod:
                bad.append(f"{where}:{line}: {mod} reads private name {name} of {src}")
    return bad


def test_every_module_has_a_layer():
    unplaced = [
        module_name(f, ROOT)
        for f in sorted((ROOT / "bitfab").rglob("*.py"))
        if module_name(f, ROOT) != TOP_INIT and layer_of(module_name(f, ROOT)) is None
    ]
    assert unplaced == [], f"modules outside every layer (add them to LAYERS): {unplaced}"


def test_no_upward_or_private_imports():
    bad = violations(ROOT)
    assert bad == [], "import rule broken (see docs/architecture.md):\n" + "\n".join(bad)


def test_bench_does_not_import_tests():
    bad = []
    for f in sorted((ROOT / "bench").rglob("*.py")):
        for line, src, _ in imports_of(f, module_name(f, ROOT)):
            if src == "tests" or src.startswith("tests."):
                bad.append(f"{f.relative_to(ROOT)}:{line}: imports {src}")
    assert bad == []


def _scratch(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("planted", "expect"),
    [
        # a function-level import of a later layer (sim -> flows), the cycle this rule removed
        (
            "def f():\n    from bitfab.flows.build import build\n",
            "imports bitfab.flows.build (later layer bitfab.flows)",
        ),
        ("import bitfab.cli\n", "imports bitfab.cli (later layer bitfab.cli"),
        ("from ..flows import build\n", "imports bitfab.flows.build (later layer"),
        ("from bitfab.fpga.yosys import _helper\n", "imports private name _helper"),
        ("import bitfab.fpga.yosys as y\nx = y._helper\n", "reads private name _helper"),
    ],
)
def test_checker_catches_a_planted_violation(tmp_path, planted, expect):
    root = _scratch(
        tmp_path,
        {
            "bitfab/__init__.py": "",
            "bitfab/sim/__init__.py": "",
            "bitfab/sim/planted.py": planted,
            "bitfab/fpga/__init__.py": "",
            "bitfab/fpga/yosys.py": "def _helper():\n    pass\n",
            "bitfab/flows/__init__.py": "",
            "bitfab/flows/build.py": "def build():\n    pass\n",
            "bitfab/cli/__init__.py": "",
        },
    )
    bad = violations(root)
    assert len(bad) == 1 and expect in bad[0] and "bitfab/sim/planted.py:" in bad[0], bad


def test_checker_accepts_downward_and_same_module_imports(tmp_path):
    root = _scratch(
        tmp_path,
        {
            "bitfab/__init__.py": "def __getattr__(n):\n    from bitfab.flows.build import build\n",
            "bitfab/sim/__init__.py": "",
            "bitfab/sim/ok.py": "from bitfab.fpga.yosys import run\nfrom . import other\n",
            "bitfab/sim/other.py": "_x = 1\ny = _x\n",
            "bitfab/fpga/__init__.py": "",
            "bitfab/fpga/yosys.py": "def run():\n    pass\n",
            "bitfab/flows/__init__.py": "",
            "bitfab/flows/build.py": "from bitfab.sim.ok import run\n",
        },
    )
    assert violations(root) == []
