"""Weight rounding by layer-wise reconstruction: GPTQ (Brevitas) and AdaRound (own loop).

Both work on a quantized zoo model whose weights are already normalized to the quantizer grid
(scale 1: a ``b``-bit weight is ``k / L``, ``|k| <= L = 2**(b-1) - 1``) and change only which
grid point each weight rounds to. Layers are processed in order; each sees the inputs that the
already-rounded layers before it produce on the calibration images (``x``: float
``[N, 1, 28, 28]`` = pixel / 255).
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from bitfab.models.zoo import ZooNet

BATCH = 256


def _batches(x: torch.Tensor):
    for i in range(0, len(x), BATCH):
        yield x[i : i + BATCH]


@torch.no_grad()
def apply_gptq(qm: ZooNet, x: torch.Tensor) -> None:
    """GPTQ (Frantar et al. 2023) with Brevitas' ``gptq_mode``: quantize each weight layer's
    columns in turn and spread the rounding error over the not-yet-quantized columns, weighted
    by the inverse Hessian ``(X X^T)^-1`` of the layer's calibration inputs. In place."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from brevitas.graph.gptq import gptq_mode

    qm.eval()
    with gptq_mode(qm, use_quant_activations=True, act_order=True) as gptq:
        for _ in range(gptq.num_layers):
            for xb in _batches(x):
                gptq.model(xb)
            gptq.update()
    # gptq_mode keeps the float weights in ``weight_orig`` for disabled quantization; the export
    # uses ``weight`` (which now holds the GPTQ result), so drop the copy.
    for m in qm.weight_layers():
        if hasattr(m, "weight_orig"):
            del m.weight_orig


def _layer_io(qm: ZooNet, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Inputs of ``layer`` on ``x`` in ``qm`` (quantized activations), concatenated."""
    got: list[torch.Tensor] = []

    def hook(_m, inp):
        t = inp[0]
        got.append((t.value if hasattr(t, "value") else t).detach())

    h = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            for xb in _batches(x):
                qm(xb)
    finally:
        h.remove()
    return torch.cat(got)


def _apply(layer: nn.Module, inp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if w.dim() == 4:
        return F.conv2d(inp, w)
    return inp @ w.t()


def apply_adaround(
    qm: ZooNet,
    x: torch.Tensor,
    wbits: tuple[int, ...],
    *,
    iters: int = 400,
    lam: float = 0.01,
    batch: int = 128,
    seed: int = 0,
) -> None:
    """AdaRound (Nagel et al. 2020): per layer, learn for each weight whether it rounds down or
    up, minimizing ``||W X - W_q X||^2`` on the layer's calibration inputs ``X`` plus a
    regularizer that drives the rectified sigmoid ``h(V)`` (Brevitas' ``LearnedRoundHardSigmoid``)
    to 0 or 1 (``beta`` annealed 20 -> 2). ``wbits``: bits per weight layer, all >= 2. In place."""
    from brevitas.core.function_wrapper.learned_round import LearnedRoundHardSigmoid

    hsig = LearnedRoundHardSigmoid()
    hsig.train()
    gen = torch.Generator().manual_seed(seed)
    for layer, bits in zip(qm.weight_layers(), wbits, strict=True):
        n = 2 ** (bits - 1) - 1
        w = layer.weight.detach().clone()
        inp = _layer_io(qm, layer, x)
        with torch.no_grad():
            target_all = _apply(layer, inp, w)
        w_floor = torch.floor(w * n)
        rest = (w * n - w_floor).clamp(1e-4, 1 - 1e-4)
        # h(V) = clip(sigmoid(V) * 1.2 - 0.1, 0, 1) starts at the fractional part of w * n
        v = torch.log((rest + 0.1) / 1.2 / (1 - (rest + 0.1) / 1.2)).requires_grad_(True)
        opt = torch.optim.Adam([v], lr=0.01)
        for it in range(iters):
            idx = torch.randint(0, len(inp), (min(batch, len(inp)),), generator=gen)
            h = hsig(v)
            wq = torch.clamp(w_floor + h, -n, n) / n
            rec = ((_apply(layer, inp[idx], wq) - target_all[idx]) ** 2).sum(1).mean()
            frac = it / iters
            if frac < 0.2:  # warm-up: reconstruction only
                reg = torch.zeros(())
            else:
                beta = 20 + (2 - 20) * (frac - 0.2) / 0.8
                reg = (1 - (2 * h - 1).abs().pow(beta)).sum()
            loss = rec + lam * reg
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            up = (hsig(v) >= 0.5).float()
            layer.weight.copy_(torch.clamp(w_floor + up, -n, n) / n)
