"""Per-layer sensitivity: Hutchinson's trace against exact Hessians, bitfab's quantizers against
Brevitas, and the HAWQ-V2 / measured-loss tables of a small float zoo model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from bitfab.errors import BitfabError
from bitfab.models.config import make_config
from bitfab.models.sensitivity import (
    FloatModel,
    hessian_sensitivity,
    hutchinson_trace,
    load_float_checkpoint,
    loss_sensitivity,
    quantize_act,
    quantize_weight,
)
from bitfab.models.zoo import build_model


def test_hutchinson_diagonal_quadratic_is_exact():
    """For a diagonal Hessian v^T H v = trace(H) for every Rademacher v: no error at all."""
    rng = np.random.default_rng(1)
    d = torch.tensor(rng.normal(size=37))
    x = torch.zeros(37, dtype=torch.float64, requires_grad=True)
    ((tr, se),) = hutchinson_trace(lambda: 0.5 * (d * x * x).sum() + x.sum(), [x], samples=5)
    assert tr == pytest.approx(float(d.sum()), abs=1e-9)
    assert se == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hutchinson_dense_quadratics_per_block(seed):
    """Two tensors with dense, coupled Hessian: loss = 1/2 z^T A z with z = (x, y). Each block's
    estimate is within 5 standard errors of its exact trace, and the error shrinks with the
    number of samples as 1/sqrt(n)."""
    rng = np.random.default_rng(seed)
    n1, n2 = 6, 9
    m = rng.normal(size=(n1 + n2, n1 + n2))
    a = torch.tensor(m @ m.T)  # symmetric positive definite, with cross-block terms
    x = torch.tensor(rng.normal(size=n1), requires_grad=True)
    y = torch.tensor(rng.normal(size=(3, 3)), requires_grad=True)

    def loss():
        z = torch.cat([x, y.reshape(-1)])
        return 0.5 * z @ a @ z

    est = hutchinson_trace(loss, [x, y], samples=4000, seed=seed)
    exact = [float(torch.trace(a[:n1, :n1])), float(torch.trace(a[n1:, n1:]))]
    for (tr, se), ex in zip(est, exact, strict=True):
        assert se > 0
        assert abs(tr - ex) < 5 * se
        assert abs(tr - ex) < 0.1 * ex


def test_hutchinson_small_network_against_autograd_hessian():
    """A 2-layer tanh network's cross-entropy: the per-layer estimates against the exact traces
    of torch.autograd.functional.hessian on each weight."""
    torch.manual_seed(0)
    x = torch.randn(40, 5, dtype=torch.float64)
    t = torch.randint(0, 3, (40,))
    w1 = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def loss_of(a, b):
        return nn.functional.cross_entropy(torch.tanh(x @ a.T) @ b.T, t)

    est = hutchinson_trace(lambda: loss_of(w1, w2), [w1, w2], samples=3000, seed=3)
    h1 = torch.autograd.functional.hessian(lambda a: loss_of(a, w2), w1.detach())
    h2 = torch.autograd.functional.hessian(lambda b: loss_of(w1, b), w2.detach())
    exact = [float(torch.trace(h1.reshape(20, 20))), float(torch.trace(h2.reshape(12, 12)))]
    for (tr, se), ex in zip(est, exact, strict=True):
        assert abs(tr - ex) < 5 * se + 1e-9


def test_hutchinson_needs_a_sample():
    x = torch.zeros(3, requires_grad=True)
    with pytest.raises(BitfabError, match="at least 1 sample"):
        hutchinson_trace(lambda: (x * x).sum(), [x], samples=0)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
def test_weight_quantizer_matches_brevitas(bits):
    """quantize_weight = the Brevitas WeightQuant the zoo trains with (random weights)."""
    torch.manual_seed(bits)
    cfg = make_config("tfc", wbits=bits, abits=2)
    layer = build_model(cfg).weight_layers()[1]
    with torch.no_grad():
        layer.weight.copy_(torch.randn_like(layer.weight) * 0.7)
    ref = layer.quant_weight().value.detach()
    assert torch.allclose(quantize_weight(layer.weight.detach(), bits), ref, atol=1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_act_quantizer_matches_brevitas(bits):
    """quantize_act = the zoo's hidden activation quantizer (QuantIdentity) on random inputs."""
    torch.manual_seed(10 + bits)
    act = build_model(make_config("tfc", wbits=2, abits=bits)).linear_features[2].eval()
    pre = torch.randn(200) * 1.5
    ref = act(pre)
    ref = ref.value if hasattr(ref, "value") else ref
    assert torch.allclose(quantize_act(pre, bits), ref.detach(), atol=1e-6)


@pytest.fixture(scope="module")
def tiny_float():
    """A float tfc with random weights and BatchNorm statistics, and a batch of digits."""
    from bitfab.models.data import load_dataset, to_model_input

    torch.manual_seed(0)
    cfg = make_config("tfc", wbits="float")
    model = build_model(cfg)
    xs, ys = load_dataset("digits", "train")
    x = torch.from_numpy(to_model_input(xs[:64]))
    y = torch.from_numpy(ys[:64])
    model.train()
    with torch.no_grad():
        for m in model.weight_layers():
            m.weight.mul_(3.0)  # spread the weights over the quantizer range
        model(x)  # BatchNorm statistics of this batch
    model.eval()
    return FloatModel(model, 0.0, cfg), x, y


