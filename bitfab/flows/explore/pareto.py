"""Pareto fronts of a sweep and the estimate-vs-synthesis error.

Objectives (per board, over the points with ``status == "ok"``): test accuracy (higher is
better), images per second (higher) and LUTs (logic cells, lower). A point is on the front when
no other point of its board is at least as good in every objective and better in one.
"""

from __future__ import annotations

from collections.abc import Sequence

#: (record field, +1 = maximise / -1 = minimise)
OBJECTIVES_3D = (("accuracy", 1), ("images_per_s", 1), ("lut", -1))


def _ok(rec: dict, objectives: Sequence[tuple[str, int]]) -> bool:
    return rec.get("status") == "ok" and all(rec.get(k) is not None for k, _ in objectives)


def dominates(a: dict, b: dict, objectives: Sequence[tuple[str, int]]) -> bool:
    """True if ``a`` is at least as good as ``b`` in every objective and better in one."""
    ge = all(s * a[k] >= s * b[k] for k, s in objectives)
    gt = any(s * a[k] > s * b[k] for k, s in objectives)
    return ge and gt


def front(
    records: Sequence[dict], objectives: Sequence[tuple[str, int]] = OBJECTIVES_3D
) -> list[int]:
    """Indices (into ``records``) of the non-dominated ok points (all boards together: call
    it per board). Equal points are all kept."""
    idx = [i for i, r in enumerate(records) if _ok(r, objectives)]
    return [
        i
        for i in idx
        if not any(dominates(records[j], records[i], objectives) for j in idx if j != i)
    ]


def fronts_by_board(
    records: Sequence[dict], objectives: Sequence[tuple[str, int]] = OBJECTIVES_3D
) -> dict[str, list[str]]:
    """``{board: [point names on its front]}`` (boards in first-seen order)."""
    boards = list(dict.fromkeys(r["point"]["board"] for r in records))
    out = {}
    for b in boards:
        sub = [r for r in records if r["point"]["board"] == b]
        out[b] = [sub[i]["name"] for i in front(sub, objectives)]
    return out


def mark_pareto(records: list[dict]) -> dict[str, list[str]]:
    """Set ``pareto`` (3 objectives), ``pareto_acc_ips`` and ``pareto_ips_lut`` (the 2-D fronts
    the report plots) on every record; returns the 3-objective fronts by board."""
    f3 = fronts_by_board(records)
    f_ai = fronts_by_board(records, (("accuracy", 1), ("images_per_s", 1)))
    f_il = fronts_by_board(records, (("images_per_s", 1), ("lut", -1)))
    on3 = {n for v in f3.values() for n in v}
    on_ai = {n for v in f_ai.values() for n in v}
    on_il = {n for v in f_il.values() for n in v}
    for r in records:
        r["pareto"] = r["name"] in on3
        r["pareto_acc_ips"] = r["name"] in on_ai
        r["pareto_ips_lut"] = r["name"] in on_il
    return f3


def estimate_errors(records: Sequence[dict]) -> dict:
    """Over the points with both an estimate and a build: per metric (lut, bram,
    cycles_per_image, images_per_s) the points, the mean absolute and the largest relative
    error ``(estimate - measured) / measured``."""
    out = {}
    for k in ("lut", "bram", "cycles_per_image", "images_per_s"):
        errs = [
            (r["name"], r["estimate_error"][k])
            for r in records
            if r.get("estimate_error") and r["estimate_error"].get(k) is not None
        ]
        if not errs:
            out[k] = {"points": 0, "mean_abs": None, "max_abs": None, "worst": None}
            continue
        worst = max(errs, key=lambda e: abs(e[1]))
        out[k] = {
            "points": len(errs),
            "mean_abs": round(sum(abs(e) for _, e in errs) / len(errs), 4),
            "max_abs": round(abs(worst[1]), 4),
            "worst": worst[0],
        }
    return out
