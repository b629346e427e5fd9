"""Shared fixtures: small Brevitas models exported once per session, and their dataflow graphs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.dataflow import zoo_small


@pytest.fixture(scope="session")
def qonnx_models(tmp_path_factory) -> dict:
    """Lazily exported QONNX files: ``qonnx_models[family] -> Path``."""
    root = tmp_path_factory.mktemp("qonnx")
    cache: dict = {}

    class _Lazy(dict):
        def __missing__(self, name: str):
            torch.manual_seed(zoo_small.SEEDS[name])
            path = zoo_small.export(
                zoo_small.FAMILIES[name](), root / f"{name}.onnx", seed=zoo_small.SEEDS[name]
            )
            self[name] = path
            return path

    return _Lazy(cache)


@pytest.fixture(scope="session")
def dataflow_models(qonnx_models, tmp_path_factory) -> dict:
    """Lazily converted dataflow graphs: ``dataflow_models[family] -> (Path, report)``."""
    from bitfab.dataflow import make_dataflow

    root = tmp_path_factory.mktemp("dataflow")

    class _Lazy(dict):
        def __missing__(self, name: str):
            model, report = make_dataflow(qonnx_models[name])
            path = root / f"{name}_dataflow.onnx"
            model.save(str(path))
            self[name] = (path, report)
            return self[name]

    return _Lazy()


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    """uint8 [N, 28, 28]: 48 scikit-learn digits (upscaled by bitfab.models.data) + 16 random."""
    rng = np.random.default_rng(1234)
    rand = rng.integers(0, 256, size=(16, 28, 28), dtype=np.uint8)
    try:
        from bitfab.models.data import load_dataset

        digits = load_dataset("digits", "test")[0][:48].reshape(-1, 28, 28)
    except Exception:  # the models stage is optional for these tests
        digits = rng.integers(0, 256, size=(48, 28, 28), dtype=np.uint8)
    return np.concatenate([digits.astype(np.uint8), rand])


@pytest.fixture(scope="session")
def pad1_qonnx(tmp_path_factory):
    """``cnn_pad1`` from examples/foreign_models.py (plain Brevitas, two ``padding=1`` 3x3
    convolutions: FINN emits two FMPadding layers), trained for one short epoch on 600 digits
    (scikit-learn, upscaled) so that its classes vary, exported once per session."""
    from bitfab.models.data import load_dataset
    from examples import foreign_models as fm

    x, y = load_dataset("digits", "train")
    model = fm.train(fm.MODELS["cnn_pad1"](), x[:600], y[:600], epochs=1, batch=64, seed=11)
    return fm.export(model, tmp_path_factory.mktemp("pad1") / "cnn_pad1.onnx")
