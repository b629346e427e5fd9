"""Bit-parallel PE array against the numpy reference (Amaranth simulator); the contract's
checks (parameters, ports, every kind combination) are in ``test_contract.py``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitfab.hw.arrays.parallel import BitParallelArray
from bitfab.hw.elaboratable import unused_ok
from tests.hw.arrays.pe_cases import make_case, params_strategy, run_case

ARRAY = "parallel"
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@settings(max_examples=40, deadline=None)
@given(params=params_strategy(), seed=st.integers(0, 2**32 - 1))
def test_random_cases_with_backpressure(params, seed):
    rng = np.random.default_rng(seed)
    case = make_case(ARRAY, params, rng)
    gap, stall = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
    run = run_case(case, seed=seed, gap=gap, stall=stall)
    assert run.outputs["o"] == case.expected["o"], case.name


@pytest.mark.parametrize("wbits,abits,kinds", [(1, 1, "bb"), (8, 8, "ss"), (2, 4, "su")])
def test_steady_state_one_fold_per_cycle(wbits, abits, kinds):
    kind = {"b": "bipolar", "s": "signed", "u": "unsigned"}
    params = dict(pe=2, simd=8, wbits=wbits, abits=abits, wkind=kind[kinds[0]])
    params["akind"] = kind[kinds[1]]
    case = make_case(ARRAY, {**params, "folds": [1] * 20 + [4] * 5}, np.random.default_rng(3))
    dut = case.build()
    run = run_case(case, dut=dut)
    assert run.outputs["o"] == case.expected["o"]
    folds = sum(case.meta["folds"])
    assert dut.cycles_per_fold(wbits, abits) == 1
    # all folds back to back, then the pipeline drains: exactly latency extra cycles
    assert folds <= run.cycles <= folds + dut.latency + 1


def test_wide_accumulator_and_many_folds():
    rng = np.random.default_rng(11)
    params = dict(pe=1, simd=3, wbits=8, abits=8, wkind="signed", akind="unsigned")
    case = make_case(ARRAY, {**params, "acc_width": 40, "folds": [40]}, rng)
    assert run_case(case, gap=0.2).outputs["o"] == case.expected["o"]


def test_dsp_variant_matches():
    rng = np.random.default_rng(5)
    params = dict(pe=2, simd=3, wbits=5, abits=5, wkind="signed", akind="signed")
    case = make_case(ARRAY, {**params, "extra": {"dsp": True}, "folds": [2, 1]}, rng)
    dut = case.build()
    ref = BitParallelArray(**params)
    assert dut.dsp and dut.latency == ref.latency + 1
    unused_ok(ref)
    assert run_case(case, gap=0.3, stall=0.3, dut=dut).outputs["o"] == case.expected["o"]
