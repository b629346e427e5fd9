"""PTQ (bitfab.models.ptq and its helpers) on a tiny float tfc trained once on the digits set.

Checks: the exact rescalings keep the float model's outputs; range searches against brute-force
numpy; every method keeps accuracy at W8A8; bias correction removes the mean output shift;
GPTQ and AdaRound reconstruct a layer's output better than round-to-nearest; `bitfab quantize`
writes a QONNX that agrees with torch; bad input gives one error line, exit 2, nothing written.
"""

from __future__ import annotations

import copy
import fcntl
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bitfab.cli import main
from bitfab.errors import BitfabError
from bitfab.models.config import make_config
from bitfab.models.data import load_dataset, to_model_input
from bitfab.models.ptq import (
    METHODS,
    bias_correct,
    calibration_set,
    check_method,
    load_float_checkpoint,
    ptq_model,
    quantize,
    set_ranges,
)
from bitfab.models.ptq_fold import bn_to_affine, hidden_blocks, scale_activation, scale_weight_rows
from bitfab.models.ptq_ranges import act_clip, quant_weight, weight_scales
from bitfab.models.train import evaluate, train
from bitfab.models.zoo import build_model

VERSION = "v1"


def tiny_float(cache_root: Path, model: str = "tfc") -> Path:
    """``checkpoint.pt`` of a float ``model`` trained 2 epochs on 600 digits images (cached)."""
    out = cache_root / f"float-{model}-{VERSION}"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"float-{model}-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "metrics.json").exists():
            train(
                make_config(model, "float"),
                out,
                epochs=2,
                dataset="digits",
                limit=600,
                progress=False,
            )
    return out / "checkpoint.pt"


@pytest.fixture(scope="session")
def float_ckpt(request) -> Path:
    return tiny_float(Path(request.config.cache.mkdir("bitfab_ptq")))


@pytest.fixture(scope="session")
def digits():
    xtr, _ = load_dataset("digits", "train")
    xte, yte = load_dataset("digits", "test")
    return (
        torch.from_numpy(to_model_input(xtr[:256])),
        torch.from_numpy(to_model_input(xte)),
        torch.from_numpy(yte),
    )


def _random_float_model(model: str, seed: int):
    torch.manual_seed(seed)
    fm = build_model(make_config(model, "float")).eval()
    for _, bn, _ in hidden_blocks(fm):
        if bn is not None:
            n = bn.num_features
            bn.weight.data = torch.rand(n) + 0.5
            bn.bias.data = torch.randn(n) * 0.3
            bn.running_mean = torch.randn(n) * 0.2
            bn.running_var = torch.rand(n) + 0.1
    return fm


@pytest.mark.parametrize("model,seed", [("tfc", 0), ("tfc", 1), ("cnv-s", 2)])
def test_rescalings_keep_the_float_model(model, seed):
    fm = _random_float_model(model, seed)
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = fm(x)
    g = copy.deepcopy(fm)
    blocks = hidden_blocks(g)
    gen = torch.Generator().manual_seed(seed + 10)
    for layer, bn, _ in blocks:
        if bn is not None:
            bn_to_affine(bn)
        s = torch.rand(layer.weight.shape[0], generator=gen) + 0.2
        scale_weight_rows(layer, bn, s if bn is not None else s[:1].expand_as(s))
    with torch.no_grad():
        got = g(x)
    cls_scale = float(hidden_blocks(fm)[-1][0].weight.detach().flatten()[0]) / float(
        blocks[-1][0].weight.detach().flatten()[0]
    )
    np.testing.assert_allclose(got.numpy() * cls_scale, ref.numpy(), rtol=1e-4, atol=1e-4)
    assert torch.equal(got.argmax(1), ref.argmax(1))


