"""The free-running Verilog harness (bitfab.sim.fast_harness + run_fast): same results and
cycle counts as the cocotb-driven streams, mismatches and timeouts reported precisely."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest
from sim_toys import LaneAdder, SlowIncrement, lane_adder_ref

from bitfab.sim import rtl_runner
from bitfab.sim.fast_harness import harness_verilog
from bitfab.sim.verilog import component_to_verilog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for the hw package)
from hw.arrays import pe_cases  # noqa: E402

from tests.hw.layers import cases as layer_cases  # noqa: E402


@functools.cache
def _lane_adder():
    """LaneAdder(lanes=4, width=8) as Verilog, converted once per test process."""
    return component_to_verilog(LaneAdder())


def _lane_case(n: int, k: int, seed: int = 0) -> dict:
    words = [int(w) for w in np.random.default_rng(seed).integers(0, 1 << 32, n, dtype=np.uint64)]
    return {
        "name": f"k{k}",
        "setup": {"k": k},
        "inputs": {"i": words},
        "expected": {"o": lane_adder_ref(words, k, 4, 8)},
    }


@pytest.mark.verilator
def test_fast_matches_cocotb_driven_cycles(sim_cache_dir):
    case = _lane_case(3000, 9)
    fast = rtl_runner.run_fast(_lane_adder(), case, cache_dir=sim_cache_dir)
    slow = rtl_runner.run_cases(
        _lane_adder(), [rtl_runner.case_dict(case)], cache_dir=sim_cache_dir
    )
    assert fast.passed and slow.passed, (fast.message, slow.message)
    assert fast.cycles == slow.cycles  # no gaps/stalls: both count the same clock edges
    stalled = rtl_runner.run_fast(_lane_adder(), case, gap=0.5, stall=0.5, cache_dir=sim_cache_dir)
    assert stalled.passed, stalled.message
    assert stalled.cycles > 1.5 * fast.cycles


@pytest.mark.verilator
def test_fast_reports_first_bad_word_timeout_and_untaken_input(sim_cache_dir):
    case = _lane_case(600, 3, seed=1)
    true_word = case["expected"]["o"][77]
    case["expected"]["o"][77] ^= 1 << 33
    case["expected"]["o"][300] ^= 1
    res = rtl_runner.run_fast(_lane_adder(), case, gap=0.2, stall=0.2, cache_dir=sim_cache_dir)
    assert not res.passed
    assert "stream 'o' word 77 of 600" in res.message
    assert f"expected {case['expected']['o'][77]} " in res.message
    assert f"got {true_word} " in res.message
    short = _lane_case(600, 3, seed=1)
    short["expected"]["o"] = short["expected"]["o"][:500]
    res = rtl_runner.run_fast(_lane_adder(), short, cache_dir=sim_cache_dir)
    assert not res.passed and "never taken" in res.message
    long = _lane_case(600, 3, seed=1)
    long["expected"]["o"].append(0)
    res = rtl_runner.run_fast(_lane_adder(), long, max_cycles=2000, cache_dir=sim_cache_dir)
    assert not res.passed and "TimeoutError" in res.message and "o: 600/601 words" in res.message


def test_fast_on_icarus(sim_cache_dir):
    rng = np.random.default_rng(4)
    words = [int(w) for w in rng.integers(0, 256, 200)]
    case = {
        "setup": {"k": 3},
        "inputs": {"i": words},
        "expected": {"o": [(w + 1) & 0xFF for w in words]},
    }
    res = rtl_runner.run_fast(
        SlowIncrement(), case, "icarus", gap=0.3, stall=0.3, cache_dir=sim_cache_dir
    )
    assert res.passed, res.message
    assert res.cycles >= len(words) * 5
    case["expected"]["o"][150] ^= 0x10
    res = rtl_runner.run_fast(SlowIncrement(), case, "icarus", cache_dir=sim_cache_dir)
    assert not res.passed and "word 150 of 200" in res.message


@pytest.mark.verilator
def test_fast_on_bitserial_array_and_mvau(sim_cache_dir):
    rng = np.random.default_rng(21)
    params = dict(pe=2, simd=3, wbits=4, abits=4, wkind="signed", akind="unsigned")
    case = pe_cases.make_case("bitserial", {**params, "folds": [3] * 100}, rng)
    mvau = layer_cases.make_case(
        "MVAU",
        dict(
            MW=8,
            MH=4,
            PE=2,
            SIMD=4,
            input_kind="unsigned",
            input_bits=4,
            weight_kind="signed",
            weight_bits=4,
            numSteps=3,
            numInputVectors=[200],
            array="bitserial",
        ),
        rng,
    )
    arr_v, mvau_v = component_to_verilog(case.build()), component_to_verilog(mvau.build())
    for gap, stall in [(0.0, 0.0), (0.4, 0.4)]:
        res = rtl_runner.run_fast(arr_v, case, gap=gap, stall=stall, cache_dir=sim_cache_dir)
        assert res.passed, res.message
        assert res.cycles >= case.meta["ideal_cycles"]
        res = rtl_runner.run_fast(mvau_v, mvau, gap=gap, stall=stall, cache_dir=sim_cache_dir)
        assert res.passed, res.message


def test_harness_needs_every_stream():
    design = component_to_verilog(LaneAdder(lanes=1, width=2))
    with pytest.raises(ValueError, match="missing"):
        rtl_runner.run_fast(design, {"inputs": {"i": [1]}}, "icarus")
    text = harness_verilog(design.ports, {"i": 1024, "o": 1024})
    assert "module bitfab_tb" in text and ".i__payload(pay_i)" in text
