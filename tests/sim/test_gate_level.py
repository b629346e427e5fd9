"""Gate-level check (bitfab.sim.gate_level): the synthesized iCE40 and ECP5 netlists of the tiny
trained tfc against the golden model, a netlist whose block-RAM contents were lost is caught, and
bitfab's DP16KD behaviour (Yosys has none) against a Python reference.

The Yosys netlist is cached in pytest's cache (keyed on accelerator.v, the script and the Yosys
version) and the Verilator builds in the simulation cache, so a warm run takes ~30 s; a cold one
synthesizes twice (~40 s + ~30 s) and builds three netlist simulators (~50 s each at -O0).
"""

from __future__ import annotations

import fcntl
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from bitfab.errors import BitfabError
from bitfab.hw.accelerator import TOP, compile_accelerator
from bitfab.sim.gate_level import (
    cell_models,
    gate_level_verify,
    netlist_cells,
    synthesize_netlist,
)
from tests.hw.test_compiler import tiny_dataflow

IMAGES = 30
CHUNK = 20  # <= 20 images keeps both runs' stimulus memories at 1024 words: one build each


@pytest.fixture(scope="module")
def gate_acc(request, tmp_path_factory) -> Path:
    """The tiny tfc accelerator with its iCE40 and ECP5 netlists already in place."""
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    out = tmp_path_factory.mktemp("gate") / "tfc"
    compile_accelerator(df, out, "bitserial")
    cache = Path(request.config.cache.mkdir("bitfab_gate"))
    for family in ("ice40", "ecp5"):
        with open(cache / f"{family}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            synthesize_netlist(out / "accelerator.v", family, cache / family, top=TOP)
        shutil.copytree(cache / family, out / f"gate_level_{family}")
    return out


def _rams(text: str) -> list[tuple[str, int, int]]:
    """(instance name, start, end of its parameter list) of every SB_RAM40_4K in a netlist."""
    pat = re.compile(r"SB_RAM40_4K\s+#\((.*?)\)\s*\\?([\w$.\[\]]+)\s*\(", re.S)
    return [(m.group(2), m.start(1), m.end(1)) for m in pat.finditer(text)]


def _inits(params: str) -> list[int]:
    return [int(v, 16) for v in re.findall(r"\.INIT_[0-9A-F]\(256'h([0-9a-fA-F]+)\)", params)]


@pytest.mark.verilator
def test_ice40_netlist_matches_golden_with_rtl_cycles(gate_acc):
    calls: list[tuple[int, int]] = []
    rep = gate_level_verify(
        gate_acc, "ice40", IMAGES, chunk=CHUNK, progress=lambda d, t: calls.append((d, t))
    )
    assert rep["passed"], rep["first_mismatch"]
    assert rep["images"] == IMAGES and rep["mismatching_words"] == 0
    assert rep["simulator"] == "verilator" and rep["synth_cached"]
    # the netlist really is gates: iCE40 cells only, weights in block-RAM INIT parameters
    text = Path(rep["netlist"]).read_text()
    cells = netlist_cells(text)
    assert cells == rep["cells"] and all(c.startswith("SB_") for c in cells), cells
    assert cells.get("SB_RAM40_4K", 0) > 0 and cells.get("SB_LUT4", 0) > 0
    assert any(any(_inits(text[a:b])) for _, a, b in _rams(text)), "no initialised block RAM"
    # synthesis keeps the clock-level behaviour: same cycles as the RTL, chunk by chunk
    assert rep["cycles_equal"] is True
    assert rep["cycles_per_image"] == rep["rtl_cycles_per_image"] > 0
    assert rep["latency"] == rep["rtl_latency"] > 0
    # progress: per chunk (1 + 20 + 9 images), ending at the total
    assert calls == [(1, IMAGES), (1 + CHUNK, IMAGES), (IMAGES, IMAGES)]
    on_disk = json.loads((gate_acc / "gate_level.json").read_text())
    assert on_disk == rep


@pytest.mark.verilator
def test_lost_block_ram_contents_are_caught(gate_acc, tmp_path):
    """Zero the INIT parameters of one weight block RAM (what a synthesis that dropped the
    initial contents would produce): the check fails and names the first wrong image."""
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.sim.verify import load_test_images

    text = (gate_acc / "gate_level_ice40" / "netlist.v").read_text()
    name, a, b = next(r for r in _rams(text) if any(_inits(text[r[1] : r[2]])))
    zeroed = re.sub(r"256'h[0-9a-fA-F]+", "256'h" + "0" * 64, text[a:b])
    bad = tmp_path / "netlist_lost_init.v"
    bad.write_text(text[:a] + zeroed + text[b:])
    rep = gate_level_verify(
        gate_acc, "ice40", IMAGES, chunk=CHUNK, netlist=bad, rtl=False, write=False
    )
    assert not rep["passed"], f"{name} without its contents went unnoticed"
    assert rep["netlist_given"] and 1 <= rep["mismatching_words"] <= IMAGES
    first = rep["first_mismatch"]
    k = first["image"]
    assert 0 <= k < IMAGES and first["word"] == k  # one output word (the class) per image
    # the expected value in the message is the golden class of image k (FINN's execution)
    golden = GoldenModel(gate_acc / "dataflow.onnx").classify(load_test_images(k + 1))
    exp = int(re.search(r"expected (\d+)", first["message"]).group(1))
    assert exp == int(np.asarray(golden).reshape(-1)[k])
    # other chunk boundaries find the same first image and the same count (same build)
    again = gate_level_verify(
        gate_acc, "ice40", IMAGES, chunk=7, netlist=bad, rtl=False, write=False
    )
    assert again["first_mismatch"]["image"] == k
    assert again["mismatching_words"] == rep["mismatching_words"]
    if k > 0:  # the images before k are right
        before = gate_level_verify(gate_acc, "ice40", k, netlist=bad, rtl=False, write=False)
        assert before["passed"], before["first_mismatch"]


def test_bad_input_is_one_clear_error(gate_acc, tmp_path):
    with pytest.raises(BitfabError, match="not an accelerator folder"):
        gate_level_verify(tmp_path, "ice40", 2)
    with pytest.raises(BitfabError, match="unknown family 'xilinx'"):
        gate_level_verify(gate_acc, "xilinx", 2)
    with pytest.raises(BitfabError, match="unknown simulator"):
        gate_level_verify(gate_acc, "ice40", 2, simulator="modelsim")
    with pytest.raises(BitfabError, match="cxx_opt '-O9'"):
        gate_level_verify(gate_acc, "ice40", 2, cxx_opt="-O9")
    with pytest.raises(BitfabError, match="--images 0"):
        gate_level_verify(gate_acc, "ice40", 0)
    with pytest.raises(BitfabError, match="does not exist"):
        gate_level_verify(gate_acc, "ice40", 2, netlist=tmp_path / "none.v")
    other = tmp_path / "other.v"
    other.write_text("module something(input a); endmodule\n")
    with pytest.raises(BitfabError, match=f"no module '{TOP}'"):
        gate_level_verify(gate_acc, "ice40", 2, netlist=other)


@pytest.mark.verilator
def test_ecp5_netlist_matches_golden_with_rtl_cycles(gate_acc):
    """synth_ecp5 puts the weights in DP16KD INITVALs (x18 dual port and x36 pseudo dual
    port): simulated with Yosys's models plus bitfab's DP16KD behaviour."""
    rep = gate_level_verify(gate_acc, "ecp5", 20, chunk=CHUNK, write=False)
    assert rep["passed"], rep["first_mismatch"]
    assert rep["mismatching_words"] == 0 and rep["cells"].get("DP16KD", 0) > 0
    assert all(not c.startswith("SB_") for c in rep["cells"]), rep["cells"]
    assert rep["cycles_equal"] is True and rep["cycles_per_image"] == rep["rtl_cycles_per_image"]


def _dp16kd_ref(mem: list[int], ops: list[dict], width: int) -> list[tuple[int, int]]:
    """(DOA, DOB) after each clock, from the documented DP16KD behaviour (Lattice TN1264)."""
    ref, doa, dob, out = list(mem), 0, 0, []
    for op in ops:
        if width == 18:  # true dual port, x18, READBEFOREWRITE on A, B only reads
            a, b = op["ada"] >> 4, op["adb"] >> 4
            old_a, old_b = ref[a], ref[b]
            if op["cea"]:
                if op["wea"]:
                    for k in range(2):
                        if op["ada"] >> k & 1:
                            m = 0x1FF << (9 * k)
                            ref[a] = (ref[a] & ~m) | (op["dia"] & m)
                doa = old_a
            if op["ceb"]:
                dob = old_b
        else:  # x36 pseudo dual port: A writes {DIB, DIA}, B reads {DOB, DOA}
            a, b = 2 * (op["ada"] >> 5), 2 * (op["adb"] >> 5)
            if op["ceb"]:
                doa, dob = ref[b], ref[b + 1]
            if op["cea"] and op["wea"]:
                for k in range(4):
                    if op["ada"] >> k & 1:
                        slot, src, m = (
                            a + k // 2,
                            (op["dia"], op["dib"])[k // 2],
                            0x1FF << (9 * (k % 2)),
                        )
                        ref[slot] = (ref[slot] & ~m) | (src & m)
        out.append((doa, dob))
    return out


@pytest.mark.parametrize("width", [18, 36])
def test_dp16kd_model_against_reference(width, tmp_path):
    """bitfab's DP16KD behaviour (random INITVALs with random padding bits, random addresses,
    byte enables, clock enables) against the Python reference, in Icarus."""
    import random
    import subprocess

    from bitfab.sim.gate_level import with_dp16kd_model

    if shutil.which("iverilog") is None:
        pytest.skip("iverilog not installed")
    rng = random.Random(width)
    mem = [rng.getrandbits(18) for _ in range(1024)]
    inits = [
        sum((mem[16 * k + i] | rng.getrandbits(2) << 18) << (20 * i) for i in range(16))
        for k in range(64)
    ]
    ops = [
        {"ada": rng.getrandbits(14), "adb": rng.getrandbits(14), "dia": rng.getrandbits(18),
         "dib": rng.getrandbits(18), "wea": int(rng.random() < 0.3),
         "cea": int(rng.random() < 0.9), "ceb": int(rng.random() < 0.9)}
        for _ in range(300)
    ]  # fmt: skip
    params = [f".DATA_WIDTH_A({width})", f".DATA_WIDTH_B({width})"]
    params += ['.WRITEMODE_A("READBEFOREWRITE")']
    params += [f".INITVAL_{k:02X}(320'h{v:080x})" for k, v in enumerate(inits)]
    conns = [f".AD{p}{i}(ad{p.lower()}[{i}])" for p in "AB" for i in range(14)]
    conns += [f".DI{p}{i}(di{p.lower()}[{i}])" for p in "AB" for i in range(18)]
    conns += [f".DO{p}{i}(do{p.lower()}[{i}])" for p in "AB" for i in range(18)]
    conns += [".CLKA(clk)", ".CLKB(clk)", ".CEA(cea)", ".CEB(ceb)", ".WEA(wea)", ".WEB(1'b0)"]
    conns += [".OCEA(1'b1)", ".OCEB(1'b1)", ".RSTA(1'b0)", ".RSTB(1'b0)"]
    conns += [f".CS{p}{i}(1'b0)" for p in "AB" for i in range(3)]
    steps = "\n".join(
        " ".join(f"{k} = {v};" for k, v in op.items())
        + ' #1 clk = 1; #1 clk = 0; $display("%h %h", doa, dob);'
        for op in ops
    )
    model = re.search(
        r"module DP16KD\b.*?endmodule", with_dp16kd_model(cell_models("ecp5")), re.S
    ).group(0)
    (tmp_path / "t.v").write_text(
        f"""{model}
module tb;
  reg clk = 0; reg [13:0] ada, adb; reg [17:0] dia, dib; reg wea, cea, ceb;
  wire [17:0] doa, dob;
  DP16KD #({", ".join(params)}) ram({", ".join(conns)});
  initial begin
{steps}
    $finish;
  end
endmodule
"""
    )
    subprocess.run(
        ["iverilog", "-g2012", "-o", "t.vvp", "-s", "tb", "t.v"], cwd=tmp_path, check=True
    )
    run = subprocess.run(["vvp", "-n", "t.vvp"], cwd=tmp_path, capture_output=True, text=True)
    got = [tuple(int(x, 16) for x in ln.split()) for ln in run.stdout.splitlines() if " " in ln]
    got = [g for g in got if len(g) == 2]
    assert got == _dp16kd_ref(mem, ops, width)


def test_ecp5_block_ram_configuration_outside_the_model_is_refused(gate_acc, tmp_path):
    """Yosys 0.70 declares DP16KD a black box; bitfab's behaviour covers what synth_ecp5
    emits here, and anything else is refused with the instance and parameter named."""
    models = cell_models("ecp5")
    assert "`include" not in models and "module LUT4" in models and "module CCU2C" in models
    names = re.findall(r"^\s*module\s+(\w+)", models, re.M)
    assert len(names) == len(set(names)), "a model is declared twice"
    net = tmp_path / "ecp5.v"
    net.write_text(
        f"module {TOP}(input clk);\n"
        '  DP16KD #(.DATA_WIDTH_A(18), .REGMODE_A("OUTREG")) ram (.CLKA(clk));\nendmodule\n'
    )
    with pytest.raises(BitfabError, match='DP16KD ram uses REGMODE_A="OUTREG"'):
        gate_level_verify(gate_acc, "ecp5", 2, netlist=net)
    with pytest.raises(BitfabError, match="ecp5 needs Verilator"):
        gate_level_verify(gate_acc, "ecp5", 2, simulator="icarus")
