"""Data-free calibration (ZeroQ, Cai et al. 2020): synthesize inputs from BatchNorm statistics.

Every hidden layer of a float zoo model ends in a BatchNorm whose running mean and variance are
the per-channel statistics of its input over the training set. ``synthesize`` starts from random
images and optimizes them (Adam, pixels kept in [0, 1]) so that the per-channel mean and standard
deviation of each BatchNorm input, over the synthetic batch, match the stored ones:

    loss = sum over BatchNorms of ||mean - running_mean||_2 + ||std - sqrt(running_var)||_2

No training image or label is read. The images are float ``[N, 1, 28, 28]`` in [0, 1] (the
model's pixel / 255 input), used as the PTQ calibration set.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from bitfab.errors import BitfabError
from bitfab.models.zoo import IMAGE_SHAPE, ZooNet

DEFAULT_IMAGES = 256
DEFAULT_STEPS = 500
DEFAULT_LR = 0.05


def bn_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of ``model`` in order."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def bn_loss(model: ZooNet, x: torch.Tensor) -> torch.Tensor:
    """ZeroQ's statistics loss of ``x`` on ``model`` (eval mode, BatchNorms use running stats)."""
    stats: list[torch.Tensor] = []
    hooks = []
    for bn in bn_layers(model):

        def hook(m, inp, _out):
            z = inp[0]
            dims = [0, 2, 3] if z.dim() == 4 else [0]
            mu, sd = z.mean(dims), torch.sqrt(z.var(dims, unbiased=False) + m.eps)
            stats.append(
                torch.linalg.vector_norm(mu - m.running_mean)
                + torch.linalg.vector_norm(sd - torch.sqrt(m.running_var + m.eps))
            )

        hooks.append(bn.register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return torch.stack(stats).sum()


def synthesize(
    model: ZooNet,
    n: int = DEFAULT_IMAGES,
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    seed: int = 0,
    progress: bool = False,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """``n`` synthetic images for ``model`` (a float zoo model; not changed) and a summary
    (``steps``, initial and final loss, ``seconds``)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise BitfabError(
            f"synthetic images={n!r}: need at least 2 (batch statistics); give e.g. 256"
        )
    if not bn_layers(model):
        raise BitfabError("model has no BatchNorm: ZeroQ needs stored statistics to match")
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *IMAGE_SHAPE), generator=gen).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    first = last = None
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("ZeroQ synthetic data", total=steps)
        for _ in range(steps):
            loss = bn_loss(model, x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
            first = float(loss.detach()) if first is None else first
            last = float(loss.detach())
            bar.update(task, advance=1)
    for p in model.parameters():
        p.requires_grad_(True)
    model.train(was_training)
    with torch.no_grad():
        final = float(bn_loss(model.eval(), x.detach()))
    model.train(was_training)
    return x.detach(), {
        "steps": steps,
        "loss_initial": first,
        "loss_final": final if last is not None else None,
        "seconds": round(time.perf_counter() - t0, 2),
    }
