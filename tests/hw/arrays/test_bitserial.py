"""Bit-serial PE array against the numpy reference (Amaranth simulator); the contract's
checks (parameters, ports, every kind combination) are in ``test_contract.py``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitfab.hw.arrays.bitserial import BitSerialArray
from tests.hw.arrays.pe_cases import make_case, params_strategy, run_case

ARRAY = "bitserial"
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@settings(max_examples=40, deadline=None)
@given(params=params_strategy(widths=(1, 2, 3, 4, 8), max_simd=4), seed=st.integers(0, 2**32 - 1))
def test_random_cases_with_backpressure(params, seed):
    """Random shapes, kinds, widths, run-time precision below the maximum, folds, data."""
    rng = np.random.default_rng(seed)
    case = make_case(ARRAY, params, rng)
    gap, stall = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
    run = run_case(case, seed=seed, gap=gap, stall=stall)
    assert run.outputs["o"] == case.expected["o"], case.name


@pytest.mark.parametrize(
    "wbits,abits,wrt,art,kinds",
    [(1, 1, 1, 1, "bb"), (4, 4, 4, 4, "ss"), (8, 4, 3, 2, "su"), (2, 8, 2, 1, "us")],
)
def test_steady_state_cycles_per_fold(wbits, abits, wrt, art, kinds):
    kind = {"b": "bipolar", "s": "signed", "u": "unsigned"}
    params = dict(pe=2, simd=4, wbits=wbits, abits=abits, wkind=kind[kinds[0]])
    params.update(akind=kind[kinds[1]], wbits_rt=wrt, abits_rt=art, folds=[1] * 8 + [3] * 3)
    case = make_case(ARRAY, params, np.random.default_rng(3))
    dut = case.build()
    run = run_case(case, dut=dut)
    assert run.outputs["o"] == case.expected["o"]
    assert dut.cycles_per_fold(wrt, art) == wrt * art == case.meta["cycles_per_fold"]
    ideal = case.meta["ideal_cycles"]
    # the next fold is accepted while the last plane pair of the previous one is computed
    assert ideal <= run.cycles <= ideal + dut.latency + 1


def test_precision_change_between_dot_products():
    """The same elaborated array at two run-time precisions (reset between runs)."""
    rng = np.random.default_rng(9)
    base = dict(pe=2, simd=3, wbits=4, abits=4, wkind="signed", akind="unsigned")
    for wrt, art in [(4, 4), (2, 3), (1, 1)]:
        case = make_case(ARRAY, {**base, "wbits_rt": wrt, "abits_rt": art, "folds": [2]}, rng)
        assert run_case(case, gap=0.2, stall=0.2).outputs["o"] == case.expected["o"]


def test_cycles_per_fold_rejects_precision_above_max():
    dut = BitSerialArray(2, 4, 4, 2, "signed", "unsigned")
    assert dut.cycles_per_fold() == 8
    with pytest.raises(ValueError, match="run-time precision"):
        dut.cycles_per_fold(5, 2)
