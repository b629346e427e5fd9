"""``bitfab build``: QONNX -> verified bitstream with a report, fit to the board, step cache.

The model under test is the tiny trained tfc W1A1 shared with the accelerator tests
(``tests/hw/test_compiler.py`` ``tiny_dataflow``: ``bitfab train`` on 300 digits, 1 epoch);
the too-big model is an LFC W1A1 (2.9 Mbit of weights) trained the same way.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bitfab.boards import BOARDS, get_target
from bitfab.errors import BitfabError
from bitfab.flows import build as B
from bitfab.fpga import fit as F
from tests.hw.test_compiler import ROOT, tiny_dataflow

ICE40_SYNC = bytes.fromhex("7eaa997e")


@pytest.fixture(scope="session")
def tiny_model(request) -> Path:
    """``model.onnx`` (QONNX) of the tiny trained tfc W1A1, with its ``metrics.json``."""
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    return df.parents[1] / "train" / "model.onnx"


@pytest.fixture(scope="session")
def lfc_model(request) -> Path:
    """An LFC W1A1 (784-1024-1024-1024-10) trained for 1 epoch on 300 digits (cached)."""
    root = Path(request.config.cache.mkdir("bitfab_build"))
    out = root / "lfc-w1a1-v1"
    with open(root / "lfc.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "model.onnx").exists():
            cmd = [sys.executable, "-m", "bitfab", "train", "--model", "lfc", "--wbits", "1",
                   "--abits", "1", "--epochs", "1", "--limit", "300", "--dataset", "digits",
                   "--out", str(out), "--quiet", "--check-images", "5"]  # fmt: skip
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
    return out / "model.onnx"


# --------------------------------------------------------------------------------------------
# the block RAM model against Yosys's memory_libmap rule, computed independently
# --------------------------------------------------------------------------------------------


def _blocks_reference(family: str, width: int, depth: int, rom: bool) -> int:
    """Enumerate every block configuration the family's RAM offers (bits per block, port
    widths), stacking narrow rows into a wide port word by powers of two, and compare the
    cheapest against soft logic (and ECP5 LUT RAM), the way Yosys's memory_libmap costs them."""
    bits, widths, cost = {"ice40": (4096, (2, 4, 8, 16), 64), "ecp5": (16384, (1, 2, 4, 8, 16, 32), 128)}[family]  # fmt: skip
    best = None
    for w in widths:
        data_w = w if family == "ice40" else w + w // 8  # ECP5 widths carry parity bits (9, 18, 36)
        rows = bits // w
        stack = 1
        while width * stack * 2 <= data_w:
            stack *= 2
        if width <= data_w:
            n = -(-depth // (rows * stack))
        else:
            n = -(-width // data_w) * -(-depth // rows)
        best = n if best is None else min(best, n)
    soft = width * depth / (16 if rom else 1)
    if family == "ecp5":
        soft = min(soft, -(-width // 4) * -(-depth // 16) * 4)
    return best if best * cost + F.BRAM_EXTRA < soft else 0


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_bram_blocks_match_the_mapping_rule(family):
    import numpy as np

    rng = np.random.default_rng(7)
    for _ in range(300):
        w = int(rng.integers(1, 200))
        d = int(rng.choice([2, 7, 64, 100, 256, 392, 1000, 4096, 6272, 20000]))
        rom = bool(rng.integers(0, 2))
        assert F.bram_blocks(family, w, d, rom) == _blocks_reference(family, w, d, rom), (w, d, rom)


def test_bram_blocks_cases_seen_in_yosys():
    """What Yosys 0.70's synth_ice40 did with memories of the tiny tfc board top."""
    assert F.bram_blocks("ice40", 18, 8, True) == 0  # threshold ROM -> logic
    assert F.bram_blocks("ice40", 8, 64, True) == 0
    assert F.bram_blocks("ice40", 1, 65, False) == 0  # small FIFO -> flip-flops
    assert F.bram_blocks("ice40", 16, 5, False) == 1  # wider FIFO -> a block
    assert F.bram_blocks("ice40", 16, 392, True) == 2
    assert F.bram_blocks("ice40", 1, 50176, True) == 13  # 784x64 1-bit weights: 13 x 4 kbit


# --------------------------------------------------------------------------------------------
# the logic-cell model, DSP count and block-RAM-aware folding
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_cells_model_is_the_least_squares_line_of_its_builds(family):
    import numpy as np

    pts = F.CALIBRATION[family]
    assert len(pts) >= 4 and len({x for _, x, _ in pts}) >= 3  # a line needs spread
    x = np.array([p[1] for p in pts], float)
    y = np.array([p[2] for p in pts], float)
    slope, icpt = np.polyfit(x, y, 1)
    a, b, err = F.CELLS_MODEL[family]
    assert a == pytest.approx(icpt, rel=1e-6) and b == pytest.approx(slope, rel=1e-6, abs=1e-9)
    assert err == pytest.approx(np.max(np.abs((icpt + slope * x) / y - 1)), rel=1e-6)
    t = next(t for t in BOARDS.values() if t.family == family)
    assert F.cells_needed(t, 1000) == round(icpt + slope * 1000)
    # the budget is the largest estimate the line allows within the usable cells
    lb = F.lut_budget(t, 0.8)
    assert F.cells_needed(t, lb) <= F.usable_cells(t, 0.8) < F.cells_needed(t, lb + 2)


def _mul_design(pairs):
    """A component multiplying input signals of the widths in ``pairs`` (a negative number
    ``-c``: the constant ``c``) into one registered sum."""
    from amaranth.hdl import Module, Signal, signed
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    width = sum(max(a, 0) + max(b, 0) for a, b in pairs)

    class Muls(wiring.Component):
        def __init__(self):
            super().__init__({"x": In(width), "y": Out(signed(64))})

        def elaborate(self, platform):
            m = Module()
            pos, terms = 0, []
            for a, b in pairs:
                ops = []
                for w in (a, b):
                    if w < 0:
                        ops.append(-w)
                    else:
                        ops.append(self.x[pos : pos + w].as_signed())
                        pos += w
                terms.append(ops[0] * ops[1])
            acc = Signal(signed(64))
            m.d.sync += acc.eq(sum(terms))
            m.d.comb += self.y.eq(acc)
            return m

    return Muls()


def test_dsp_blocks_counts_what_yosys_maps_on_ecp5(tmp_path):
    """The count from the RTLIL equals the MULT18X18D cells synth_ecp5 maps (Yosys run here)."""
    from amaranth.back import rtlil

    from bitfab.fpga import yosys
    from bitfab.fpga.toolchain import run_tool

    pairs = [(4, 3), (2, 5), (1, 7), (6, -5), (6, -4), (20, 4), (2, 2), (3, 1), (5, -12)]
    design = _mul_design(pairs)
    text = rtlil.convert(design, name="top")
    (tmp_path / "d.il").write_text(text)
    script = yosys.yosys_script("ecp5", "top", ["d.il"], dsp=True, netlist=None, stat="s.json")
    (tmp_path / "s.ys").write_text(script)
    run_tool("yosys", ["-q", "-l", "y.log", "s.ys"], tmp_path, "y.out", timeout_s=600)
    cells, _ = yosys.read_stat(tmp_path / "s.json", "top")
    mapped = cells.get("MULT18X18D", 0)
    # by hand: 4x3, 2x5, 2x2, x*5, x*12 one each; 20x4 two (20 > 18); 1x7, 3x1, x*4 none
    assert mapped == 7
    assert F.dsp_blocks("ecp5", text) == mapped
    assert F.dsp_blocks("ice40", text) == 0  # the iCE40 board build infers no SB_MAC16


def test_bram_aware_folding_never_slower_and_never_costlier(tiny_model):
    from bitfab.dataflow.build import choose_plan
    from bitfab.dataflow.convert import to_dataflow
    from bitfab.dataflow.folding import exp_cycles
    from bitfab.dataflow.layers import hw_layers
    from bitfab.dataflow.load import load_qonnx

    base = to_dataflow(load_qonnx(tiny_model), str(tiny_model))
    layers = {ly.name: ly for ly in hw_layers(base)}
    minimal = choose_plan(base)[0].cycles
    for family in ("ice40", "ecp5"):
        for div in (4, 16, 64, 256):
            plan, _ = choose_plan(base, target_cycles=max(1, minimal // div))
            fold = F.bram_aware_folding(base, plan, family)
            for name, f in fold.items():
                ly = layers[name]
                if ly.op_type != "MVAU":
                    assert tuple(f) == tuple(plan.fold[name])
                    continue
                assert exp_cycles(ly, *f) <= plan.cycles
                args = (ly.simd_dim, ly.pe_dim, max(1, ly.weight_bits), max(1, ly.in_bits))
                new = F.mvau_memory_cost(family, f[0], f[1], *args)[1]
                old = F.mvau_memory_cost(family, plan.fold[name][0], plan.fold[name][1], *args)[1]
                assert new <= old


def test_fit_takes_a_faster_folding_than_minimal_on_the_icebreaker(tmp_path, tiny_model):
    t = get_target("icebreaker")
    fit = F.fit_plan(tiny_model, t, "parallel", 0.8, tmp_path)
    tries = fit["tries"]
    assert tries[0]["candidate"] == "minimal" and tries[0]["fits"]
    assert fit["cycles_per_image_estimate"] < tries[0]["cycles_per_image"]
    chosen = [x for x in tries if x["fits"]][-1]
    assert chosen["cycles_per_image"] == fit["cycles_per_image_estimate"]
    assert chosen["bram_blocks"] <= t.bram_blocks and chosen["dsp_blocks"] == 0
    assert chosen["cells_modelled"] <= F.usable_cells(t, 0.8)
    # a given folding is taken as is (and checked)
    given = {
        k: {"PE": v[0], "SIMD": v[1], "parallel_window": v[2]} for k, v in fit["folding"].items()
    }
    (tmp_path / "g").mkdir()
    again = F.fit_plan(tiny_model, t, "parallel", 0.8, tmp_path / "g", folding=given)
    assert again["folding"] == fit["folding"] and len(again["tries"]) == 1


def test_given_folding_that_overflows_names_the_resource(tmp_path, tiny_model):
    # 16 rows of 49 one-bit weights, 64 words deep: 4 UP5K blocks each, 64 in all
    folding = {"MVAU_0": {"PE": 16, "SIMD": 49}}
    with pytest.raises(BitfabError) as e:
        B.build(tiny_model, "icebreaker", "parallel", tmp_path / "o", folding=folding,
                progress=False)  # fmt: skip
    msg = str(e.value)
    assert "\n" not in msg and "with the given folding" in msg and "block RAM" in msg
    assert "--folding" in msg and not (tmp_path / "o").exists()


def test_cli_bad_folding_file_exits_2_with_one_line(tmp_path, tiny_model):
    bad = tmp_path / "f.json"
    bad.write_text("[1, 2")
    cmd = [sys.executable, "-m", "bitfab", "build", str(tiny_model), "--board", "icebreaker",
           "--out", str(tmp_path / "o"), "--folding", str(bad)]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "--folding" in lines[0]
    assert not (tmp_path / "o").exists()


def test_step_key_changes_with_any_input():
    base = {"model": "a" * 64, "board": "icebreaker", "seed": 1}
    k = B.step_key(base)
    assert B.step_key(dict(reversed(list(base.items())))) == k  # order does not matter
    for field, val in [("model", "b" * 64), ("board", "ulx3s-85f"), ("seed", 2)]:
        assert B.step_key({**base, field: val}) != k


# --------------------------------------------------------------------------------------------
# bad input and fit errors
# --------------------------------------------------------------------------------------------


def test_unknown_board_is_one_line(tmp_path, tiny_model):
    with pytest.raises(BitfabError) as e:
        B.build(tiny_model, "icebreakr", "parallel", tmp_path / "o", progress=False)
    msg = str(e.value)
    assert "\n" not in msg and "icebreakr" in msg and "icebreaker" in msg
    assert not (tmp_path / "o").exists()


def test_a_second_build_into_a_busy_folder_is_refused(tmp_path, tiny_model):
    from bitfab.staging import folder_lock

    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    with folder_lock(out, "bitfab build"):
        with pytest.raises(BitfabError, match=r"another bitfab build \(pid \d+\) is writing"):
            B.build(tiny_model, "icebreaker", "parallel", out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [".bitfab.lock", "mine.txt"]


def test_bare_device_and_bad_options(tmp_path, tiny_model):
    with pytest.raises(BitfabError, match="bare device"):
        B.build(tiny_model, "up5k", "parallel", tmp_path / "o", progress=False)
    with pytest.raises(BitfabError, match="array kind"):
        B.build(tiny_model, "icebreaker", "systolic", tmp_path / "o", progress=False)
    with pytest.raises(BitfabError, match="no such file"):
        B.build(tmp_path / "none.onnx", "icebreaker", "parallel", tmp_path / "o", progress=False)
    with pytest.raises(BitfabError, match="margin"):
        B.build(tiny_model, "icebreaker", "parallel", tmp_path / "o", margin=1.5, progress=False)
    assert not (tmp_path / "o").exists()


def test_board_without_serial_port_is_refused_up_front(tmp_path, tiny_model, monkeypatch):
    # every catalogue board has a serial link now (bitfab.boards); pretend one has none
    assert F.has_host_link("orangecrab-25f") and F.has_host_link("icebreaker")
    monkeypatch.setattr(B, "has_host_link", lambda board: board != "orangecrab-25f")
    t0 = time.perf_counter()
    with pytest.raises(BitfabError, match="no serial port.*icebreaker"):
        B.build(tiny_model, "orangecrab-25f", "parallel", tmp_path / "o", progress=False)
    assert time.perf_counter() - t0 < 5  # before any step runs
    assert not (tmp_path / "o").exists()


def test_too_big_for_the_up5k_names_the_resource(tmp_path, lfc_model):
    with pytest.raises(BitfabError) as e:
        B.build(lfc_model, "icebreaker", "parallel", tmp_path / "o", progress=False)
    msg = str(e.value)
    assert "\n" not in msg
    assert "block RAM" in msg and "over by" in msg
    # the weights alone: 784x1024 + 2x1024x1024 + 1024x10 bits, at 4 kbit per UP5K block
    weights = 784 * 1024 + 2 * 1024 * 1024 + 1024 * 10
    needed = int(msg.split("needs ")[1].split(" blocks")[0])
    assert needed >= math.ceil(weights / 4096)
    assert f"over by {needed - 30} blocks" in msg
    # the board it names really has the block RAM for it
    bigger = msg.rsplit("larger board: ", 1)[1].strip()
    assert get_target(bigger).bram_total_bits * 0.8 >= weights and bigger in BOARDS
    assert F.has_host_link(bigger)
    assert not (tmp_path / "o").exists()  # nothing half-written


# --------------------------------------------------------------------------------------------
# end to end on the iCEBreaker (slow: Verilator + Yosys + nextpnr)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_build_icebreaker_end_to_end_cached_and_deterministic(tmp_path, tiny_model):
    out = tmp_path / "b1"
    rep = B.build(tiny_model, "icebreaker", "parallel", out, verify_images=40, progress=False)
    assert rep == json.loads((out / "report.json").read_text())
    assert rep["board"] == "icebreaker" and rep["device"] == "iCE40UP5K"
    assert rep["array"] == "parallel"
    assert rep["verification"] == {
        "images": 40,
        "inputs": {"source": "dataset", "dataset": "digits", "count": 40},
        "mismatches": 0,
        "backend": "verilator",
    }
    metrics = json.loads((tiny_model.parent / "metrics.json").read_text())
    assert rep["accuracy"]["model"]["test_accuracy"] == metrics["test_accuracy"]
    assert 0.0 <= rep["accuracy"]["golden_on_verified_sample"] <= 1.0
    # bitstream: exists, an iCE40 image, sha256 recorded
    bit = Path(rep["bitstream"]["path"])
    data = bit.read_bytes()
    assert ICE40_SYNC in data[:4096]
    assert rep["bitstream"]["sha256"] == hashlib.sha256(data).hexdigest()
    # resources: all five, used within available, the device's totals
    t = get_target("icebreaker")
    res = rep["resources"]
    assert set(res) == {"LUT", "FF", "BRAM", "DSP", "SPRAM"}
    assert res["LUT"]["available"] == t.luts and res["BRAM"]["available"] == t.bram_blocks
    assert 0 < res["LUT"]["used"] <= t.luts and 0 < res["BRAM"]["used"] <= t.bram_blocks
    assert res["FF"]["used"] > 0
    # the fit model kept the design within its usable cells and counted its block RAMs
    assert res["LUT"]["used"] <= F.usable_cells(t, 0.8) * 1.15
    assert abs(res["BRAM"]["used"] - rep["fit"]["bram_blocks_estimate"]) <= 2
    assert abs(res["LUT"]["used"] / rep["fit"]["cells_modelled"] - 1) < 0.25
    # throughput from the achieved clock and the measured cycles
    cyc = rep["cycles_per_image"]
    assert cyc["measured"] > 0 and abs(cyc["measured"] / cyc["estimate"] - 1) < 0.1
    clock = min(rep["fmax_mhz"], rep["clock_mhz"])
    assert rep["images_per_s"] == pytest.approx(clock * 1e6 / cyc["measured"], rel=1e-3)
    assert rep["timing_met"] == (rep["fmax_mhz"] >= rep["clock_mhz"])
    assert rep["clock_mhz"] == pytest.approx(12.0)
    assert set(rep["steps"]) == set(B.STEPS) and not any(s["cached"] for s in rep["steps"].values())

    # second run, same folder: every step cached, same bitstream
    t0 = time.perf_counter()
    again = B.build(tiny_model, "icebreaker", "parallel", out, verify_images=40, progress=False)
    assert time.perf_counter() - t0 < 30
    assert all(s["cached"] for s in again["steps"].values()) and again["cached"]
    assert again["bitstream"]["sha256"] == rep["bitstream"]["sha256"]

    # a changed clock reruns only the bitstream step; a clock above Fmax is reported, not raised
    fast = B.build(tiny_model, "icebreaker", "parallel", out, verify_images=40, clock_mhz=60,
                   progress=False)  # fmt: skip
    st = fast["steps"]
    assert st["dataflow"]["cached"] and st["compile"]["cached"] and st["verify"]["cached"]
    assert not st["bitstream"]["cached"]
    assert fast["clock_mhz"] == pytest.approx(60, rel=0.02) and "PLL" in fast["clock_note"]
    assert fast["fmax_mhz"] < fast["clock_mhz"] and fast["timing_met"] is False
    assert fast["images_per_s"] == pytest.approx(fast["fmax_mhz"] * 1e6 / cyc["measured"], rel=1e-3)

    # determinism: a fresh folder, same inputs and seed -> the same bitstream
    other = B.build(tiny_model, "icebreaker", "parallel", tmp_path / "b2", verify_images=40,
                    progress=False)  # fmt: skip
    assert not any(s["cached"] for s in other["steps"].values())
    assert other["bitstream"]["sha256"] == rep["bitstream"]["sha256"]


def test_cli_unknown_board_exits_2_with_one_line(tmp_path, tiny_model):
    cmd = [sys.executable, "-m", "bitfab", "build", str(tiny_model), "--board", "nosuchboard",
           "--out", str(tmp_path / "o")]  # fmt: skip
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nosuchboard" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "o").exists()
    helped = subprocess.run([*cmd[:4], "--help"], cwd=ROOT, capture_output=True, text=True)
    assert helped.returncode == 0 and "--verify-images" in helped.stdout
