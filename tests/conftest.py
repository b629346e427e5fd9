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
