"""bitfab explore: sweep spec and bad input, a small estimate sweep (local pool and Ray),
resume from the point cache, the model cache, Pareto fronts, the HTML report in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bitfab.cli import main
from bitfab.flows.explore.pareto import front
from bitfab.flows.explore.spec import load_sweep_toml, make_spec

#: tfc W1A1 on the 8x8 digits (300 training images, 1 epoch): bit-serial and bit-fusion arrays
#: on the iCEBreaker and the ULX3S-25F; --max-luts 6000 keeps the ULX3S designs small (quick to
#: compile). Whether a point fits is the fit model's call (bitfab.flows.build): the tests accept
#: either outcome per point but check both (figures, or a recorded reason).
SWEEP = ["--model", "tfc", "--wbits", "1", "--array", "bitserial,bitfusion",
         "--board", "icebreaker,ulx3s-25f", "--epochs", "1", "--limit", "300",
         "--dataset", "digits", "--max-luts", "6000"]  # fmt: skip
VOLATILE = ("seconds", "cached")


def _explore(out: Path, cache: Path, *extra: str) -> dict:
    rc = main(["explore", *SWEEP, "--out", str(out), "--cache", str(cache), "--quiet", *extra])
    assert rc == 0
    return json.loads((out / "results.json").read_text())


def _stable(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("explore")
    cache = base / "cache"
    res = _explore(base / "local", cache, "--jobs", "2")
    return base, cache, res


# --- bad input: one line, exit 2, before any work -----------------------------------------------


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--board", "nosuchboard"], "--board 'nosuchboard'"),
        (["--board", "up5k"], "--board 'up5k'"),  # a bare device: no board top
        (["--array", "systolic"], "--array 'systolic'"),
        (["--model", "resnet50"], "--model 'resnet50'"),
        (["--wbits", ","], "empty list"),
        (["--wbits", "9"], "--wbits 9"),
        (["--jobs", "0"], "--jobs 0"),
        (["--max-luts", "0"], "--max-luts 0"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, capsys, flags, needle):
    out = tmp_path / "out"
    rc = main(["explore", "--out", str(out), "--cache", str(tmp_path / "c"), "--quiet", *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err
    assert not out.exists() and not (tmp_path / "c").exists()


def test_sweep_toml_equals_flags(tmp_path):
    f = tmp_path / "sweep.toml"
    f.write_text(
        '[sweep]\nmodel = ["tfc", "cnv-s"]\nwbits = [1, 2, 4]\narray = "bitserial,parallel"\n'
        'board = ["icebreaker", "ULX3S_85F"]\nepochs = 2\nlimit = 100\n'
    )
    from_toml = make_spec(load_sweep_toml(f))
    from_flags = make_spec(
        {
            "model": "tfc,cnv-s",
            "wbits": "1,2,4",
            "array": "bitserial,parallel",
            "board": "icebreaker,ulx3s-85f",
            "epochs": 2,
            "limit": 100,
        }  # fmt: skip
    )
    assert from_toml == from_flags
    pts = from_toml.points()
    assert len(pts) == 2 * 3 * 2 * 2
    assert len({p.name for p in pts}) == len(pts)
    assert {(p.wbits, p.abits) for p in pts} == {(1, 1), (2, 2), (4, 4)}
    assert len(make_spec({"wbits": "1,2", "abits": "1,2,4"}).points()) == 6  # every pair
    f.write_text('model = "tfc"\nwbitz = 3\n')
    with pytest.raises(Exception, match="unknown key"):
        load_sweep_toml(f)


def test_pareto_front_against_numpy_dominance():
    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(1, 30))
        # few distinct values: ties and equal points happen
        acc, ips, lut = (rng.integers(0, 6, n) for _ in range(3))
        recs = [
            {
                "name": str(i),
                "status": "ok" if rng.random() > 0.15 else "failed",
                "accuracy": float(acc[i]),
                "images_per_s": float(ips[i]),
                "lut": int(lut[i]),
                "point": {"board": "b"},
            }  # fmt: skip
            for i in range(n)
        ]
        ok = np.array([r["status"] == "ok" for r in recs])
        v = np.stack([acc, ips, -lut], axis=1)  # all maximised
        ge = (v[:, None, :] >= v[None, :, :]).all(-1)
        gt = (v[:, None, :] > v[None, :, :]).any(-1)
        dom = ge & gt & ok[:, None] & ok[None, :]  # dom[j, i]: j dominates i
        want = [i for i in range(n) if ok[i] and not dom[:, i].any()]
        assert front(recs) == want, trial


# --- a small sweep --------------------------------------------------------------------------------


def test_local_sweep_records(local_run):
    base, cache, res = local_run
    out = base / "local"
    recs = res["points"]
    assert [r["name"] for r in recs] == [p.name for p in make_spec(
        {"model": "tfc", "wbits": "1", "array": "bitserial,bitfusion",
         "board": "icebreaker,ulx3s-25f"}).points()]  # fmt: skip
    metrics = json.loads((Path(res["models"][0]["path"]).parent / "metrics.json").read_text())
    for r in recs:
        assert r["accuracy"] == metrics["test_accuracy"]
        if r["status"] != "ok":  # recorded with its reason, the sweep went on
            assert r["stage"] == "estimate" and r["reason"] and r["images_per_s"] is None
            continue
        assert r["source"] == "estimate"
        acc = json.loads((out / "points" / r["name"] / "estimate" / "accelerator.json").read_text())
        cycles = max(ly["cycles"] for ly in acc["layers"])
        assert r["cycles_per_image"] == cycles
        assert r["images_per_s"] == pytest.approx(r["clock_mhz"] * 1e6 / cycles, abs=0.006)
        assert r["images_per_s_per_lut"] == pytest.approx(r["images_per_s"] / r["lut"], rel=1e-3)
        assert acc["luts"] < r["lut"] <= 6000  # board top around the accelerator, within the cap
        assert r["clock_mhz"] == (50.0 if r["point"]["board"] == "ulx3s-25f" else 12.0)
        assert [ly["cycles"] for ly in r["estimate"]["layers"]] == [
            ly["cycles"] for ly in acc["layers"]
        ]
    assert any(r["status"] == "ok" and r["point"]["board"] == "ulx3s-25f" for r in recs)
    c = res["counts"]
    assert (c["points"], c["synthesized"], c["cached"]) == (4, 0, 0)
    assert c["ok"] == sum(r["status"] == "ok" for r in recs)
    for board, names in res["pareto"].items():
        ok = [r for r in recs if r["point"]["board"] == board and r["status"] == "ok"]
        assert set(names) == {ok[i]["name"] for i in front(ok)}
    # CSV: one row per point, same figures
    import csv

    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["name"] for r in rows] == [r["name"] for r in recs]
    for row, r in zip(rows, recs, strict=True):
        assert row["status"] == r["status"]
        assert row["images_per_s"] == ("" if r["images_per_s"] is None else str(r["images_per_s"]))


def test_point_that_does_not_fit_is_recorded(tmp_path):
    """sfc W1A1 needs ~335 kbit of weights: beyond the UP5K's block RAM (and LUT ROM) even at
    PE = SIMD = 1, so its iCEBreaker point fails with the fit's reason; the sweep finishes."""
    out = tmp_path / "o"
    rc = main(["explore", "--model", "sfc", "--wbits", "1", "--array", "bitserial",
               "--board", "icebreaker", "--epochs", "1", "--limit", "100", "--dataset", "digits",
               "--out", str(out), "--cache", str(tmp_path / "c"), "--quiet"])  # fmt: skip
    assert rc == 0
    (r,) = json.loads((out / "results.json").read_text())["points"]
    assert r["status"] == "failed" and r["stage"] == "estimate"
    assert "does not fit icebreaker" in r["reason"] and "block RAM" in r["reason"]
    assert "does not fit icebreaker" in (out / "report.html").read_text()
    assert "does not fit icebreaker" in (out / "results.csv").read_text()


