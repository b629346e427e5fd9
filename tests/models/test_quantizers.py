"""QAT quantizer families (``bitfab train --quantizer``): the quantizers' arithmetic against
independent numpy/torch formulas, the 1-bit refusals, and each family's QONNX through FINN
streamlining, the accelerator compiler and RTL verification (200 images, zero mismatches)."""

from __future__ import annotations

import fcntl
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from brevitas.nn import QuantIdentity, QuantLinear

from bitfab.errors import BitfabError
from bitfab.models.config import QUANTIZER_MIN_BITS, make_config
from bitfab.models.quant import (
    FAMILIES,
    PACT_ALPHA_INIT,
    PACT_L2,
    LsqActQuant,
    LsqWeightQuant,
    PactAct,
    StatsActQuant,
    StatsWeightQuant,
)
from bitfab.models.zoo import build_model
from tests.hw.test_compiler import tiny_dataflow

ROOT = Path(__file__).resolve().parents[2]


def _int_levels(values: np.ndarray, step: float) -> np.ndarray:
    """``values / step`` checked to be integers (within float rounding); returns them."""
    k = values / step
    assert np.allclose(k, np.round(k), atol=1e-4), "values are not on the step grid"
    return np.round(k).astype(np.int64)


# --- lsq ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_lsq_weight_step_init_grid_and_gradient_scale(bits):
    torch.manual_seed(bits)
    layer = QuantLinear(40, 12, bias=False, weight_quant=LsqWeightQuant, weight_bit_width=bits)
    w = layer.weight.detach().numpy().copy()
    qp = 2 ** (bits - 1) - 1
    qw = layer.quant_weight()
    s = float(qw.scale.detach())
    assert s == pytest.approx(2 * np.abs(w).mean() / math.sqrt(qp), rel=1e-5)  # LSQ's init
    k = _int_levels(qw.value.detach().numpy(), s)
    assert np.abs(k).max() <= qp
    np.testing.assert_array_equal(k, np.clip(np.round(w / s), -qp, qp))
    # d(scale)/d(learned step) = g = 1/sqrt(N * Qp): LSQ's gradient scaling
    scaling = next(m for m in layer.modules() if type(m).__name__ == "LsqScaling")
    scaling.value.grad = None
    layer.quant_weight().scale.sum().backward()
    assert float(scaling.value.grad) == pytest.approx(1 / math.sqrt(w.size * qp), rel=1e-5)


def test_lsq_activation_counts_features_per_image():
    torch.manual_seed(0)
    act = QuantIdentity(act_quant=LsqActQuant, bit_width=3, return_quant_tensor=True)
    x = torch.randn(16, 24).relu()
    y = act(x)
    qp = 2**3 - 1
    s = float(y.scale)
    assert s == pytest.approx(2 * float(x.abs().mean()) / math.sqrt(qp), rel=1e-5)
    k = _int_levels(y.value.detach().numpy(), s)
    np.testing.assert_array_equal(k, np.clip(np.round(x.numpy() / s), 0, qp))
    scaling = next(m for m in act.modules() if type(m).__name__ == "LsqActScaling")
    act(x).scale.sum().backward()
    assert float(scaling.value.grad) == pytest.approx(1 / math.sqrt(24 * qp), rel=1e-5)


# --- pact ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [2, 4])
def test_pact_clip_gradient_levels_and_eval_equality(bits):
    torch.manual_seed(bits)
    act = PactAct(bits)
    alpha = 0.7
    with torch.no_grad():
        act.scaling().value.fill_(alpha)
    x = (torch.randn(64, 32) * 0.6).requires_grad_(True)
    act.train()
    y = act(x)
    y.sum().backward()
    xn = x.detach().numpy()
    n = 2**bits - 1
    # PACT: dy/dalpha = 1 where x >= alpha, 0 elsewhere (quantizer straight-through)
    assert float(act.scaling().value.grad) == pytest.approx(float((xn >= alpha).sum()), abs=1e-3)
    # dy/dx = 1 inside (0, alpha), 0 outside
    gx = x.grad.numpy()
    inside = (xn > 0) & (xn < alpha)
    assert np.all(gx[inside] == 1) and np.all(gx[(xn < 0) | (xn > alpha)] == 0)
    ref = np.clip(np.round(np.clip(xn, 0, alpha) / (alpha / n)), 0, n) * (alpha / n)
    np.testing.assert_allclose(y.detach().numpy(), ref, atol=1e-6)
    act.eval()  # the exported form: no separate clip, same values
    np.testing.assert_allclose(act(x).detach().numpy(), ref, atol=1e-6)


def test_pact_regularization_enters_the_zoo_model():
    model = build_model(make_config("tfc", 2, quantizer="pact"))
    reg = model.regularization()
    assert float(reg) == pytest.approx(3 * PACT_L2 * PACT_ALPHA_INIT**2)
    assert build_model(make_config("tfc", 2)).regularization() is None


# --- stats --------------------------------------------------------------------------------------
def test_stats_weight_scale_is_abs_max():
    torch.manual_seed(1)
    layer = QuantLinear(30, 10, bias=False, weight_quant=StatsWeightQuant, weight_bit_width=3)
    w = layer.weight.detach().numpy()
    qw = layer.quant_weight()
    assert float(qw.scale) == pytest.approx(np.abs(w).max() / 3, rel=1e-6)
    k = _int_levels(qw.value.detach().numpy(), float(qw.scale))
    np.testing.assert_array_equal(k, np.round(w / float(qw.scale)))


