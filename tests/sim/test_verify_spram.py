"""An accelerator with weights in SPRAM, verified in Verilator booting from a behavioural SPI
flash: the real loader fills SB_SPRAM256KA (Yosys's model) from the weight image, then the
images are compared with the golden model; a corrupted or short image lets nothing through."""

from pathlib import Path

import pytest

from bitfab.hw.accelerator import compile_accelerator, load_accelerator
from bitfab.hw.compiler import compile_graph
from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.weight_image import check_image, image_bytes
from bitfab.sim.verify import verify
from tests.hw.test_compiler import tiny_dataflow

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.fixture(scope="module")
def spram_acc(request, tmp_path_factory) -> Path:
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")), "w2a2")
    mvaus = [ly.name for ly in compile_graph(df).layers if ly.op_type == "MVAU"]
    out = tmp_path_factory.mktemp("spram") / "acc"
    # the first layer's 256-bit words take 16 SPRAM columns; the third's 32-bit words two
    compile_accelerator(df, out, "parallel", weight_stores={mvaus[0]: "spram", mvaus[2]: "spram"})
    return out


def test_weight_image_is_written_and_matches_the_design(spram_acc):
    acc, rep = load_accelerator(spram_acc)
    unused_ok(acc)
    data = (spram_acc / "weights.bin").read_bytes()
    assert data == image_bytes(acc)
    assert rep["weight_image"]["bytes"] == len(data)
    assert check_image(data, acc) is None
    assert "SB_SPRAM256KA" in (spram_acc / "accelerator.v").read_text()
    assert sorted(v for v in rep["weight_stores"].values()) == ["rom", "rom", "spram", "spram"]


@pytest.mark.verilator
def test_booted_accelerator_matches_golden_at_the_estimate(spram_acc):
    rep = verify(spram_acc, 60, "verilator", chunk=30)
    assert rep["passed"], rep["first_mismatch"]
    assert rep["cycles_per_image"] == rep["estimate"]["cycles_per_image"]
    assert abs(rep["ratio_latency"] - 1) < 0.05  # the loader's own cycles are taken out
    assert rep["boot"]["loader_cycles"] > 0


@pytest.mark.verilator
@pytest.mark.parametrize("fault", ["corrupt", "short"])
def test_bad_weight_image_lets_no_image_through(spram_acc, tmp_path, fault):
    data = bytearray((spram_acc / "weights.bin").read_bytes())
    if fault == "corrupt":
        data[100] ^= 0x04
    else:
        data = data[: len(data) // 2]
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    waves = tmp_path / "waves" if fault == "corrupt" else None
    rep = verify(spram_acc, 4, "verilator", chunk=4, flash_image=bad, write=False,
                 localise_faults=False, waves=waves)  # fmt: skip
    assert not rep["passed"]
    msg = rep["first_mismatch"]["message"]
    assert "0/" in msg and "CRC-32 mismatch" in msg
    if waves is not None:  # the booted design's waves: the refused boot is in them
        assert Path(rep["first_mismatch"]["waves"]).stat().st_size > 0


@pytest.fixture(scope="module")
def small_spram_acc(request, tmp_path_factory) -> Path:
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")), "w2a2")
    mvaus = [ly.name for ly in compile_graph(df).layers if ly.op_type == "MVAU"]
    out = tmp_path_factory.mktemp("spram_gate") / "acc"
    compile_accelerator(df, out, "parallel", weight_stores={mvaus[2]: "spram"})
    return out


@pytest.mark.verilator
def test_gate_level_netlist_boots_and_matches(small_spram_acc):
    """The synthesized iCE40 netlist (real SB_SPRAM256KA cells, Yosys's models) boots from
    the simulated flash and matches the golden model, clock for clock with the RTL."""
    from bitfab.sim.gate_level import gate_level_verify

    rep = gate_level_verify(small_spram_acc, "ice40", 6, chunk=3, write=False)
    assert rep["passed"], rep["first_mismatch"]
    assert rep["cells"].get("SB_SPRAM256KA", 0) == 2  # 32-bit words: two columns
    assert rep["cycles_equal"] is True
    assert rep["boot_cycles"] > 0 and rep["latency"] == rep["rtl_latency"] > 0