def test_activation_clip_below_one_is_exact_where_activations_stay_below():
    fm = _random_float_model("tfc", 3)
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    g = copy.deepcopy(fm)
    for _, bn, _ in hidden_blocks(g):
        if bn is not None:
            bn_to_affine(bn)
    with torch.no_grad():
        ref = g(x)
    blocks = hidden_blocks(g)
    acts = {}
    h = blocks[0][2].register_forward_hook(lambda m, i, o: acts.setdefault(0, o))
    with torch.no_grad():
        g(x)
    h.remove()
    c = acts[0].amax(0).clamp_min(1e-3)  # per-channel max on x: exact on x
    scale_activation(blocks[0][1], blocks[1][0], c)
    with torch.no_grad():
        np.testing.assert_allclose(g(x).numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_act_clip_against_numpy_grid(bits):
    rng = np.random.default_rng(bits)
    x = np.clip(rng.exponential(0.15, 5000), 0, 1).astype(np.float32)
    t = torch.from_numpy(x)
    assert act_clip(t, bits, "minmax") == pytest.approx(float(x.max()))
    c = act_clip(t, bits, "mse")
    n = 2**bits - 1

    def err(c):
        return np.mean((np.clip(np.round(x / c * n), 0, n) * c / n - x) ** 2)

    grid = [x.max() * i / 60 for i in range(1, 61)]
    assert err(c) <= min(err(g) for g in grid) * (1 + 1e-5)
    assert err(c) <= err(float(x.max())) * (1 + 1e-6)


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_weight_scales_and_grid(bits):
    rng = np.random.default_rng(bits)
    w = torch.from_numpy(rng.normal(0, 0.1, (8, 50)).astype(np.float32))
    mm = weight_scales(w, bits, "minmax", per_channel=True)
    if bits == 1:
        np.testing.assert_allclose(mm.numpy(), np.abs(w.numpy()).mean(1), rtol=1e-6)
        q = quant_weight(w, mm[:, None], 1)
        assert set(np.unique(np.abs(q.numpy() / mm[:, None].numpy())).round(5)) == {1.0}
        return
    np.testing.assert_allclose(mm.numpy(), np.abs(w.numpy()).max(1), rtol=1e-6)
    mse = weight_scales(w, bits, "mse", per_channel=True)
    n = 2 ** (bits - 1) - 1
    for r in range(8):
        q = quant_weight(w[r], mse[r], bits).numpy()
        k = q / float(mse[r]) * n
        np.testing.assert_allclose(k, np.round(k), atol=1e-4)
        assert np.abs(k).max() <= n + 1e-4
        e_mse = np.mean((q - w[r].numpy()) ** 2)
        e_mm = np.mean((quant_weight(w[r], mm[r], bits).numpy() - w[r].numpy()) ** 2)
        assert e_mse <= e_mm * (1 + 1e-6)
    one = weight_scales(w, bits, "minmax", per_channel=False)
    assert one.shape == (1,) and float(one) == pytest.approx(float(w.abs().max()))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_keeps_accuracy_at_w8a8(float_ckpt, digits, method):
    fm, _, _ = load_float_checkpoint(float_ckpt)
    x, xte, yte = digits
    f_acc = evaluate(fm, xte, yte)
    qm, _ = ptq_model(fm, make_config("tfc", 8, 8), method, x)
    assert f_acc > 0.5  # the tiny model learned something
    assert evaluate(qm, xte, yte) >= f_acc - 0.02


def _pre_bn_mean(model, x, i):
    got = []
    layer = hidden_blocks(model)[i][0]
    h = layer.register_forward_hook(lambda m, inp, o: got.append(o.mean(0)))
    with torch.no_grad():
        model(x)
    h.remove()
    return got[0]


def test_bias_correction_removes_the_mean_shift(float_ckpt, digits):
    fm, _, _ = load_float_checkpoint(float_ckpt)
    x = digits[0]
    qcfg = make_config("tfc", 2, 2)
    f = copy.deepcopy(fm)
    for _, bn, _ in hidden_blocks(f):
        bn is not None and bn_to_affine(bn)
    set_ranges(f, x, qcfg, "mse")
    qm = build_model(qcfg).eval()
    qm.load_state_dict(f.state_dict())
    # the first layer's input is the exact 8-bit pixel: its shift comes from weight rounding only
    shift = _pre_bn_mean(qm, x, 0) - _pre_bn_mean(f, x, 0)
    bn0 = hidden_blocks(qm)[0][1]
    b_before = bn0.bias.detach().clone()
    bias_correct(qm, f, x)
    np.testing.assert_allclose(
        (b_before - bn0.bias.detach()).numpy(), (bn0.weight.detach() * shift).numpy(), atol=1e-5
    )
    assert float(shift.abs().max()) > 0  # there was something to correct


@pytest.mark.parametrize("method", ["gptq", "adaround"])
def test_rounding_methods_beat_round_to_nearest_on_the_first_layer(float_ckpt, digits, method):
    fm, _, _ = load_float_checkpoint(float_ckpt)
    x = digits[0]
    qcfg = make_config("tfc", 2, 2)
    rtn, _ = ptq_model(fm, qcfg, "mse", x)
    opt, _ = ptq_model(fm, qcfg, method, x)
    w_float = hidden_blocks(rtn)[0][0].weight.detach()  # normalized float weights (same ranges)
    xin = x.flatten(1)
    target = xin @ w_float.t()

    def err(m):
        wq = m.weight_layers()[0].quant_weight().value.detach()
        k = wq * 1.0  # scale 1: values k / 1 on the 2-bit grid {-1, 0, 1}
        assert set(np.unique(k.numpy())) <= {-1.0, 0.0, 1.0}
        return float(((xin @ wq.t() - target) ** 2).mean())

    assert err(opt) < err(rtn)


def test_quantize_writes_qonnx_and_metrics(float_ckpt, tmp_path):
    out = tmp_path / "q"
    m = quantize(
        float_ckpt, out, wbits="4,4,4,2", abits=4, method="mse", calib=128, dataset="digits",
        check_images=100, progress=False,
    )  # fmt: skip
    assert (out / "model.onnx").is_file()
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk["config"]["wbits"] == [4, 4, 4, 2] and on_disk["precision"] == "mixed"
    assert on_disk["test_accuracy"] == m["test_accuracy"] and m["export_check"]["ok"]
    assert m["export_check"]["images"] == 100


def _cli_error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_bad_input_errors(float_ckpt, tmp_path, capsys, request):
    out = tmp_path / "o"
    base = ["quantize", str(float_ckpt), "--out", str(out), "--dataset", "digits", "--quiet"]
    assert "empty" in _cli_error([*base, "--wbits", "4", "--calib", "0"], capsys)
    assert "at most" in _cli_error([*base, "--wbits", "4", "--calib", "99999"], capsys)
    err = _cli_error([*base, "--wbits", "1", "--abits", "2", "--method", "gptq"], capsys)
    assert "gptq" in err and "1-bit" in err
    assert "adaround" in _cli_error(
        [*base, "--wbits", "1,2,2,2", "--abits", "2", "--method", "adaround"], capsys
    )
    assert "2+ bits" in _cli_error([*base, "--wbits", "2", "--abits", "1"], capsys)
    assert "not 'cnv-s'" in _cli_error([*base, "--wbits", "4", "--model", "cnv-s"], capsys)
    assert "9" in _cli_error([*base, "--wbits", "9"], capsys)
    assert not out.exists()
    # a QAT checkpoint is not a float one
    qat = tmp_path / "qat"
    train(make_config("tfc", 2, 2), qat, epochs=1, dataset="digits", limit=64,
          check_images=10, progress=False)  # fmt: skip
    err = _cli_error(["quantize", str(qat), "--wbits", "4", "--out", str(out)], capsys)
    assert "w2a2 QAT model, not a float one" in err
    # a checkpoint whose config names another model than its weights are for
    ck = torch.load(float_ckpt, map_location="cpu", weights_only=False)
    ck["cfg"] = {**ck["cfg"], "model": "sfc"}
    torch.save(ck, tmp_path / "mislabelled.pt")
    err = _cli_error(
        ["quantize", str(tmp_path / "mislabelled.pt"), "--wbits", "4", "--out", str(out)], capsys
    )
    assert "do not fit zoo model 'sfc'" in err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert "unreadable" in _cli_error(
        ["quantize", str(bad), "--wbits", "4", "--out", str(out)], capsys
    )
    assert not out.exists()


def test_calibration_set_and_check_method_directly():
    with pytest.raises(BitfabError, match="empty"):
        calibration_set(0, dataset="digits")
    x = calibration_set(10, dataset="digits", seed=1)
    assert x.shape == (10, 1, 28, 28) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert torch.equal(x, calibration_set(10, dataset="digits", seed=1))
    with pytest.raises(BitfabError, match="unknown PTQ method"):
        check_method("round", make_config("tfc", 4, 4))
    check_method("gptq", make_config("tfc", 2, 2))  # allowed
