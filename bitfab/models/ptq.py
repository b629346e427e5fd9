"""Post-training quantization (PTQ) of a float zoo checkpoint into a QONNX model like QAT's.

``quantize`` reads ``checkpoint.pt`` of ``bitfab train --wbits float``, quantizes the model to
``wbits``/``abits`` with one of :data:`METHODS` using calibration images (real training images
or a ZeroQ synthetic set, :mod:`bitfab.models.datafree`), and writes ``model.onnx`` (QONNX) and
``metrics.json`` into ``out_dir`` through :func:`bitfab.staging.staged_output`.

The quantized model is the zoo's QAT model (:mod:`bitfab.models.quant`: constant per-tensor
scales, so FINN turns it into thresholds). Ranges are put into the float model by exact
rescalings (:mod:`bitfab.models.ptq_fold`): per-channel weight scales go into the BatchNorm after
the layer, activation clips into the BatchNorm before and the weights after. Methods:

- ``minmax``: activation clip = max on the calibration set; weight scale = max ``|w|`` per channel.
- ``mse``: clips and scales from an MSE grid search (Banner et al. 2019, ACIQ-style clipping).
- ``bias-correction``: ``mse`` then empirical bias correction (Nagel et al. 2019, DFQ): the mean
  output shift of each hidden layer on the calibration set is taken out of its BatchNorm bias.
- ``equalize``: cross-layer equalization (Nagel et al. 2019, DFQ) of activation channel ranges
  against the next layer's weight columns, then ``mse``.
- ``gptq``: ``mse`` ranges, GPTQ weight rounding (Frantar et al. 2023; Brevitas ``gptq_mode``).
- ``adaround``: ``mse`` ranges, AdaRound weight rounding (Nagel et al. 2020).

Activations at 1 bit are refused (the float model's activation is a clipped ReLU in [0, 1]; a
bipolar {-1, +1} activation would need a bias in the bias-free classifier); GPTQ and AdaRound
need weights of 2 or more bits.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bitfab.errors import BitfabError
from bitfab.models.config import ModelConfig, make_config
from bitfab.models.data import load_dataset, to_model_input
from bitfab.models.ptq_fold import bn_to_affine, hidden_blocks, scale_activation, scale_weight_rows
from bitfab.models.ptq_methods import DEFAULT_CALIB, METHODS
from bitfab.models.ptq_ranges import act_clip, weight_scales
from bitfab.models.train import (
    CHECKPOINT,
    METRICS,
    MODEL_ONNX,
    evaluate,
    machine_info,
    seed_everything,
    versions,
)
from bitfab.models.zoo import ZooNet, build_model
from bitfab.staging import staged_output

ROUNDING_METHODS = ("gptq", "adaround")
SYNTHETIC = "synthetic"
PAPERS = {
    "minmax": "Jacob et al. 2018 (CVPR), integer-arithmetic-only inference",
    "mse": "Banner et al. 2019 (NeurIPS), ACIQ post-training 4-bit quantization",
    "bias-correction": "Nagel et al. 2019 (ICCV), data-free quantization (bias correction)",
    "equalize": "Nagel et al. 2019 (ICCV), data-free quantization (cross-layer equalization)",
    "gptq": "Frantar et al. 2023 (ICLR), GPTQ",
    "adaround": "Nagel et al. 2020 (ICML), AdaRound",
}


def load_float_checkpoint(
    path: str | os.PathLike[str], model: str | None = None
) -> tuple[ZooNet, ModelConfig, dict[str, Any]]:
    """The float zoo model in ``path`` (a checkpoint.pt or its folder), eval mode, and its config.

    ``model``: the zoo model the caller expects (error if the checkpoint holds another one).
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise BitfabError(f"{p}: no float checkpoint; train one with 'bitfab train --float'")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise BitfabError(f"{p}: unreadable checkpoint ({type(e).__name__}); retrain it") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "cfg" not in ckpt:
        raise BitfabError(f"{p}: not a bitfab checkpoint; give DIR/checkpoint.pt of 'bitfab train'")
    cfg = ModelConfig.from_dict(ckpt["cfg"])
    if not cfg.is_float:
        raise BitfabError(
            f"{p}: holds a {cfg.precision} QAT model, not a float one; quantize a checkpoint of "
            "'bitfab train --wbits float'"
        )
    if model is not None and model != cfg.model:
        raise BitfabError(
            f"{p}: holds model {cfg.model!r}, not {model!r}; drop --model or give a {model} checkpoint"
        )
    net = build_model(cfg)
    try:
        net.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise BitfabError(
            f"{p}: weights do not fit zoo model {cfg.model!r} (corrupt or from another version); "
            "retrain it"
        ) from None
    net.eval()
    return net, cfg, ckpt


