"""Bit-fusion PE array against the numpy reference (Amaranth simulator); the contract's
checks (parameters, ports, every kind combination) are in ``test_contract.py``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bitfab.hw.arrays.bitfusion import BitFusionArray
from bitfab.hw.elaboratable import unused_ok
from tests.hw.arrays.pe_cases import make_case, params_strategy, run_case

ARRAY = "bitfusion"
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@settings(max_examples=40, deadline=None)
@given(
    params=params_strategy(widths=(1, 2, 3, 4, 6, 8), max_pe=2, max_simd=4),
    brick_scale=st.one_of(st.none(), st.integers(1, 2)),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_cases_with_backpressure(params, brick_scale, seed):
    """Random shapes, kinds, widths, run-time fusion modes, brick budgets, folds, data."""
    rng = np.random.default_rng(seed)
    if brick_scale is not None:  # from 1 product per cycle at full precision upwards
        per = -(-params["wbits"] // 2) * -(-params["abits"] // 2)
        params = {**params, "extra": {"bricks": per * brick_scale + int(rng.integers(0, per))}}
    case = make_case(ARRAY, params, rng)
    gap, stall = rng.uniform(0, 0.6), rng.uniform(0, 0.6)
    run = run_case(case, seed=seed, gap=gap, stall=stall)
    assert run.outputs["o"] == case.expected["o"], (case.name, case.kwargs)


@pytest.mark.parametrize(
    "wbits,abits,wrt,art,bricks",
    [
        (8, 8, 8, 8, 16),  # one 8x8 product per cycle: simd cycles per fold
        (8, 8, 4, 4, 16),  # 4-bit fusion: 4 products per cycle
        (8, 8, 2, 1, 16),  # 2-bit fusion: 16 products per cycle
        (4, 2, 3, 2, 5),
        (2, 2, 2, 2, None),  # default bricks: one fold per cycle
        (1, 1, 1, 1, 3),
    ],
)
def test_steady_state_cycles_per_fold(wbits, abits, wrt, art, bricks):
    params = dict(pe=2, simd=6, wbits=wbits, abits=abits, wkind="signed", akind="unsigned")
    params.update(wbits_rt=wrt, abits_rt=art, folds=[1] * 6 + [3] * 2)
    params["extra"] = {"bricks": bricks} if bricks else {}
    case = make_case(ARRAY, params, np.random.default_rng(3))
    dut = case.build()
    run = run_case(case, dut=dut)
    assert run.outputs["o"] == case.expected["o"]
    assert dut.cycles_per_fold(wrt, art) == case.meta["cycles_per_fold"]
    ideal = case.meta["ideal_cycles"]
    assert ideal <= run.cycles <= ideal + dut.latency + 1


@pytest.mark.parametrize(
    "wkind,wbits,akind,abits,bricks",
    [
        ("bipolar", 1, "bipolar", 1, 3),
        ("bipolar", 1, "unsigned", 3, 5),
        ("signed", 4, "bipolar", 1, 7),
    ],
)
def test_idle_bricks_contribute_nothing(wkind, wbits, akind, abits, bricks):
    """simd not a multiple of the products per cycle: the last cycle leaves bricks idle (with
    bipolar operands an all-zero brick input would be (-1)*(-1), not 0)."""
    params = dict(pe=2, simd=5, wbits=wbits, abits=abits, wkind=wkind, akind=akind)
    params.update(folds=[3, 1, 2], extra={"bricks": bricks})
    case = make_case(ARRAY, params, np.random.default_rng(21))
    assert run_case(case, gap=0.2, stall=0.2).outputs["o"] == case.expected["o"]


def test_lower_precision_is_faster_with_the_same_bricks():
    dut = BitFusionArray(1, 16, 8, 8, "signed", "signed", bricks=16)
    assert [dut.cycles_per_fold(b, b) for b in (8, 4, 2)] == [16, 4, 1]
    assert dut.products_per_cycle(6, 2) == 16 // 3


@pytest.mark.parametrize("bricks", [3, 0, -1, 2.5, True, "16"])
def test_bad_brick_budget_raises(bricks):
    """4x4-bit products need ceil(4/2)*ceil(4/2) = 4 bricks (the contract's own checks are in
    ``test_contract.py``)."""
    base = dict(pe=2, simd=4, wbits=4, abits=4, wkind="signed", akind="unsigned")
    with pytest.raises(ValueError, match="bricks"):
        BitFusionArray(**base, bricks=bricks)


def test_minimal_brick_budget_is_accepted():
    dut = BitFusionArray(2, 4, 4, 4, "signed", "unsigned", bricks=4)
    unused_ok(dut)
    assert dut.bricks == 4 and dut.cycles_per_fold() == 4 and dut.cycles_per_fold(2, 2) == 1
