"""QONNX export of every zoo model at several precisions: qonnx execution must match torch."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch

from bitfab.models.config import ARCHS, make_config
from bitfab.models.data import load_dataset, to_model_input
from bitfab.models.export import check_export, export_model
from bitfab.models.zoo import build_model

# FINN's streamlining handles these (Quant/BipolarQuant become thresholds, BN/scalar ops absorb).
FINN_OPS = {
    "Quant",
    "BipolarQuant",
    "MatMul",
    "Conv",
    "BatchNormalization",
    "MaxPool",
    "Flatten",
    "Sub",
}


def _mixed(model: str) -> dict:
    a = ARCHS[model]
    w = [(1, 2, 4, 8)[i % 4] for i in range(a.n_weight_layers)]
    ab = [(4, 1, 2)[i % 3] for i in range(a.n_acts)]
    return {"wbits": w, "abits": ab, "in_bits": 8 if a.convs else 1}


PRECISIONS = {
    "w1a1": {"wbits": 1, "abits": 1},
    "w2a2": {"wbits": 2, "abits": 2},
    "w4a4": {"wbits": 4, "abits": 4, "in_bits": 4},
    "mixed": None,
}


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    x, _ = load_dataset("digits", "test")
    return to_model_input(x[:24])


def _randomized(cfg, seed: int):
    """A model with random weights and random BatchNorm statistics/affines (eval mode)."""
    torch.manual_seed(seed)
    m = build_model(cfg)
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = mod.num_features
            # Centre the BN input near zero and scale it so the quantizers see all their levels.
            mod.running_mean.copy_(torch.randn(n, generator=g) * 2)
            mod.running_var.copy_(torch.rand(n, generator=g) * 20 + 5)
            mod.weight.data.copy_(torch.randn(n, generator=g))
            mod.bias.data.copy_(torch.randn(n, generator=g) * 0.3)
    return m.eval()


@pytest.mark.parametrize("precision", sorted(PRECISIONS))
@pytest.mark.parametrize("model", sorted(ARCHS))
def test_export_matches_torch(tmp_path, images, model, precision):
    kw = PRECISIONS[precision] or _mixed(model)
    cfg = make_config(model, **kw)
    m = _randomized(cfg, seed=zlib.crc32(f"{model}-{precision}".encode()) % 1000)
    path = tmp_path / "model.onnx"
    export_model(m, path)
    res = check_export(m, path, images, batch=len(images))
    assert res["images"] == len(images)
    assert res["disagree_not_tie"] == 0, res
    with torch.no_grad():
        ref = m(torch.from_numpy(images)).numpy()
    assert res["max_abs_logit_diff"] <= 1e-4 * max(1.0, float(np.abs(ref).max())), res
    # The logits must not be trivial (all classes equal): the check would then prove nothing.
    assert (ref.max(1) - ref.min(1) > 0).all()

    from qonnx.core.modelwrapper import ModelWrapper

    g = ModelWrapper(str(path))
    ops = {n.op_type for n in g.graph.node}
    assert ops <= FINN_OPS, ops - FINN_OPS
    # Weight quantizers carry the configured bit widths, in layer order (read from the graph).
    weight_ops = [n for n in g.graph.node if n.op_type in ("MatMul", "Conv")]
    got = []
    for n in weight_ops:
        q = g.find_producer(n.input[1])
        got.append(1 if q.op_type == "BipolarQuant" else int(g.get_initializer(q.input[3])))
    assert got == list(cfg.wbits)
    # Activation quantizers after every BN: bipolar at 1 bit, else Quant with the configured width.
    acts = []
    for n in g.graph.node:
        if n.op_type == "BatchNormalization":
            q = g.find_consumer(n.output[0])
            acts.append(1 if q.op_type == "BipolarQuant" else int(g.get_initializer(q.input[3])))
    assert acts == list(cfg.abits)


def test_check_export_detects_a_changed_model(tmp_path, images):
    cfg = make_config("tfc", 2, 2, in_bits=8)
    m = _randomized(cfg, seed=3)
    path = tmp_path / "model.onnx"
    export_model(m, path)
    with torch.no_grad():
        m.weight_layers()[-1].weight.mul_(-1)  # flip the classifier after export
    res = check_export(m, path, images)
    assert res["disagree_not_tie"] > 0 and not res["ok"]
    assert res["max_abs_logit_diff"] > 0
