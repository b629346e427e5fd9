"""The explore report's plot helpers: ticks a reader can use, and coincident points kept apart."""

from __future__ import annotations

import math

from bitfab.flows.explore.report import _Axis, _spread, scatter_svg


def test_log_axis_within_a_decade_has_intermediate_ticks():
    ticks = [v for v, _ in _Axis(1500, 8000, True, 0, 100).ticks()]
    assert ticks == [1000, 2000, 5000, 10000]
    wide = [v for v, _ in _Axis(10, 2e6, True, 0, 100).ticks()]
    assert wide == [10.0**e for e in range(1, 8)]


def test_accuracy_axis_is_labelled_in_percent():
    labels = [lab for _, lab in _Axis(0.62, 0.81, False, 0, 100, percent=True).ticks()]
    assert labels and all(lab.endswith(" %") for lab in labels), labels
    assert "70 %" in labels


def test_coincident_points_are_spread_apart():
    pos = _spread([(100.0, 50.0), (100.5, 50.4), (100.2, 49.8), (300.0, 20.0)])
    assert pos[3] == (300.0, 20.0)
    first3 = pos[:3]
    for i in range(3):
        for j in range(i + 1, 3):
            assert math.dist(first3[i], first3[j]) > 8  # markers are 9-11 px wide


def _rec(name, array, ips, acc, status="ok", front=False, reason=None):
    return {"name": name, "status": status, "reason": reason, "images_per_s": ips,
            "accuracy": acc, "lut": 1000, "source": "estimate", "pareto_acc_ips": front,
            "point": {"model": "tfc", "array": array, "board": "icebreaker"}}  # fmt: skip


def test_front_points_are_named_drawn_last_and_failed_ones_hollow():
    recs = [
        _rec("a", "parallel", 1000.0, 0.7, front=True),
        _rec("b", "bitserial", 1000.0, 0.7),  # same spot as the front point
        _rec("c", "bitfusion", 3000.0, 0.6, status="failed", reason="timing not met"),
    ]
    svg = scatter_svg(recs, "images_per_s", "accuracy", xlabel="x", ylabel="y", xlog=True,
                      ylog=False, front_key="pareto_acc_ips", title="t", models=["tfc"])  # fmt: skip
    assert svg.index('data-name="b"') < svg.index('data-name="a"')  # the front is on top
    assert svg.count('class="lbl"') == 1 and ">a</text>" in svg
    assert 'class="pt-nofit"' in svg and "c: timing not met" in svg
