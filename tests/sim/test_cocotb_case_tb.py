"""The generic cocotb case testbench on Verilator: passes on correct expectations, fails with a
clear message on a wrong word, a missing word or an input the DUT never took."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from sim_toys import DotAcc, LaneAdder, SlowIncrement, dot_acc_case, lane_adder_ref

from bitfab.sim.rtl_runner import case_dict
from bitfab.sim.verilog import component_to_verilog

pytestmark = pytest.mark.verilator


@functools.cache
def _lane_adder():
    """LaneAdder(lanes=4, width=8) as Verilog, converted once per test process."""
    return component_to_verilog(LaneAdder())


def _lane_case(words, k, gap=0.0, stall=0.0, seed=0, **kw):
    return case_dict(
        {
            "setup": {"k": k},
            "inputs": {"i": words},
            "expected": {"o": lane_adder_ref(words, k, 4, 8)},
        },
        name=f"k{k}-g{gap}-s{stall}",
        gap=gap,
        stall=stall,
        seed=seed,
        **kw,
    )


@pytest.fixture(scope="module")
def words():
    return [int(w) for w in np.random.default_rng(11).integers(0, 1 << 32, 400, dtype=np.uint64)]


def test_lane_adder_with_stalls(rtl_run, words):
    cases = [
        _lane_case(words, 0),
        _lane_case(words, 200, gap=0.5, seed=1),
        _lane_case(words, 255, stall=0.5, seed=2),
        _lane_case(words, 77, gap=0.3, stall=0.7, seed=3),
    ]
    res = rtl_run(_lane_adder(), cases)
    assert res.passed, res.message
    cyc = [c["cycles"] for c in res.cases]
    # free-flowing: one word per cycle plus the FIFO latency; stalls on either side cost cycles
    assert len(words) <= cyc[0] <= len(words) + 4
    assert min(cyc[1:]) > 1.3 * len(words)
    assert cyc[3] > cyc[1] and cyc[3] > cyc[2]


def test_wrong_expectation_fails_at_first_bad_word(rtl_run, words):
    good = _lane_case(words, 5, gap=0.2, stall=0.2, seed=4)
    bad = _lane_case(words, 5, gap=0.2, stall=0.2, seed=4)
    true_word = bad["expected"]["o"][123]
    bad["expected"]["o"][123] ^= 1 << 30
    bad["expected"]["o"][200] ^= 1  # a later mismatch must not be the one reported
    res = rtl_run(_lane_adder(), [good, bad])
    assert not res.passed
    assert "case 'k5-g0.2-s0.2'" in res.message and "stream 'o' word 123 of 400" in res.message
    assert f"expected {bad['expected']['o'][123]} " in res.message
    assert f"got {true_word} " in res.message
    assert [c["name"] for c in res.cases] == [good["name"]]  # the first case passed


def test_missing_output_times_out(rtl_run, words):
    case = _lane_case(words[:20], 1, max_cycles=500)
    case["expected"]["o"].append(0)
    res = rtl_run(_lane_adder(), [case])
    assert not res.passed and "TimeoutError" in res.message and "o: 20/21 words" in res.message


def test_input_never_taken_fails(rtl_run, words):
    case = _lane_case(words[:30], 2)
    del case["expected"]["o"][-5:]  # expect fewer outputs than the inputs produce
    res = rtl_run(_lane_adder(), [case])
    assert not res.passed and "never taken" in res.message


def test_struct_payload_dot_product(rtl_run):
    rng = np.random.default_rng(3)
    cases = []
    for seed, (gap, stall) in enumerate([(0, 0), (0.4, 0.4), (0.8, 0.1)]):
        inp, exp = dot_acc_case(rng, 150, 4, 12)
        cases.append(
            case_dict(
                {"inputs": {"i": inp}, "expected": {"o": exp}},
                name=f"dot{seed}",
                gap=gap,
                stall=stall,
                seed=seed,
            )
        )
    res = rtl_run(DotAcc(4, 12), cases)
    assert res.passed, res.message
    assert res.cycles >= sum(len(c["inputs"]["i"]) for c in cases)


def test_skipping_idle_cycles_keeps_cycle_counts(rtl_run):
    rng = np.random.default_rng(8)
    words = [int(w) for w in rng.integers(0, 256, 300)]
    exp = [(w + 1) & 0xFF for w in words]
    cases = [
        case_dict(
            {"setup": {"k": k}, "inputs": {"i": words}, "expected": {"o": exp}},
            name=f"k{k}-skip{skip}-g{g}",
            gap=g,
            stall=g,
            seed=k,
            skip_idle=skip,
        )
        for k in (0, 5, 40)
        for g in (0.0, 0.5)
        for skip in (False, True)
    ]
    res = rtl_run(SlowIncrement(), cases)
    assert res.passed, res.message
    cyc = {c["name"]: c["cycles"] for c in res.cases}
    for k in (0, 5, 40):
        # no gaps/stalls: the run is deterministic, so sleeping must not change the count
        assert cyc[f"k{k}-skipTrue-g0.0"] == cyc[f"k{k}-skipFalse-g0.0"]
        assert cyc[f"k{k}-skipTrue-g0.0"] >= len(words) * (k + 2)
        assert cyc[f"k{k}-skipTrue-g0.5"] > cyc[f"k{k}-skipTrue-g0.0"]
