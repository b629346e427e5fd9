"""ZeroQ data-free calibration (bitfab.models.datafree) on the tiny float tfc of test_ptq."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bitfab.errors import BitfabError
from bitfab.models import ptq
from bitfab.models.datafree import bn_layers, bn_loss, synthesize
from bitfab.models.ptq import load_float_checkpoint, quantize
from tests.models.test_ptq import float_ckpt  # noqa: F401 - session fixture


def _numpy_bn_loss(model, x) -> float:
    """The ZeroQ loss recomputed with numpy from captured BatchNorm inputs (independent)."""
    inputs = []
    hooks = [
        bn.register_forward_hook(lambda m, i, o: inputs.append(i[0])) for bn in bn_layers(model)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    total = 0.0
    for bn, z in zip(bn_layers(model), inputs, strict=True):
        z = z.numpy().astype(np.float64)
        mu, sd = z.mean(0), np.sqrt(z.var(0) + bn.eps)
        total += np.linalg.norm(mu - bn.running_mean.numpy())
        total += np.linalg.norm(sd - np.sqrt(bn.running_var.numpy() + bn.eps))
    return total


def test_loss_matches_numpy_and_optimisation_lowers_it(float_ckpt):  # noqa: F811
    fm, _, _ = load_float_checkpoint(float_ckpt)
    x0 = torch.rand(32, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float(bn_loss(fm, x0)) == pytest.approx(_numpy_bn_loss(fm, x0), rel=1e-4)
    x, info = synthesize(fm, 32, steps=150, seed=0)
    assert x.shape == (32, 1, 28, 28)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert info["loss_final"] == pytest.approx(_numpy_bn_loss(fm, x), rel=1e-4)
    assert info["loss_final"] < 0.5 * _numpy_bn_loss(fm, x0)
    x2, _ = synthesize(fm, 32, steps=150, seed=0)
    assert torch.equal(x, x2)  # seeded
    assert all(p.requires_grad for p in fm.parameters())  # model left as it was


def test_too_few_images_is_an_error(float_ckpt):  # noqa: F811
    fm, _, _ = load_float_checkpoint(float_ckpt)
    with pytest.raises(BitfabError, match="at least 2"):
        synthesize(fm, 1)


def test_synthetic_calibration_reads_no_training_data(float_ckpt, tmp_path, monkeypatch):  # noqa: F811
    real_load = ptq.load_dataset

    def only_test(name, split, data_dir=None):
        assert split == "test", "data-free calibration read the training split"
        return real_load(name, split, data_dir)

    monkeypatch.setattr(ptq, "load_dataset", only_test)
    m = quantize(
        float_ckpt, tmp_path / "q", wbits=8, abits=8, method="mse", calib="synthetic",
        synthetic_images=64, dataset="digits", check_images=50, progress=False,
    )  # fmt: skip
    assert m["calibration"]["kind"] == "synthetic" and m["calibration"]["images"] == 64
    assert m["test_accuracy"] >= m["float_accuracy"] - 0.03
    assert json.loads((tmp_path / "q" / "metrics.json").read_text())["export_check"]["ok"]
