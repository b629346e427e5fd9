"""``bitfab verify`` (bitfab.sim.verify): the accelerator's RTL against the golden model.

Model: the tiny trained tfc of ``tests/hw/test_compiler.tiny_dataflow`` (cached), compiled with
``bitfab compile``. The Verilator test runs the same path as the full 10,000-image bench
(``bench/verify_all.py``) on 200 images; the fault-localisation test verifies against a golden
graph with one layer deliberately changed and expects that layer to be named.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
from onnx import numpy_helper

from bitfab.cli import main
from bitfab.hw.accelerator import compile_accelerator
from bitfab.sim.verify import verify
from tests.hw.test_compiler import tiny_dataflow


@pytest.fixture(scope="session")
def tiny_acc(request, tmp_path_factory) -> Path:
    df = tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))
    out = tmp_path_factory.mktemp("acc") / "tfc"
    compile_accelerator(df, out, "bitserial")
    return out


@pytest.mark.verilator
def test_verilator_200_images_match_and_meet_the_estimate(tiny_acc):
    rep = verify(tiny_acc, 200, "verilator", chunk=100)
    assert rep["passed"], rep["first_mismatch"]
    assert rep["images"] == 200 and rep["chunks"] == 3  # 1-image latency run + 2 x 100
    assert abs(rep["ratio_cycles_per_image"] - 1) <= 0.10, rep
    assert abs(rep["ratio_latency"] - 1) <= 0.10, rep
    on_disk = json.loads((tiny_acc / "verify.json").read_text())
    assert on_disk["cycles_per_image"] == rep["cycles_per_image"]
    assert rep["cycles_per_s"] > 0


def _tampered_golden(acc_dir: Path, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the graph whose second MVAU's thresholds are all raised to the largest one
    (its outputs mostly 0): the golden model then disagrees with the hardware from there on."""
    m = onnx.load(acc_dir / "dataflow.onnx")
    node = [n for n in m.graph.node if n.op_type == "MVAU"][1]
    init = next(i for i in m.graph.initializer if i.name == node.input[2])
    t = numpy_helper.to_array(init).copy()
    t[:] = t.max()
    init.CopyFrom(numpy_helper.from_array(t, init.name))
    path = tmp_path / "golden.onnx"
    onnx.save(m, path)
    return path, node.name


def test_mismatch_names_first_image_and_layer(tiny_acc, tmp_path):
    golden, layer = _tampered_golden(tiny_acc, tmp_path)
    rep = verify(tiny_acc, 6, "amaranth", chunk=5, golden=golden, write=False)
    assert not rep["passed"]
    fm = rep["first_mismatch"]
    assert fm["layer"] == layer, fm
    assert 0 <= fm["image"] < 6 and "expected" in fm["message"]