def test_resume_and_model_cache(local_run):
    base, cache, res = local_run
    out = base / "resume"
    shutil.copytree(base / "local", out)
    again = _explore(out, cache, "--jobs", "1")
    assert again["models"][0]["cached"] is True
    assert again["counts"]["cached"] == 4  # nothing recomputed
    assert [_stable(r) for r in again["points"]] == [_stable(r) for r in res["points"]]
    # an interrupted sweep: one point's results missing -> only that point runs again
    victim = res["points"][3]["name"]
    (out / "points" / victim / "estimate.json").unlink()
    shutil.rmtree(out / "points" / victim / "estimate", ignore_errors=True)
    third = _explore(out, cache, "--jobs", "1")
    cached = {r["name"]: r["cached"] for r in third["points"]}
    assert cached == {r["name"]: r["name"] != victim for r in res["points"]}
    assert [_stable(r) for r in third["points"]] == [_stable(r) for r in res["points"]]


def test_ray_cluster_matches_local_pool(local_run, tmp_path):
    ray = pytest.importorskip("ray")
    base, cache, res = local_run
    tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths
    try:
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=tmp, logging_level="ERROR",
                 object_store_memory=80 * 1024 * 1024)  # fmt: skip
        address = ray.get_runtime_context().gcs_address
        out = tmp_path / "ray"
        cmd = [sys.executable, "-m", "bitfab", "explore", *SWEEP, "--out", str(out),
               "--cache", str(cache), "--quiet", "--ray", address]  # fmt: skip
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        assert p.returncode == 0, p.stderr[-2000:]
        got = json.loads((out / "results.json").read_text())
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    assert got["executor"].startswith(f"Ray cluster {address}")
    assert got["counts"]["cached"] == 0  # computed on the cluster, not read back
    assert [_stable(r) for r in got["points"]] == [_stable(r) for r in res["points"]]
    assert got["pareto"] == res["pareto"]


