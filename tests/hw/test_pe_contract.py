"""What all three PE arrays share by contract, checked on each against the numpy reference
(Amaranth simulator): every operand-kind combination, and the output skid buffer under stalls."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hw.pe_cases import KINDS, force_skid, make_case, params_strategy, run_case

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

# Per array: (SIMD, weight bits, activation bits) for the non-bipolar operands of the kind test.
KIND_SHAPES = {"bitparallel": (5, 4, 3), "bitserial": (5, 3, 2), "bitfusion": (4, 5, 4)}
ARRAYS = list(KIND_SHAPES)


@pytest.mark.parametrize("array", ARRAYS)
@pytest.mark.parametrize("wkind,akind", list(itertools.product(KINDS, KINDS)))
def test_every_kind_combination(array, wkind, akind):
    simd, wb, ab = KIND_SHAPES[array]
    wbits = 1 if wkind == "bipolar" else wb
    abits = 1 if akind == "bipolar" else ab
    params = dict(pe=2, simd=simd, wbits=wbits, abits=abits, wkind=wkind, akind=akind)
    case = make_case(array, {**params, "folds": [1, 3, 2]}, np.random.default_rng(7))
    run = run_case(case, seed=1, gap=0.3, stall=0.3)
    assert run.outputs["o"] == case.expected["o"], case.name


@pytest.mark.parametrize("array", ARRAYS)
@settings(max_examples=15, deadline=None)
@given(params=params_strategy(widths=(1, 2, 4, 8), max_simd=4), seed=st.integers(0, 2**32 - 1))
def test_random_cases_with_skid_buffer(array, params, seed):
    """Random cases with the registered-``adv`` output skid buffer (used by large arrays)."""
    rng = np.random.default_rng(seed)
    case = make_case(array, params, rng)
    with force_skid():
        dut = case.build()
        run = run_case(
            case, seed=seed, gap=rng.uniform(0, 0.5), stall=rng.uniform(0.2, 0.7), dut=dut
        )
    assert run.outputs["o"] == case.expected["o"], case.name