def check_method(method: str, cfg: ModelConfig) -> None:
    """Refuse a method or bit width PTQ cannot do, with the reason."""
    if method not in METHODS:
        raise BitfabError(f"unknown PTQ method {method!r}; choose one of {', '.join(METHODS)}")
    if 1 in cfg.abits:
        raise BitfabError(
            f"abits={list(cfg.abits)}: PTQ needs activations of 2+ bits (the float model's "
            "activation is a clipped ReLU in [0, 1]; a bipolar one needs the classifier to have a "
            "bias it lacks); train A1 models with 'bitfab train'"
        )
    if method in ROUNDING_METHODS and 1 in cfg.wbits:
        raise BitfabError(
            f"--method {method} with wbits={list(cfg.wbits)}: {method} chooses between the two "
            "nearest integer grid points of each weight, and a 1-bit weight is its sign with no "
            "rounding to choose; use minmax/mse/bias-correction/equalize or 2+ bit weights"
        )


def calibration_set(
    n: int,
    *,
    dataset: str = "fashion-mnist",
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """``n`` training images drawn at random (``seed``), float ``[n, 1, 28, 28]`` = pixel / 255."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise BitfabError(
            f"--calib {n!r}: the calibration set is empty; give a positive number of images "
            "(e.g. 512) or 'synthetic'"
        )
    x_u8, _ = load_dataset(dataset, "train", data_dir)
    if n > len(x_u8):
        raise BitfabError(
            f"--calib {n}: more than the {len(x_u8)} {dataset} training images; give at most "
            f"{len(x_u8)}"
        )
    idx = torch.randperm(len(x_u8), generator=torch.Generator().manual_seed(seed))[:n]
    return torch.from_numpy(to_model_input(x_u8[idx.numpy()]))


def _acts(model: ZooNet, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of every hidden activation of ``model`` on ``x`` (float values)."""
    blocks = hidden_blocks(model)
    got: dict[int, list[torch.Tensor]] = {i: [] for i in range(len(blocks) - 1)}
    hooks = []
    for i, (_, _, act) in enumerate(blocks[:-1]):

        def hook(_m, _inp, out, i=i):
            got[i].append((out.value if hasattr(out, "value") else out).detach())

        hooks.append(act.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for b in range(0, len(x), 256):
                model(x[b : b + 256])
    finally:
        for h in hooks:
            h.remove()
    return [torch.cat(got[i]) for i in range(len(got))]


def _channel_max(a: torch.Tensor) -> torch.Tensor:
    dims = [0, 2, 3] if a.dim() == 4 else [0]
    return a.amax(dim=dims)


@torch.no_grad()
def equalize(fm: ZooNet, x: torch.Tensor) -> None:
    """Cross-layer equalization for clipped-ReLU activations (DFQ, adapted).

    Channel ``j`` of a hidden activation with calibration max ``m_j`` (<= 1) is divided by
    ``s_j`` and column ``j`` of the next weight layer multiplied by it, with
    ``s_j = min(1, sqrt(m_j / q_j))``, ``q_j`` = the column's max ``|w|`` relative to the layer's
    max: small-range channels then use more of the shared activation grid, weight columns stay
    within range. ``s_j >= m_j`` keeps the clip at 1 exact on the calibration set. In place.
    """
    blocks = hidden_blocks(fm)
    acts = _acts(fm, x)
    for i, a in enumerate(acts):
        bn, nxt = blocks[i][1], blocks[i + 1][0]
        m = _channel_max(a)
        w = nxt.weight.detach()
        cols = w.abs().amax(dim=(0, 2, 3)) if w.dim() == 4 else w.abs().amax(0)
        if cols.numel() != m.numel():  # flatten after a conv: channel-major columns
            cols = cols.view(m.numel(), -1).amax(1)
        q = cols / cols.max().clamp_min(1e-12)
        s = torch.where(m > 0, torch.sqrt(m / q.clamp_min(1e-12)), torch.ones_like(m))
        s = torch.clamp(s, max=1.0)
        s = torch.maximum(s, m).clamp_min(1e-6)
        scale_activation(bn, nxt, s)


@torch.no_grad()
def set_ranges(fm: ZooNet, x: torch.Tensor, qcfg: ModelConfig, mode: str) -> list[float]:
    """Put activation clips and weight scales (``mode``: minmax or mse) into ``fm``; in place.

    After this every hidden activation clips at 1 and every weight's range is 1, so the zoo's
    quantizers (scale 1) apply as they are. Returns the activation clips (units of the float
    activation, <= 1).
    """
    blocks = hidden_blocks(fm)
    acts = _acts(fm, x)
    clips = []
    for i, a in enumerate(acts):
        c = act_clip(a, qcfg.abits[i], mode)
        clips.append(c)
        scale_activation(blocks[i][1], blocks[i + 1][0], torch.tensor(c))
    for i, (layer, bn, _) in enumerate(blocks):
        s = weight_scales(layer.weight, qcfg.wbits[i], mode, per_channel=bn is not None)
        scale_weight_rows(layer, bn, s if bn is not None else s.expand(layer.weight.shape[0]))
    return clips


def _pre_bn_means(model: ZooNet, x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    got: list[torch.Tensor] = []

    def hook(_m, _i, out):
        o = out.value if hasattr(out, "value") else out
        got.append(o.detach().mean(dim=[0, 2, 3] if o.dim() == 4 else [0]) * len(o))

    h = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for b in range(0, len(x), 256):
                model(x[b : b + 256])
    finally:
        h.remove()
    return torch.stack(got).sum(0) / len(x)


@torch.no_grad()
def bias_correct(qm: ZooNet, fm: ZooNet, x: torch.Tensor) -> None:
    """Empirical bias correction: per hidden layer, in order, subtract from its (affine)
    BatchNorm the mean shift ``E[z_quant] - E[z_float]`` of its pre-BatchNorm output on ``x``."""
    qb, fb = hidden_blocks(qm), hidden_blocks(fm)
    for (ql, qbn, _), (fl, _, _) in zip(qb[:-1], fb[:-1], strict=True):
        delta = _pre_bn_means(qm, x, ql) - _pre_bn_means(fm, x, fl)
        qbn.bias.sub_(qbn.weight * delta)


def ptq_model(
    fm: ZooNet, qcfg: ModelConfig, method: str, x: torch.Tensor, *, seed: int = 0
) -> tuple[ZooNet, dict[str, Any]]:
    """Quantize float model ``fm`` (not changed) to ``qcfg`` with ``method`` on calibration
    images ``x``; return the quantized zoo model (eval mode) and details (clips, seconds)."""
    check_method(method, qcfg)
    if len(x) == 0:
        raise BitfabError("the calibration set is empty; give a positive number of images")
    t0 = time.perf_counter()
    fm = copy.deepcopy(fm).eval()
    for _, bn, _ in hidden_blocks(fm):
        if bn is not None:
            bn_to_affine(bn)
    if method == "equalize":
        equalize(fm, x)
    clips = set_ranges(fm, x, qcfg, "minmax" if method == "minmax" else "mse")
    qm = build_model(qcfg)
    qm.load_state_dict(fm.state_dict())
    qm.eval()
    if method == "bias-correction":
        bias_correct(qm, fm, x)
    elif method == "gptq":
        from bitfab.models.ptq_round import apply_gptq

        apply_gptq(qm, x)
    elif method == "adaround":
        from bitfab.models.ptq_round import apply_adaround

        apply_adaround(qm, x, qcfg.wbits, seed=seed)
    return qm, {"act_clips": [round(c, 6) for c in clips], "seconds": time.perf_counter() - t0}


def quantize(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    wbits: Any,
    abits: Any = None,
    method: str = "mse",
    calib: int | str | torch.Tensor = DEFAULT_CALIB,
    calib_info: dict[str, Any] | None = None,
    synthetic_images: int | None = None,
    model: str | None = None,
    dataset: str = "fashion-mnist",
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    check_images: int | None = None,
    threads: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """PTQ of a float checkpoint; writes ``out_dir/model.onnx`` and ``metrics.json``; returns
    the metrics (test accuracy of the quantized model on the whole test split, float accuracy,
    export check). ``calib``: number of training images, ``"synthetic"`` (ZeroQ set of
    ``synthetic_images`` images, default 256), or (from Python) a float tensor ``[N, 1, 28, 28]``
    of calibration images described by ``calib_info``. Nothing is written on any error."""
    wall0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and out.is_dir() and (out / MODEL_ONNX).exists():
        raise BitfabError(f"{out}: already holds a model.onnx; use another --out")
    if method not in METHODS:
        raise BitfabError(f"unknown PTQ method {method!r}; choose one of {', '.join(METHODS)}")
    torch.set_num_threads(threads)
    seed_everything(seed)
    fm, fcfg, ckpt = load_float_checkpoint(checkpoint, model)
    qcfg = make_config(fcfg.model, wbits, abits if abits is not None else None, None)
    check_method(method, qcfg)

    t_cal = time.perf_counter()
    if isinstance(calib, torch.Tensor):
        x = calib
        calib_info = {"kind": "given", "images": len(x), **(calib_info or {})}
    elif calib == SYNTHETIC:
        from bitfab.models.datafree import DEFAULT_IMAGES, synthesize

        n_syn = DEFAULT_IMAGES if synthetic_images is None else synthetic_images
        x, syn = synthesize(fm, n_syn, seed=seed, progress=progress)
        calib_info = {"kind": "synthetic", "images": len(x), **syn}
    else:
        if isinstance(calib, str):
            try:
                calib = int(calib)
            except ValueError:
                raise BitfabError(
                    f"--calib {calib!r}: give a number of training images or 'synthetic'"
                ) from None
        x = calibration_set(calib, dataset=dataset, data_dir=data_dir, seed=seed)
        calib_info = {"kind": "train", "images": len(x), "dataset": dataset}
    calib_seconds = time.perf_counter() - t_cal
    qm, info = ptq_model(fm, qcfg, method, x, seed=seed)

    xte_u8, yte = load_dataset(dataset, "test", data_dir)
    x_test, y_test = torch.from_numpy(to_model_input(xte_u8)), torch.from_numpy(yte)
    test_acc = evaluate(qm, x_test, y_test)
    float_acc = evaluate(fm, x_test, y_test)
    metrics: dict[str, Any] = {
        "model": qcfg.model,
        "precision": qcfg.precision,
        "config": qcfg.to_dict(),
        "method": method,
        "paper": PAPERS[method],
        "dataset": dataset,
        "calibration": calib_info,
        "test_images": int(len(x_test)),
        "test_accuracy": test_acc,
        "float_accuracy": float_acc,
        "float_checkpoint": str(Path(checkpoint)),
        "float_epochs": ckpt.get("epoch"),
        "seed": seed,
        "act_clips": info["act_clips"],
        "calib_seconds": round(calib_seconds, 2),
        "quantize_seconds": round(info["seconds"], 2),
        "wall_seconds": None,
        "versions": versions(),
        "machine": machine_info(),
        "export_check": None,
    }
    from bitfab.models.export import export_and_check

    with staged_output(out) as tmp:
        check = export_and_check(qm, tmp / MODEL_ONNX, x_test, check_images, out / MODEL_ONNX)
        metrics["export_check"] = check
        metrics["wall_seconds"] = round(time.perf_counter() - wall0, 2)
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
