"""Gate-level check (bitfab.sim.gate_level): the synthesized iCE40 netlist of the tiny trained tfc
against the golden model, and a netlist whose block-RAM contents were lost is caught.

The Yosys netlist is cached in pytest's cache (keyed on accelerator.v, the script and the Yosys
version) and the Verilator builds in the simulation cache, so a warm run takes seconds; a cold
one synthesizes (~40 s) and builds two netlist simulators (~50 s each at -O0).
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
    """The tiny tfc accelerator with its iCE40 netlist already in ``gate_level_ice40``."""
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    out = tmp_path_factory.mktemp("gate") / "tfc"
    compile_accelerator(df, out, "bitserial")
    cache = Path(request.config.cache.mkdir("bitfab_gate"))
    with open(cache / "ice40.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        synthesize_netlist(out / "accelerator.v", "ice40", cache / "ice40", top=TOP)
    shutil.copytree(cache / "ice40", out / "gate_level_ice40")
    return out


def _rams(text: str) -> list[tuple[str, int, int]]:
    """(instance name, start, end of its parameter list) of every SB_RAM40_4K in a netlist."""
    pat = re.compile(r"SB_RAM40_4K\s+#\((.*?)\)\s*\\?([\w$.\[\]]+)\s*\(", re.S)
    return [(m.group(2), m.start(1), m.end(1)) for m in pat.finditer(text)]


def _inits(params: str) -> list[int]:
    return [int(v, 16) for v in re.findall(r"\.INIT_[0-9A-F]\(256'h([0-9a-fA-F]+)\)", params)]


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
    with pytest.raises(BitfabError, match="does not exist"):
        gate_level_verify(gate_acc, "ice40", 2, netlist=tmp_path / "none.v")
    other = tmp_path / "other.v"
    other.write_text("module something(input a); endmodule\n")
    with pytest.raises(BitfabError, match=f"no module '{TOP}'"):
        gate_level_verify(gate_acc, "ice40", 2, netlist=other)


def test_ecp5_block_ram_model_is_missing_from_yosys(gate_acc, tmp_path):
    """Yosys 0.70 declares DP16KD (ECP5 block RAM) a black box in its models: a netlist that
    uses it is refused with the reason instead of simulating RAMs that read back nothing."""
    models = cell_models("ecp5")
    assert "`include" not in models and "module LUT4" in models and "module CCU2C" in models
    names = re.findall(r"^\s*module\s+(\w+)", models, re.M)
    assert len(names) == len(set(names)), "a model is declared twice"
    net = tmp_path / "ecp5.v"
    net.write_text(
        f"module {TOP}(input clk);\n  DP16KD #(.DATA_WIDTH_A(18)) ram (.CLKA(clk));\nendmodule\n"
    )
    with pytest.raises(BitfabError, match="DP16KD.*black box"):
        gate_level_verify(gate_acc, "ecp5", 2, netlist=net)
