"""Foreign non-image models (examples/foreign_corpus.py, plain Brevitas) from QONNX to RTL:
``bitfab dataflow``, ``compile`` and ``verify --random 1000`` / ``--inputs FILE`` in Verilator,
0 mismatches against the golden model, across the three PE arrays and both exporters: a binary
classifier's single bipolar output, regression values, and an ArgMax tail."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bitfab.cli import main
from examples import foreign_corpus as fc

N = 1000
#: case -> (model, exporter, array, input source)
CASES = {
    "binary-parallel-random": ("binary", "legacy", "parallel", "random"),
    "regression-bitserial-file": ("regression", "dynamo", "bitserial", "file"),
    "argmax-bitfusion-random": ("argmax", "dynamo", "bitfusion", "random"),
    "avgpool-bitserial-random": ("avgpool", "legacy", "bitserial", "random"),
    "strided-bitfusion-random": ("strided", "dynamo", "bitfusion", "random"),
}


def _one_error_line(capsys) -> str:  # noqa: ANN001
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def _compile(foreign_models, tmp_path: Path, name: str, exporter: str, array: str) -> Path:
    path, _ = foreign_models[(name, exporter)]
    df, acc = tmp_path / "df", tmp_path / "acc"
    assert main(["dataflow", str(path), "--out", str(df)]) == 0
    assert main(["compile", str(df / "dataflow.onnx"), "--array", array, "--out", str(acc)]) == 0
    return acc


@pytest.mark.verilator
@pytest.mark.parametrize("case", CASES)
def test_foreign_head_zero_mismatches_in_verilator(foreign_models, tmp_path, case):
    name, exporter, array, source = CASES[case]
    acc = _compile(foreign_models, tmp_path, name, exporter, array)
    args = ["verify", str(acc), "--backend", "verilator", "--jobs", "2", "--quiet"]
    args += ["--chunk", "500"]
    if source == "random":
        args += ["--random", str(N), "--seed", "3"]
    else:
        shape = (N, *fc.INPUT_SHAPES[name])
        x = np.random.default_rng(3).normal(size=shape).astype(np.float32) * 2
        np.save(tmp_path / "x.npy", x)
        args += ["--inputs", str(tmp_path / "x.npy")]
    assert main(args) == 0
    rep = json.loads((acc / "verify.json").read_text())
    assert rep["passed"] and rep["images"] == N and rep["mismatching_words"] == 0
    assert rep["inputs"]["source"] == source and rep["inputs"]["count"] == N
    assert rep["ratio_cycles_per_image"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.verilator
def test_floor_average_pool_zero_mismatches_in_verilator(foreign_models, tmp_path):
    """A lossy average pool (2-bit TruncAvgPool2d made FLOOR: FINN QuantAvgPool, sum >> 2)."""
    from tests.dataflow.test_foreign_heads import floor_avgpool

    src, _ = foreign_models[("avgpool_lossy", "legacy")]
    path = floor_avgpool(src, tmp_path / "floor.onnx")
    df, acc = tmp_path / "df", tmp_path / "acc"
    assert main(["dataflow", str(path), "--out", str(df)]) == 0
    assert main(["compile", str(df / "dataflow.onnx"), "--out", str(acc)]) == 0
    assert main(["verify", str(acc), "--random", str(N), "--jobs", "2", "--quiet"]) == 0
    rep = json.loads((acc / "verify.json").read_text())
    assert rep["passed"] and rep["mismatching_words"] == 0 and rep["images"] == N


def test_verify_of_a_feature_model_needs_inputs(foreign_models, tmp_path, capsys):
    acc = _compile(foreign_models, tmp_path, "binary", "legacy", "parallel")
    capsys.readouterr()
    assert main(["verify", str(acc), "--quiet"]) == 2
    line = _one_error_line(capsys)
    assert "not a 28 x 28 image" in line and "--random N" in line and "--inputs" in line
    assert main(["verify", str(acc), "--random", "5", "--inputs", "x.npy", "--quiet"]) == 2
    assert "at most one of --inputs and --random" in _one_error_line(capsys)
    assert main(["verify", str(acc), "--random", "0", "--quiet"]) == 2
    assert "--random 0: must be at least 1" in _one_error_line(capsys)
    assert main(["verify", str(acc), "--inputs", str(tmp_path / "none.npy"), "--quiet"]) == 2
    assert "no such file" in _one_error_line(capsys)
    np.save(tmp_path / "bad.npy", np.zeros((4, 3), np.float32))
    assert main(["verify", str(acc), "--inputs", str(tmp_path / "bad.npy"), "--quiet"]) == 2
    assert "expected [N, 20]" in _one_error_line(capsys)
    assert not (acc / "verify.json").exists()
