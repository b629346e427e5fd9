"""Quantization-aware training of zoo models with Brevitas, then QONNX export and export check.

``train`` writes into ``out_dir``:

- ``checkpoint.pt`` after every epoch (model, optimizer, LR schedule, loss scale, RNG states,
  epoch, config, hyper-parameters). It is written directly (atomically: temp file + rename) so an
  interrupted run can ``resume``; a checkpoint is a complete artifact by itself.
- ``model.onnx`` (QONNX, quantized models only) and ``metrics.json``, written together through
  :func:`bitfab.staging.staged_output` at the end: they appear only if the whole run succeeded.

Nothing is created before the config, the arguments and the data have been validated.
Training: Adam, cosine LR decay per step, cross-entropy on ``logits * s`` with a learned scalar
``s > 0`` (kept outside the exported model: a positive scale does not change the argmax).
Latent weights are clipped to [-1, 1] after each step (as Brevitas' bnn_pynq trainer). The
quantizers' own parameters (LSQ step sizes, PACT clipping levels; ``cfg.quantizer``) are trained
with the weights by the same Adam optimizer, and the model's ``regularization()`` (PACT's L2 on
alpha) is added to the loss.
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bitfab.errors import BitfabError
from bitfab.models.config import ModelConfig
from bitfab.models.data import load_dataset, to_model_input
from bitfab.staging import staged_output

CHECKPOINT = "checkpoint.pt"
MODEL_ONNX = "model.onnx"
METRICS = "metrics.json"
DEFAULTS = {"batch_size": 128, "seed": 0}
# Adam learning rate: quantized latent weights live in [-1, 1] and must cross rounding steps, so
# they want larger steps than float weights (measured on cnv-s w2a2, 2 epochs: 0.03 -> 86.95%,
# 0.01 -> 85.02%; Brevitas' bnn_pynq trainer uses 0.02).
DEFAULT_LR_QUANT, DEFAULT_LR_FLOAT = 0.03, 0.01
MAX_THREADS = 2
DEFAULT_THREADS = 1  # on a shared 2-core machine 1 thread trains ~10x faster than 2 (measured)
EVAL_BATCH = 1000


class ScaledCrossEntropy(nn.Module):
    """Cross-entropy of ``logits * exp(log_scale)``; ``log_scale`` is learned (a temperature)."""

    def __init__(self, init_scale: float = 1.0) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(init_scale)))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits * self.log_scale.exp(), target)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; request deterministic torch kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def versions() -> dict[str, str]:
    """Installed versions of the packages that define the results."""
    out = {"python": platform.python_version()}
    for pkg in ("torch", "brevitas", "qonnx", "onnx", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy (0..1) of ``model`` in eval mode on ``x`` (float [N,1,28,28]) / ``y``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), EVAL_BATCH):
            correct += int((model(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
    return correct / max(len(x), 1)


def _check_positive(name: str, value: Any, kind: type) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BitfabError(f"{name}={value!r} must be a positive {kind.__name__}")
    if kind is int and not isinstance(value, int):
        raise BitfabError(f"{name}={value!r} must be a positive int")


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise BitfabError(f"{path}: no checkpoint to resume from; run without --resume first")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise BitfabError(
            f"{path}: unreadable checkpoint ({type(e).__name__}); delete it and retrain"
        ) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "cfg" not in ckpt:
        raise BitfabError(f"{path}: not a bitfab checkpoint; delete it and retrain")
    return ckpt


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.2%}"),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


def train(
    cfg: ModelConfig | None,
    out_dir: str | os.PathLike[str],
    *,
    epochs: int,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int | None = None,
    resume: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    dataset: str = "fashion-mnist",
    limit: int | None = None,
    check_images: int | None = None,
    threads: int = DEFAULT_THREADS,
    progress: bool = True,
) -> dict[str, Any]:
    """QAT-train ``cfg`` for ``epochs`` (total, counting resumed ones); export; return the metrics.

    ``limit``: train on the first ``limit`` training images only (the test metrics always use the
    full test split). ``check_images``: how many test images the QONNX export check runs (default
    all). ``threads``: torch intra-op threads (1-2). ``resume``: continue from ``out_dir/checkpoint.pt`` (config and hyper-parameters come
    from the checkpoint; passing different ones is an error). Without ``resume`` ``out_dir`` must
    not hold a previous run. ``batch_size``/``lr``/``seed`` default to 128 / 0.03 (float model: 0.01) / 0.
    """
    wall0 = time.perf_counter()
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT
    _check_positive("epochs", epochs, int)
    for name, val, kind in (
        ("batch_size", batch_size, int),
        ("lr", lr, float),
        ("limit", limit, int),
        ("check_images", check_images, int),
    ):
        if val is not None:
            _check_positive(name, val, kind)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise BitfabError(f"seed={seed!r} must be a non-negative int")

    ckpt: dict[str, Any] | None = None
    given = {"batch_size": batch_size, "lr": lr, "seed": seed}
    if resume:
        ckpt = _load_checkpoint(ckpt_path)
        ck_cfg = ModelConfig.from_dict(ckpt["cfg"])
        if cfg is not None and cfg != ck_cfg:
            raise BitfabError(
                f"{ckpt_path}: checkpoint config {ck_cfg.to_dict()} differs from the requested one; "
                "drop the model flags or use another --out"
            )
        cfg = ck_cfg
        hp = dict(ckpt["hparams"])
        for k, v in given.items():
            if v is not None and v != hp[k]:
                raise BitfabError(
                    f"--resume: {k}={v} differs from the checkpoint's {hp[k]}; drop it"
                )
        if ckpt["dataset"] != dataset or ckpt.get("limit") != limit:
            raise BitfabError(
                f"--resume: dataset/limit ({dataset}, {limit}) differ from the checkpoint's "
                f"({ckpt['dataset']}, {ckpt.get('limit')})"
            )
    else:
        if cfg is None:
            raise BitfabError("no model config given: pass --model (or --config)")
        if out.exists() and any(out.iterdir()):
            raise BitfabError(
                f"{out}: folder exists and is not empty; use --resume or another --out"
            )
        defaults = {**DEFAULTS, "lr": DEFAULT_LR_FLOAT if cfg.is_float else DEFAULT_LR_QUANT}
        hp = {k: (defaults[k] if v is None else v) for k, v in given.items()}

    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise BitfabError(f"threads={threads!r} out of range: valid 1-{MAX_THREADS}")
    torch.set_num_threads(threads)
    seed_everything(hp["seed"])

    xtr_u8, ytr = load_dataset(dataset, "train", data_dir)
    xte_u8, yte = load_dataset(dataset, "test", data_dir)
    if limit is not None:
        xtr_u8, ytr = xtr_u8[:limit], ytr[:limit]
    x_train, y_train = torch.from_numpy(to_model_input(xtr_u8)), torch.from_numpy(ytr)
    x_test, y_test = torch.from_numpy(to_model_input(xte_u8)), torch.from_numpy(yte)

    from bitfab.models.zoo import build_model

    model = build_model(cfg)
    if ckpt is not None:
        # before the optimizer is made: Brevitas rebuilds a quantizer's modules (and so the
        # learned-scale parameters of the lsq/pact families) when a state dict is loaded
        model.load_state_dict(ckpt["model"])
    n_cls_in = model.weight_layers()[-1].in_features
    crit = ScaledCrossEntropy(1.0 if cfg.is_float else 1.0 / math.sqrt(n_cls_in))
    opt = torch.optim.Adam(list(model.parameters()) + list(crit.parameters()), lr=hp["lr"])
    steps_per_epoch = math.ceil(len(x_train) / hp["batch_size"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / (epochs * steps_per_epoch), 1.0)))
    )
    start_epoch, train_seconds, history = 0, 0.0, []
    if ckpt is not None:
        crit.load_state_dict(ckpt["loss"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        np.random.set_state(ckpt["rng"]["numpy"])
        random.setstate(ckpt["rng"]["python"])
        start_epoch, train_seconds, history = ckpt["epoch"], ckpt["train_seconds"], ckpt["history"]
        from bitfab.models.quant import restore_stats_counters

        restore_stats_counters(model, start_epoch * steps_per_epoch)

    with _progress(progress) as bar:
        for epoch in range(start_epoch, epochs):
            t0 = time.perf_counter()
            model.train()
            gen = torch.Generator().manual_seed(hp["seed"] * 1000 + epoch)
            perm = torch.randperm(len(x_train), generator=gen)
            task = bar.add_task(
                f"epoch {epoch + 1}/{epochs}", total=steps_per_epoch, loss=0.0, acc=0.0
            )
            loss_sum, correct, seen = 0.0, 0, 0
            for b in range(steps_per_epoch):
                idx = perm[b * hp["batch_size"] : (b + 1) * hp["batch_size"]]
                xb, yb = x_train[idx], y_train[idx]
                if len(idx) == 1 and model.training:  # BatchNorm needs >1 sample per batch
                    continue
                logits = model(xb)
                loss = crit(logits, yb)
                reg = model.regularization()  # quantizer terms (PACT: L2 on alpha)
                if reg is not None:
                    loss = loss + reg
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                model.clip_weights()
                loss_sum += loss.item() * len(idx)
                correct += int((logits.argmax(1) == yb).sum())
                seen += len(idx)
                bar.update(task, advance=1, loss=loss_sum / seen, acc=correct / seen)
            train_seconds += time.perf_counter() - t0
            history.append(
                {
                    "epoch": epoch + 1,
                    "train_loss": loss_sum / max(seen, 1),
                    "train_accuracy": correct / max(seen, 1),
                    "seconds": round(time.perf_counter() - t0, 2),
                }
            )
            out.mkdir(parents=True, exist_ok=True)
            _atomic_save(
                {
                    "model": model.state_dict(),
                    "loss": crit.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "rng": {
                        "torch": torch.get_rng_state(),
                        "numpy": np.random.get_state(),
                        "python": random.getstate(),
                    },
                    "epoch": epoch + 1,
                    "epochs_planned": epochs,
                    "cfg": cfg.to_dict(),
                    "hparams": hp,
                    "dataset": dataset,
                    "limit": limit,
                    "train_seconds": train_seconds,
                    "history": history,
                },
                ckpt_path,
            )

    test_acc = evaluate(model, x_test, y_test)
    metrics: dict[str, Any] = {
        "model": cfg.model,
        "precision": cfg.precision,
        "quantizer": None if cfg.is_float else cfg.quantizer,
        "config": cfg.to_dict(),
        "dataset": dataset,
        "train_images": int(len(x_train)),
        "test_images": int(len(x_test)),
        "test_accuracy": test_acc,
        "epochs": epochs,
        **hp,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": None,
        "history": history,
        "versions": versions(),
        "machine": machine_info(),
        "export_check": None,
    }
    with staged_output(out) as tmp:
        if not cfg.is_float:
            from bitfab.models.export import export_and_check

            check = export_and_check(
                model, tmp / MODEL_ONNX, x_test, check_images, out / MODEL_ONNX
            )
            metrics["export_check"] = check
        metrics["wall_seconds"] = round(time.perf_counter() - wall0, 2)
        (tmp / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
