"""``bitfab doctor``: every part checked on this machine, and a missing part named with its fix."""

from __future__ import annotations

import sys

from bitfab.cli import main
from bitfab.flows.doctor import PACKAGES, check_package, run_checks


def test_this_machine_is_ready(capsys):
    assert main(["doctor", "--no-tools"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].endswith("parts ready")
    assert all(" ok " in line or " warn " in line for line in out[:-1]), out


def test_missing_package_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "finn", None)  # import finn now fails
    what, module, dist, fix = next(p for p in PACKAGES if p[1] == "finn")
    c = check_package(what, module, dist, fix)
    assert (c.status, c.part) == ("missing", "FINN (finn-plus)")
    assert "pip install --no-deps finn-plus==1.6.1" in c.fix


def test_missing_dataset_unwritable_cache_and_bad_port(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BITFAB_FASHION_MNIST", str(tmp_path / "none"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("BITFAB_CACHE", str(blocker / "cache"))
    by_part = {c.part: c for c in run_checks(port=str(tmp_path / "tty"), tools=False)}
    assert by_part["Fashion-MNIST"].status == "warn"
    assert "--dataset digits" in by_part["Fashion-MNIST"].fix
    assert by_part["cache"].status == "missing" and "BITFAB_CACHE" in by_part["cache"].fix
    port = by_part[f"serial port {tmp_path / 'tty'}"]
    assert port.status == "missing" and "dialout" in port.fix
    assert main(["doctor", "--no-tools", "--port", str(tmp_path / "tty")]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    n = len(run_checks(port="x", tools=False))
    assert last.startswith(f"{n - 2}/{n} parts ready; missing: cache, serial port")