@pytest.mark.verilator
def test_verilator_mismatch_names_first_image_word_and_layer(tiny_acc, tmp_path):
    """The native Verilator executable reports the first differing output word; the expected
    image and word come from comparing the two golden models directly."""
    from bitfab.hw.accelerator import load_accelerator
    from bitfab.sim.verify import golden_streams, load_test_images

    golden, layer = _tampered_golden(tiny_acc, tmp_path)
    acc, _ = load_accelerator(tiny_acc)
    imgs = load_test_images(40)
    good = golden_streams(acc, tiny_acc / "dataflow.onnx", imgs).out_words
    bad = golden_streams(acc, golden, imgs).out_words
    first = next(i for i, (a, b) in enumerate(zip(good, bad, strict=True)) if a != b)
    rep = verify(tiny_acc, 40, "verilator", chunk=40, golden=golden, write=False)
    assert not rep["passed"]
    fm = rep["first_mismatch"]
    opi = len(good) // 40
    # chunk 0 is image 0 alone (the latency run), chunk 1 images 1..39
    assert (fm["image"], fm["layer"]) == (first // opi, layer), fm
    assert f"expected {bad[first]}" in fm["message"] and f"got {good[first]}" in fm["message"]
    assert rep["mismatching_words"] == sum(a != b for a, b in zip(good, bad, strict=True))


@pytest.mark.verilator
def test_native_and_cocotb_verilator_count_the_same_cycles(tiny_acc):
    """The C++ clock loop and the cocotb clock drive the same harness: same outputs, same
    cycle count, with random input gaps and output stalls."""
    from bitfab.hw.accelerator import TOP, load_accelerator
    from bitfab.sim.accel_run import ChunkRunner, accel_design
    from bitfab.sim.verify import golden_streams, load_test_images

    acc, _ = load_accelerator(tiny_acc)
    gold = golden_streams(acc, tiny_acc / "dataflow.onnx", load_test_images(8))
    design = accel_design((tiny_acc / "accelerator.v").read_text(), acc, TOP)
    n_in, n_out = len(gold.in_words), len(gold.out_words)
    runs = {
        engine: ChunkRunner(design, n_in, n_out, engine=engine).run_chunk(
            gold.in_words, gold.out_words, gap=0.3, stall=0.4, seed=7
        )
        for engine in ("native", "cocotb")
    }
    assert runs["native"].passed and runs["cocotb"].passed, runs
    assert runs["native"].cycles == runs["cocotb"].cycles > 8 * acc.perf.ii


def test_icarus_backend_and_cli(tiny_acc, capsys, tmp_path):
    import xml.etree.ElementTree as ET

    junit = tmp_path / "ci" / "results.xml"
    argv = ["verify", str(tiny_acc), "--images", "3", "--backend", "icarus", "--quiet"]
    rc = main([*argv, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "all outputs match" in out
    rep = json.loads((tiny_acc / "verify.json").read_text())
    assert rep["backend"] == "icarus" and rep["passed"] and rep["images"] == 3
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "1" and suite.get("failures") == "0"
    (case,) = suite.findall("testcase")
    assert case.get("name") == f"{tiny_acc} (icarus, 3 images)" and case.find("failure") is None
    assert main([*argv[:3], "2", *argv[4:], "--junit", str(junit)]) == 0  # a second case is added
    assert ET.parse(junit).getroot().get("tests") == "2"


def test_cli_rejects_a_folder_that_is_not_an_accelerator(tmp_path, capsys):
    assert main(["verify", str(tmp_path), "--images", "2", "--quiet"]) == 2
    assert "accelerator.json" in capsys.readouterr().err


def _broken_copies(acc: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    import shutil

    def copy(name: str) -> Path:
        dst = tmp_path / name
        shutil.copytree(acc, dst, ignore=shutil.ignore_patterns("verify*.json"))
        return dst

    meta = json.loads((acc / "accelerator.json").read_text())
    cases = {}
    d = copy("garbage")
    (d / "accelerator.json").write_text('{"fifos": [')
    cases["garbage"] = (d, r"accelerator.json: not readable JSON .*corrupt")
    d = copy("no_fifos")
    (d / "accelerator.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "fifos"}))
    cases["no_fifos"] = (d, r"no 'fifos' list")
    d = copy("fifo_count")
    (d / "accelerator.json").write_text(json.dumps({**meta, "fifos": meta["fifos"][:-1]}))
    cases["fifo_count"] = (d, r"does not describe .*dataflow.onnx")
    d = copy("no_dataflow")
    (d / "dataflow.onnx").unlink()
    cases["no_dataflow"] = (d, r"dataflow.onnx missing")
    cases["no_folder"] = (tmp_path / "nowhere", r"no such folder")
    return cases


def test_corrupt_accelerator_folders_are_one_clean_error(tiny_acc, tmp_path, capsys):
    """verify, run and the simulated board all load the folder through load_accelerator."""
    from bitfab.errors import BitfabError
    from bitfab.hw.accelerator import load_accelerator

    for name, (d, pattern) in _broken_copies(tiny_acc, tmp_path).items():
        with pytest.raises(BitfabError, match=pattern):
            load_accelerator(d)
        assert main(["verify", str(d), "--images", "2", "--quiet"]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (name, err)
        assert not (d / "verify.json").exists() or name == "no_folder", name


def _xor_output_bit(text: str) -> str:
    """accelerator.v with bit 0 of the top module's output flipped (a hand edit of the
    Verilog under test that bitfab's Amaranth units do not have)."""
    import re

    top = text.index("module accelerator(")
    head, body = text[:top], text[top:]
    hi = re.search(r"output \[(\d+):0\] o__payload;", body).group(1)
    body = body.replace(
        f"  wire [{hi}:0] o__payload;\n",
        f"  wire [{hi}:0] o__payload;\n  wire [{hi}:0] o__payload_raw;\n"
        f"  assign o__payload = o__payload_raw ^ 1;\n",
        1,
    )
    body = body.replace(".o__payload(o__payload),", ".o__payload(o__payload_raw),", 1)
    return head + body


@pytest.mark.verilator
def test_hand_edited_verilog_is_named_and_its_waves_written(tiny_acc, tmp_path, capsys):
    import shutil

    acc = tmp_path / "acc"
    shutil.copytree(tiny_acc, acc, ignore=shutil.ignore_patterns("verify*.json"))
    (acc / "accelerator.v").write_text(_xor_output_bit((acc / "accelerator.v").read_text()))
    waves = tmp_path / "waves"
    rc = main(["verify", str(acc), "--images", "4", "--chunk", "2", "--quiet", "--waves",
               str(waves)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 1, err
    rep = json.loads((acc / "verify.json").read_text())
    fm = rep["first_mismatch"]
    assert (
        fm["layer"] is None and "accelerator.v differs from what bitfab generates" in fm["detail"]
    )
    wave = Path(fm["waves"])
    assert wave.is_file() and wave.stat().st_size > 1000 and wave.parent == waves
    assert f"gtkwave {wave}" in err