def test_hessian_sensitivity_last_layer_against_exact(tiny_float):
    """The classifier's mean trace against the exact Hessian (640 x 640) of the same loss, and the
    table = mean trace x ||Q_b(W) - W||^2 for each candidate."""
    fm, x, y = tiny_float
    sens = hessian_sensitivity(fm, x, y, bits=(1, 2, 8), samples=300, seed=1)
    last = fm.weight_layers()[-1]
    w0 = last.weight.detach().clone()

    def loss_of(w):
        with torch.nn.utils.stateless._reparametrize_module(
            fm.model, {"linear_features.9.weight": w}
        ):
            return fm.loss(x, y)

    name = [k for k, p in fm.model.named_parameters() if p is last.weight][0]
    assert name == "linear_features.9.weight"
    h = torch.autograd.functional.hessian(loss_of, w0)
    exact = float(torch.trace(h.reshape(w0.numel(), w0.numel()))) / w0.numel()
    est = sens.traces["weight"][-1]
    assert est == pytest.approx(exact, rel=0.15)
    for b in (1, 2, 8):
        pert = float(((quantize_weight(w0, b) - w0) ** 2).sum())
        assert sens.weight[-1][b] == pytest.approx(est * pert, rel=1e-9)
    assert len(sens.weight) == 4 and len(sens.act) == 3
    # a finer quantizer perturbs less: 8 bits is the least sensitive choice of every tensor
    for row in sens.weight + sens.act:
        assert row[8] < row[2]
    assert all(t > 0 for t in sens.traces["act"])


def test_loss_sensitivity_measures_one_tensor_at_a_time(tiny_float):
    """Each entry equals the loss change measured by hand with that one tensor quantized; the
    model is left unchanged afterwards."""
    fm, x, y = tiny_float
    before = [m.weight.detach().clone() for m in fm.weight_layers()]
    with torch.no_grad():
        base = float(fm.loss(x, y))
    sens = loss_sensitivity(fm, x, y, bits=(1, 4))
    for m, w in zip(fm.weight_layers(), before, strict=True):
        assert torch.equal(m.weight, w)
    with torch.no_grad():
        assert float(fm.loss(x, y)) == base
    m = fm.weight_layers()[1]
    with torch.no_grad():
        m.weight.copy_(quantize_weight(before[1], 1))
        by_hand = float(fm.loss(x, y)) - base
        m.weight.copy_(before[1])
    assert sens.weight[1][1] == pytest.approx(max(0.0, by_hand), abs=1e-6)
    assert sens.weight[1][1] > 0  # binarizing a float layer costs loss
    act = fm.act_modules()[2]
    h = act.register_forward_hook(lambda _m, inp, _o: quantize_act(inp[0], 1))
    with torch.no_grad():
        by_hand_a = float(fm.loss(x, y)) - base
    h.remove()
    assert sens.act[2][1] == pytest.approx(max(0.0, by_hand_a), abs=1e-6)
    assert all(math.isfinite(v) for row in sens.weight + sens.act for v in row.values())


def test_load_float_checkpoint_refuses_bad_files(tmp_path):
    with pytest.raises(BitfabError, match="no float checkpoint"):
        load_float_checkpoint(tmp_path)
    (tmp_path / "checkpoint.pt").write_bytes(b"junk")
    with pytest.raises(BitfabError, match="unreadable checkpoint"):
        load_float_checkpoint(tmp_path)
    cfg = make_config("tfc", wbits=2)
    torch.save({"cfg": cfg.to_dict(), "model": build_model(cfg).state_dict()}, tmp_path / "q.pt")
    with pytest.raises(BitfabError, match="not a float one"):
        load_float_checkpoint(tmp_path / "q.pt")


def test_normalize_weight_range_keeps_the_function():
    """Weights rescaled to max |w| = 1 per layer; BatchNorm statistics and the returned logit
    factor make the loss (and logits x factor) the same as before."""
    from bitfab.models.data import load_dataset, to_model_input
    from bitfab.models.sensitivity import normalize_weight_range

    torch.manual_seed(5)
    for model_name in ("tfc", "cnv-s"):
        model = build_model(make_config(model_name, wbits="float"))
        xs, _ = load_dataset("digits", "train")
        x = torch.from_numpy(to_model_input(xs[:32]))
        model.train()
        with torch.no_grad():
            model(x)
        model.eval()
        with torch.no_grad():
            before = model(x)
            factor = normalize_weight_range(model)
            after = model(x)
        for m in model.weight_layers():
            assert float(m.weight.abs().max()) == pytest.approx(1.0)
        assert torch.allclose(after * factor, before, rtol=1e-4, atol=1e-5)
