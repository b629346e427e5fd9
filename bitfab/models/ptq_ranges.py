"""Range choices for PTQ: activation clips and weight scales, by min-max or by MSE grid search.

Quantizer grids (see :mod:`bitfab.models.quant`): a ``b``-bit unsigned activation with clip ``c``
takes the values ``c * k / (2**b - 1)``, ``k = 0 .. 2**b - 1``; a ``b``-bit signed narrow-range
weight with scale ``s`` takes ``s * k / L``, ``|k| <= L = 2**(b-1) - 1``; a 1-bit weight is
``s * sign(w)``. Ranges are in the units of the tensor they quantize.
"""

from __future__ import annotations

import torch

GRID = 60  # candidate clips per search, from 1/GRID of the max to the max
MAX_SAMPLES = 400_000  # activation values kept for the activation search


def quant_act(x: torch.Tensor, c: float, bits: int) -> torch.Tensor:
    """Unsigned ``bits``-bit quantization of ``x`` with clip ``c`` (round to nearest)."""
    n = 2**bits - 1
    return torch.clamp(torch.round(x / c * n), 0, n) * (c / n)


def quant_weight(w: torch.Tensor, s: torch.Tensor, bits: int) -> torch.Tensor:
    """Signed narrow-range ``bits``-bit quantization of ``w`` with scale ``s`` (broadcast)."""
    if bits == 1:
        return torch.sign(w) * s + (w == 0) * s
    n = 2 ** (bits - 1) - 1
    return torch.clamp(torch.round(w / s * n), -n, n) * (s / n)


def act_clip(x: torch.Tensor, bits: int, mode: str) -> float:
    """Clip for activations ``x`` (values >= 0): their max (``minmax``) or the MSE-best clip."""
    x = x.detach().flatten().float()
    if x.numel() > MAX_SAMPLES:
        idx = torch.linspace(0, x.numel() - 1, MAX_SAMPLES).long()
        x = x[idx]
    top = float(x.max()) if x.numel() else 0.0
    if top <= 0.0:
        return 1.0  # a dead activation: any clip is exact
    if mode == "minmax":
        return top
    best, best_err = top, float("inf")
    for i in range(1, GRID + 1):
        c = top * i / GRID
        err = float(((quant_act(x, c, bits) - x) ** 2).mean())
        if err < best_err:
            best, best_err = c, err
    return best


def weight_scales(w: torch.Tensor, bits: int, mode: str, per_channel: bool) -> torch.Tensor:
    """Scale per output row of ``w`` (``per_channel``) or one scale (shape [1]), all > 0.

    1 bit: the mean ``|w|`` (least-squares scale of ``sign(w)``). More bits: the max ``|w|``
    (``minmax``) or the MSE-best clip from a grid below it (``mse``).
    """
    flat = w.detach().reshape(w.shape[0], -1) if per_channel else w.detach().reshape(1, -1)
    eps = torch.finfo(flat.dtype).tiny
    if bits == 1:
        return flat.abs().mean(1).clamp_min(1e-12)
    top = flat.abs().amax(1).clamp_min(1e-12)
    if mode == "minmax":
        return top
    best, best_err = top.clone(), torch.full_like(top, float("inf"))
    for i in range(GRID // 3, GRID + 1):  # clips from 1/3 of the max up
        s = top * i / GRID
        err = ((quant_weight(flat, s[:, None], bits) - flat) ** 2).mean(1)
        better = err < best_err
        best[better], best_err[better] = s[better], err[better]
    return best.clamp_min(eps)
