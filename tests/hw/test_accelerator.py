"""The accelerator top (bitfab.hw.accelerator) in Amaranth's simulator against the golden model.

Model: the tiny trained tfc of ``tests/hw/test_compiler.tiny_dataflow``; the expected classes and
boundary tensors come from FINN's execution of the dataflow graph (bitfab.dataflow.golden).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bitfab.dataflow.golden import GoldenModel
from bitfab.errors import BitfabError
from bitfab.hw.accelerator import Accelerator, compile_accelerator, load_accelerator
from bitfab.hw.compiler import compile_graph, tensor_words
from bitfab.sim.amaranth_stream import run_streams
from bitfab.sim.verify import load_test_images
from tests.hw.test_compiler import tiny_dataflow


@pytest.fixture(scope="session")
def tiny_df(request) -> Path:
    return tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))


@pytest.fixture(scope="session")
def tiny_df2(request) -> Path:
    return tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")), "w2a2")


def _golden(df: Path, n: int):
    imgs = load_test_images(n)
    classes, tensors = GoldenModel(df).layer_tensors(imgs)
    return imgs, classes, tensors


@pytest.mark.parametrize(
    "model,array", [("w2a2", "parallel"), ("w2a2", "bitfusion"), ("w1a1", "bitserial")]
)
def test_accelerator_matches_golden_with_gaps_and_stalls(tiny_df, tiny_df2, model, array):
    df = tiny_df2 if model == "w2a2" else tiny_df
    imgs, classes, tensors = _golden(df, 3)
    g = compile_graph(df, array)
    acc = Accelerator(g)
    words = tensor_words(tensors["input"], g.input_fmt)
    run = run_streams(acc, {"i": words}, {"o": 3}, gap=0.2, stall=0.2, seed=3, max_cycles=10**5)
    assert run.outputs["o"] == classes.tolist()


def test_every_boundary_stream_has_the_golden_words(tiny_df):
    """Each unit alone, fed the golden input words of its layer, returns the golden output
    words (the same check ``bitfab verify`` uses to localise a mismatch)."""
    imgs, classes, tensors = _golden(tiny_df, 2)
    g = compile_graph(tiny_df, "parallel")
    prev = tensors["input"]
    for spec in g.layers:
        y = tensors[spec.golden_name] if spec.golden_name else prev
        x_words = tensor_words(prev, spec.fmt_in)
        y_words = tensor_words(y, spec.fmt_out)
        unit = spec.build()
        run = run_streams(unit, {"i": x_words}, {"o": len(y_words)}, max_cycles=10**5)
        assert run.outputs["o"] == y_words, spec.name
        prev = y
    assert tensor_words(prev, g.output_fmt) == classes.tolist()


def test_compile_writes_verilog_and_report(tiny_df, tmp_path):
    out = tmp_path / "acc"
    rep = compile_accelerator(tiny_df, out, "bitserial")
    text = (out / "accelerator.v").read_text()
    assert "module accelerator(" in text
    # no source-location attributes: the text depends on the design, not on the checkout
    import bitfab

    assert "(* src" not in text and str(Path(bitfab.__file__).parent) not in text
    assert (out / "dataflow.onnx").read_bytes() == Path(tiny_df).read_bytes()
    on_disk = json.loads((out / "accelerator.json").read_text())
    assert on_disk["performance"]["cycles_per_image"] == rep["performance"]["cycles_per_image"]
    g = compile_graph(tiny_df, "bitserial")
    assert [ly["name"] for ly in on_disk["layers"]] == [ly.name for ly in g.layers]
    for ly, spec in zip(on_disk["layers"], g.layers, strict=False):
        assert {"array", "PE", "SIMD", "memory_bits", "cycles", "luts"} <= set(ly)
        if spec.op_type == "MVAU":
            assert ly["array"] == "bitserial"
            mw, mh = spec.inits[0].shape
            w_bits = ly["input"]["bits"] and spec.attrs["weightDataType"]
            assert ly["memory_bits"] >= mw * mh  # at least one bit per weight
            assert w_bits
    assert len(on_disk["fifos"]) == len(g.layers) - 1
    acc, meta = load_accelerator(out)
    assert acc.fifo_depths == [f["depth"] for f in on_disk["fifos"]]


def test_recompiling_removes_results_of_the_old_design(tiny_df, tmp_path):
    out = tmp_path / "acc"
    compile_accelerator(tiny_df, out, "parallel")
    (out / "verify.json").write_text('{"passed": true, "cycles_per_image": 50176}')
    (out / "gate_level.json").write_text("{}")
    (out / "notes.txt").write_text("the user's own file")
    compile_accelerator(tiny_df, out, "bitserial")
    assert not (out / "verify.json").exists() and not (out / "gate_level.json").exists()
    assert (out / "notes.txt").read_text() == "the user's own file"
    assert json.loads((out / "accelerator.json").read_text())["arrays"] == ["bitserial"]


def test_compile_bad_input_leaves_nothing(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(BitfabError, match="not a readable ONNX"):
        compile_accelerator(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_compile_error_exit_code(tmp_path, capsys):
    from bitfab.cli import main

    rc = main(["compile", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert np.isscalar(rc)


@pytest.mark.slow
@pytest.mark.parametrize("family,target", [("tfc_mixed", 300), ("cnv_w2a2", 3000)])
def test_plain_brevitas_models_match_golden(tmp_path, family, target):
    """QONNX models built from plain Brevitas layers by the dataflow tests (not the bitfab
    zoo; the CNN has signed activations, four unpadded convolutions and two max-pools):
    train-free export -> bitfab dataflow -> accelerator, outputs equal FINN's."""
    import torch

    from bitfab.dataflow.build import build_dataflow
    from tests.dataflow import zoo_small

    torch.manual_seed(zoo_small.SEEDS[family])
    q = zoo_small.export(
        zoo_small.FAMILIES[family](), tmp_path / "q.onnx", seed=zoo_small.SEEDS[family]
    )
    build_dataflow(str(q), str(tmp_path / "df"), target_cycles=target)
    df = tmp_path / "df" / "dataflow.onnx"
    imgs, classes, tensors = _golden(df, 2)
    g = compile_graph(df, "bitfusion")
    acc = Accelerator(g)
    run = run_streams(
        acc, {"i": tensor_words(tensors["input"], g.input_fmt)}, {"o": 2}, max_cycles=10**6
    )
    assert run.outputs["o"] == classes.tolist()
    assert abs(run.cycles / acc.perf.total_cycles(2) - 1) <= 0.10
