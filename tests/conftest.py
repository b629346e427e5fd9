"""Shared pytest fixtures: the RTL simulation runner and its build cache."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from bitfab.sim import rtl_runner


@pytest.fixture(scope="session")
def sim_cache_dir() -> Path:
    """Build cache shared by all tests and xdist workers ($BITFAB_SIM_CACHE or ~/.cache)."""
    return rtl_runner.cache_root()


@pytest.fixture(scope="session")
def rtl_run(sim_cache_dir):
    """``rtl_run(design_or_component, cases, backend="verilator") -> SimResult``: build once
    (cached) and replay JSON cases with the generic cocotb testbench."""
    return functools.partial(rtl_runner.run_cases, cache_dir=sim_cache_dir)


@pytest.fixture(scope="session")
def foreign_models(tmp_path_factory) -> dict:
    """Lazily exported foreign (plain-Brevitas) models: ``foreign_models[(name, exporter)] ->
    (Path, torch model)``, exporter ``"legacy"`` (TorchScript) or ``"dynamo"``."""
    from examples import foreign_corpus as fc

    root = tmp_path_factory.mktemp("foreign")

    class _Lazy(dict):
        def __missing__(self, key):
            name, exporter = key
            model = fc.make(name)
            path = fc.export(model, root / f"{name}_{exporter}.onnx", exporter == "dynamo")
            self[key] = (path, model)
            return self[key]

    return _Lazy()