# --- the report in headless Chromium ------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
         "--window-size=1400,1000"]  # fmt: skip


def _render(page: Path, tmp: Path) -> tuple[str, list[str]]:
    """(DOM after the scripts ran, the console lines Chromium logged)."""
    ud = Path(tempfile.mkdtemp(prefix="chr", dir=tmp))
    p = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={ud}", page.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, [ln for ln in p.stderr.splitlines() if ":CONSOLE" in ln]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian chromium not installed")
def test_report_renders_in_chromium(local_run, tmp_path):
    base, _, res = local_run
    page = base / "local" / "report.html"
    text = page.read_text()
    assert "<link" not in text and " src=" not in text and "https://" not in text
    # the detector sees console errors and exceptions (a control page)
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('x'); nope();</script></body></html>")
    assert len(_render(bad, tmp_path)[1]) == 2
    dom, console = _render(page, tmp_path)
    assert console == []
    assert 'data-ready="1"' in dom  # the inline script ran to its end
    boards = {r["point"]["board"] for r in res["points"]}
    assert dom.count('<svg class="plot"') == 2 * len(boards)
    ok = [r for r in res["points"] if r["status"] == "ok"]
    assert dom.count('class="pt-front"') + dom.count('class="pt-dot"') == 2 * len(ok)
    table = dom[dom.index('id="points"') : dom.index("</table>", dom.index('id="points"'))]
    assert table.count("<tr") == 1 + len(res["points"])
    for r in res["points"]:
        assert r["name"] in table
    assert 'data-sortable-tables="' in dom
    # readable at a 1,400 px window: plots about half the page each, Pareto points named, the
    # table scrolls inside its box instead of widening the page
    import re

    widths = [int(w) for w in re.search(r'data-plot-widths="([\d,]*)"', dom).group(1).split(",")]
    assert len(widths) == 2 * len(boards) and min(widths) >= 600, widths
    assert dom.count('class="lbl"') == dom.count('class="pt-front"')
    assert 'data-table-fits="true"' in dom


# --- a built point (slow: RTL verification, Yosys, nextpnr) ---------------------------------------


@pytest.mark.slow
def test_synth_point_matches_build_report(local_run, tmp_path):
    base, cache, _ = local_run
    out = tmp_path / "synth"
    rc = main(["explore", "--model", "tfc", "--wbits", "1", "--array", "bitserial",
               "--board", "ulx3s-25f", "--epochs", "1", "--limit", "300", "--dataset", "digits",
               "--max-luts", "6000", "--synth", "--verify-images", "20",
               "--out", str(out),
               "--cache", str(cache), "--quiet"])  # fmt: skip
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    (r,) = res["points"]
    assert r["synth"] is not None, r["reason"]
    build = json.loads((out / r["synth"]["report"]).read_text())
    assert r["lut"] == build["resources"]["LUT"]["used"]
    assert r["ff"] == build["resources"]["FF"]["used"]
    assert r["fmax_mhz"] == build["fmax_mhz"]
    assert r["images_per_s"] == build["images_per_s"]
    assert build["verification"]["mismatches"] == 0
    assert (out / r["synth"]["bitstream"]).is_file()
    est = r["estimate"]
    assert r["estimate_error"]["lut"] == pytest.approx((est["lut"] - r["lut"]) / r["lut"], abs=1e-4)
    assert res["estimate_error"]["lut"]["points"] == 1
    assert r["status"] == ("ok" if build["timing_met"] else "failed")
