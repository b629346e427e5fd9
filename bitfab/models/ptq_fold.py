"""Exact rescalings of a float zoo model that PTQ uses before quantizing (no accuracy change).

A float zoo model (:mod:`bitfab.models.zoo`, ``cfg.is_float``) is ``weight layer -> BatchNorm ->
Hardtanh(0, 1)`` per hidden layer, then a bias-free classifier. Three rescalings keep its function:

- BatchNorm in affine form: ``running_mean = 0``, ``running_var = 1 - eps``, so
  ``BN(z) = weight * z + bias`` exactly (:func:`bn_to_affine`).
- Per-output-channel weight scale ``s_c``: ``W[c] /= s_c`` and the BatchNorm after it takes
  ``weight[c] *= s_c`` (:func:`scale_weight_rows`). The classifier (no BatchNorm) takes one
  positive scalar, which scales the logits and keeps the argmax.
- Activation clip ``c``: ``clip(z, 0, 1)`` becomes ``c * clip(z / c, 0, 1)`` when every ``z <= c``;
  the BatchNorm before it is divided by ``c`` and the next weight layer's input columns are
  multiplied by ``c`` (:func:`scale_activation`). Per channel this is cross-layer equalization.

Weights are float tensors; scales are unitless ratios.
"""

from __future__ import annotations

import torch
from torch import nn

from bitfab.models.zoo import ZooNet


def hidden_blocks(model: ZooNet) -> list[tuple[nn.Module, nn.Module | None, nn.Module | None]]:
    """``(weight layer, BatchNorm or None, activation module or None)`` per weight layer, in order."""
    mods = [*model.conv_features, *model.linear_features]
    out: list[list] = []
    for m in mods:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            out.append([m, None, None])
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            out[-1][1] = m
        elif not isinstance(m, (nn.MaxPool2d, nn.Dropout)):
            out[-1][2] = m
    return [tuple(b) for b in out]


@torch.no_grad()
def bn_to_affine(bn: nn.modules.batchnorm._BatchNorm) -> None:
    """Rewrite ``bn`` (eval mode) as ``weight * z + bias``: running mean 0, running var ``1 - eps``."""
    a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    b = bn.bias - a * bn.running_mean
    bn.weight.copy_(a)
    bn.bias.copy_(b)
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


def _col_view(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``scale`` [in_channels] broadcast over the input columns of ``w`` (conv or linear)."""
    if w.dim() == 4:
        return scale.view(1, -1, 1, 1)
    n_in = w.shape[1]
    rep = n_in // scale.numel()  # flattened conv channels: channel-major (C, H, W)
    return scale.repeat_interleave(rep).view(1, -1)


@torch.no_grad()
def scale_weight_rows(layer: nn.Module, bn: nn.Module | None, s: torch.Tensor) -> None:
    """``W[c] /= s[c]``; an affine BatchNorm after it takes ``weight[c] *= s[c]`` (s > 0)."""
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight.div_(s.view(shape))
    if bn is not None:
        bn.weight.mul_(s)


@torch.no_grad()
def scale_activation(bn: nn.Module, nxt: nn.Module, c: torch.Tensor) -> None:
    """Activation after affine ``bn`` divided by ``c`` (per channel or scalar, ``0 < c``);
    ``nxt``'s input columns multiplied by ``c``. Exact where the activation stays below ``c``."""
    c = c.expand(bn.weight.shape) if c.numel() == 1 else c
    bn.weight.div_(c)
    bn.bias.div_(c)
    nxt.weight.mul_(_col_view(nxt.weight, c))