def test_stats_activation_scale_is_running_percentile_fixed_in_eval():
    torch.manual_seed(2)
    act = QuantIdentity(act_quant=StatsActQuant, bit_width=4, return_quant_tensor=True)
    act.train()
    batches = [torch.rand(32, 50) * (1 + i) for i in range(4)]
    run = None
    for xb in batches:  # batchnorm-style: first batch sets it, then momentum 0.1
        p = float(np.percentile(xb.numpy(), 99.99, method="higher"))
        run = p if run is None else 0.9 * run + 0.1 * p
        act(xb)
    act.eval()
    y = act(torch.rand(8, 50) * 10)
    assert float(y.scale) * 15 == pytest.approx(run, rel=2e-3)
    y2 = act(torch.rand(8, 50))
    assert float(y2.scale) == float(y.scale)  # fixed in eval mode


# --- the families and the 1-bit rule -----------------------------------------------------------
def test_family_table_matches_config_rules():
    assert set(FAMILIES) == set(QUANTIZER_MIN_BITS)
    for name, fam in FAMILIES.items():
        assert fam.min_bits == QUANTIZER_MIN_BITS[name] and fam.paper


@pytest.mark.parametrize("quantizer", ["stats", "lsq", "pact"])
@pytest.mark.parametrize("wbits, abits", [(1, 2), (2, 1), ([2, 2, 1, 2], 2)])
def test_families_refuse_1_bit_in_one_line(quantizer, wbits, abits):
    with pytest.raises(BitfabError) as e:
        make_config("tfc", wbits, abits, quantizer=quantizer)
    msg = str(e.value)
    assert "\n" not in msg and f"quantizer {quantizer!r} does not apply at 1 bit" in msg
    assert "--quantizer finn" in msg


def test_finn_applies_at_1_bit_and_unknown_or_float_refused():
    assert make_config("tfc", 1, quantizer="finn").quantizer == "finn"
    with pytest.raises(BitfabError, match="unknown quantizer 'dorefa'"):
        make_config("tfc", 2, quantizer="dorefa")
    with pytest.raises(BitfabError, match="does not apply to the float model"):
        make_config("tfc", "float", quantizer="lsq")


@pytest.mark.parametrize("quantizer", sorted(FAMILIES))
def test_zoo_cnn_of_each_family_trains_a_step_and_exports_its_checkpoint(quantizer, tmp_path):
    """One SGD step on cnv-s, then a state-dict round trip rebuilds the same function."""
    torch.manual_seed(0)
    cfg = make_config("cnv-s", 2, quantizer=quantizer)
    model = build_model(cfg)
    x = torch.rand(6, 1, 28, 28)
    loss = model(x).square().mean()
    reg = model.regularization()
    (loss if reg is None else loss + reg).backward()
    for p in model.parameters():
        if p.grad is not None:
            p.data -= 0.01 * p.grad
    model.eval()
    ref = model(x).detach()
    again = build_model(cfg)
    again.load_state_dict(model.state_dict())
    again.eval()
    torch.testing.assert_close(again(x).detach(), ref)


# --- each family through dataflow, compile and RTL verification ----------------------------------
VERSION = "v1"


def _family_dataflow(cache_root: Path, quantizer: str) -> Path:
    """dataflow.onnx of a small tfc trained with ``quantizer`` (cached, file-locked): W2A2, or
    for ``finn`` the W1A1 model of ``tests/hw/test_compiler.tiny_dataflow``."""
    if quantizer == "finn":  # FINN's bipolar form: the tiny W1A1 tfc other tests build too
        return tiny_dataflow(cache_root, "w1a1")
    out = cache_root / f"qat-{quantizer}-{VERSION}"
    df = out / "df" / "dataflow.onnx"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"qat-{quantizer}-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if df.exists():
            return df
        py = [sys.executable, "-m", "bitfab"]
        steps = [
            [*py, "train", "--model", "tfc", "--wbits", "2", "--quantizer", quantizer,
             "--epochs", "1", "--limit", "300", "--dataset", "digits", "--out",
             str(out / "train"), "--quiet", "--check-images", "20"],
            [*py, "dataflow", str(out / "train" / "model.onnx"), "--out", str(out / "df"),
             "--target-cycles", "400"],
        ]  # fmt: skip
        for cmd in steps:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, f"{' '.join(cmd[2:4])} failed:\n{done.stderr}"
    return df


@pytest.mark.verilator
@pytest.mark.parametrize("quantizer", sorted(FAMILIES))
def test_family_qonnx_streamlines_compiles_and_verifies(quantizer, request, tmp_path):
    from bitfab.hw.accelerator import compile_accelerator
    from bitfab.sim.verify import verify

    df = _family_dataflow(Path(request.config.cache.mkdir("bitfab_accel")), quantizer)
    acc = tmp_path / "acc"
    compile_accelerator(df, acc, "bitserial")  # as tests/sim/test_verify.py: cached builds
    rep = verify(acc, 200, "verilator", chunk=200, write=False)
    assert rep["passed"], rep["first_mismatch"]
    assert rep["images"] == 200
