"""Models bitfab did not define (plain Brevitas, ``examples/foreign_models.py``) from training to RTL.

The small-scale version of ``bench/foreign_models.py``: a plain PyTorch loop trains a narrowed
copy of the bench's MLP (and CNN) for one epoch on 400 sklearn digits, ``export_qonnx`` writes
QONNX, then bitfab's CLI runs ``dataflow``, ``compile`` and ``verify`` in Verilator on 150 test
digits: every output must equal the golden model's (FINN's execution of the dataflow graph) and
the measured cycles per image must be within 10 % of the compiler's estimate. The models' layers
and quantizers are the bench's; only the widths are smaller so the Verilator build stays short.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bitfab.cli import main
from bitfab.models.data import load_dataset
from examples import foreign_models as fm

IMAGES = 150

#: case -> (constructor of a narrowed bench model, folding target in cycles per image, array)
CASES = {
    "mlp": (lambda: fm.ForeignMLP(hidden=(32, 24)), 400, "bitserial"),
    "cnn": (lambda: fm.ForeignCNN(ch=(4, 8), padding=0), 2000, "bitfusion"),
}


def _build(case: str, tmp_path: Path) -> tuple[Path, torch.nn.Module, np.ndarray]:
    """Train (1 epoch, 400 digits) and export; returns the QONNX path, the model, test digits."""
    make, _, _ = CASES[case]
    x_train, y_train = load_dataset("digits", "train")
    x_test, _ = load_dataset("digits", "test")
    torch.manual_seed(1)
    model = fm.train(make(), x_train[:400], y_train[:400], 1, batch=32, seed=1)
    return fm.export(model, tmp_path / "model.onnx"), model, x_test


def _run(case: str, tmp_path: Path, capsys) -> dict:  # noqa: ANN001 - pytest fixture
    q, _, _ = _build(case, tmp_path)
    _, target, array = CASES[case]
    df, acc = tmp_path / "df", tmp_path / "acc"
    assert main(["dataflow", str(q), "--out", str(df), "--target-cycles", str(target)]) == 0, (
        capsys.readouterr().err
    )
    assert main(["compile", str(df / "dataflow.onnx"), "--array", array, "--out", str(acc)]) == 0
    rc = main(
        ["verify", str(acc), "--images", str(IMAGES), "--backend", "verilator", "--jobs", "2"]
        + ["--chunk", "75", "--dataset", "digits", "--quiet"]
    )
    rep = json.loads((acc / "verify.json").read_text())
    assert rc == 0, rep["first_mismatch"]
    return rep


def test_export_matches_torch(tmp_path):
    """The exported QONNX computes what the trained torch model computes (argmax, 60 digits)."""
    q, model, x_test = _build("mlp", tmp_path)
    agree = (fm.qonnx_predict(q, x_test[:60]) == fm.torch_predict(model, x_test[:60])).mean()
    assert agree >= 0.95, agree


@pytest.mark.verilator
def test_foreign_mlp_zero_mismatches_in_verilator(tmp_path, capsys):
    rep = _run("mlp", tmp_path, capsys)
    assert rep["passed"] and rep["first_mismatch"] is None
    assert rep["images"] == IMAGES and rep["backend"] == "verilator"
    assert abs(rep["ratio_cycles_per_image"] - 1) <= 0.10, rep


@pytest.mark.slow
@pytest.mark.verilator
def test_foreign_cnn_zero_mismatches_in_verilator(tmp_path, capsys):
    rep = _run("cnn", tmp_path, capsys)
    assert rep["passed"] and rep["first_mismatch"] is None
    assert rep["images"] == IMAGES and rep["backend"] == "verilator"
    assert abs(rep["ratio_cycles_per_image"] - 1) <= 0.10, rep
