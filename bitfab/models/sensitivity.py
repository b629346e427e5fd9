"""Per-layer quantization sensitivity of a float zoo model, for mixed-precision allocation.

Two measures, both per weight layer ``i`` (and per hidden activation ``i``, the output of the
clipped ReLU after weight layer ``i``) and per candidate bit width ``b``:

- **Hessian** (HAWQ-V2, Dong et al. 2020): ``Omega_i(b) = mean_trace(H_i) * ||Q_b(T_i) - T_i||^2``,
  where ``H_i`` is the Hessian of the training loss with respect to the tensor ``T_i`` (the
  layer's weights, or the activation tensor of a calibration batch), ``mean_trace = trace /
  numel``, and ``Q_b`` bitfab's own quantizer at ``b`` bits (:mod:`bitfab.models.quant`). The
  trace is estimated by Hutchinson's method: ``E[v^T H v] = trace(H)`` for Rademacher ``v``
  (entries +-1), with ``H v`` from a double backward pass (:func:`hutchinson_trace`).
- **Loss** (measured): ``Delta_i(b) = max(0, L(T_i -> Q_b(T_i)) - L)``: the increase of the
  calibration loss when only that one tensor is quantized and the rest stay float.

Quantizers (as :mod:`bitfab.models.quant`, scale 1, zero point 0): weights ``b = 1`` -> sign
{-1, +1}; ``b >= 2`` -> ``round(clip(w, -1, 1) * n) / n`` with ``n = 2**(b-1) - 1``. Hidden
activations ``b = 1`` -> bipolar sign of the pre-activation; ``b >= 2`` -> ``round(clip(x, 0, 1) *
m) / m`` with ``m = 2**b - 1`` (the float model's ``Hardtanh(0, 1)`` is that clipped ReLU).

The loss is the training loss of :mod:`bitfab.models.train`: cross-entropy of ``logits *
exp(log_scale)`` (the learned temperature stored in the checkpoint).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bitfab.errors import BitfabError
from bitfab.models.config import ModelConfig

#: Candidate bit widths a sensitivity table covers by default.
DEFAULT_BITS = (1, 2, 4, 8)


# --------------------------------------------------------------------------------------------
# quantizers (bitfab's, as plain tensor functions)
# --------------------------------------------------------------------------------------------


def quantize_weight(w: torch.Tensor, bits: int) -> torch.Tensor:
    """bitfab's weight quantizer: 1 bit -> sign in {-1, +1} (0 -> +1); ``b >= 2`` -> signed
    narrow-range integers ``k / (2**(b-1) - 1)`` in [-1, 1]."""
    if bits == 1:
        return torch.where(w >= 0, 1.0, -1.0).to(w.dtype)
    n = 2 ** (bits - 1) - 1
    return torch.round(w.clamp(-1.0, 1.0) * n) / n


def quantize_act(pre: torch.Tensor, bits: int) -> torch.Tensor:
    """bitfab's hidden-activation quantizer applied to the pre-activation ``pre`` (the BatchNorm
    output): 1 bit -> bipolar sign; ``b >= 2`` -> unsigned ``k / (2**b - 1)`` of ``clip(pre, 0, 1)``."""
    if bits == 1:
        return torch.where(pre >= 0, 1.0, -1.0).to(pre.dtype)
    m = 2**bits - 1
    return torch.round(pre.clamp(0.0, 1.0) * m) / m


# --------------------------------------------------------------------------------------------
# Hutchinson's trace estimator
# --------------------------------------------------------------------------------------------


def hutchinson_trace(
    loss_fn: Callable[[], torch.Tensor],
    tensors: Sequence[torch.Tensor],
    samples: int = 32,
    seed: int = 0,
) -> list[tuple[float, float]]:
    """Estimate ``trace(d^2 loss / d t^2)`` for each tensor ``t`` of ``tensors`` (each tensor's
    own diagonal block of the Hessian) by Hutchinson's method with Rademacher vectors.

    ``loss_fn()`` recomputes the scalar loss (a graph from ``tensors``, which need
    ``requires_grad``). One backward with ``create_graph`` gives the gradients ``g``; each sample
    draws ``v`` (+-1 entries) per tensor and takes ``v . d(g_t . v)/dt`` (the tensor's own block
    only, as HAWQ-V2 does per layer). Returns ``(mean, standard
    error)`` per tensor.
    """
    if samples < 1:
        raise BitfabError(f"samples={samples}: the Hutchinson estimate needs at least 1 sample")
    gen = torch.Generator().manual_seed(seed)
    loss = loss_fn()
    grads = torch.autograd.grad(loss, list(tensors), create_graph=True)
    draws: list[list[float]] = [[] for _ in tensors]
    for _ in range(samples):
        for k, t in enumerate(tensors):  # one diagonal block at a time: v is zero elsewhere
            v = (torch.randint(0, 2, t.shape, generator=gen) * 2 - 1).to(t.dtype)
            (hv,) = torch.autograd.grad(
                grads[k], [t], grad_outputs=v, retain_graph=True, allow_unused=True
            )
            draws[k].append(float((v * hv).sum()) if hv is not None else 0.0)
    out = []
    for d in draws:
        t = torch.tensor(d, dtype=torch.float64)
        se = float(t.std(unbiased=True) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
        out.append((float(t.mean()), se))
    return out


# --------------------------------------------------------------------------------------------
# the float model and its calibration loss
# --------------------------------------------------------------------------------------------


@dataclass
class FloatModel:
    """A float zoo model loaded from a ``bitfab train --wbits float`` checkpoint, in eval mode,
    with its learned logit scale (``exp(log_scale)``) and the checkpoint's config."""

    model: nn.Module
    log_scale: float
    cfg: ModelConfig

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Training loss (mean cross-entropy of ``logits * exp(log_scale)``) on ``x``/``y``."""
        return nn.functional.cross_entropy(self.model(x) * math.exp(self.log_scale), y)

    def weight_layers(self) -> list[nn.Module]:
        return self.model.weight_layers()

    def act_modules(self) -> list[nn.Module]:
        """The clipped ReLUs (``Hardtanh(0, 1)``) after each hidden weight layer, in order."""
        return [m for m in self.model.modules() if isinstance(m, nn.Hardtanh)]


def load_float_checkpoint(path: str | os.PathLike[str], normalize: bool = True) -> FloatModel:
    """Load ``checkpoint.pt`` (or a folder holding it) of a float-trained zoo model;
    ``normalize``: rescale the weights to bitfab's quantizer range (:func:`normalize_weight_range`).

    Raises :class:`BitfabError` for a missing/unreadable file or a checkpoint that is not float.
    """
    from bitfab.models.ptq import load_float_checkpoint as load_float_zoo_model

    model, cfg, ckpt = load_float_zoo_model(path)
    log_scale = float(ckpt.get("loss", {}).get("log_scale", torch.tensor(0.0)))
    if normalize:
        log_scale += math.log(normalize_weight_range(model))
    return FloatModel(model, log_scale, cfg)


@torch.no_grad()
def normalize_weight_range(model: nn.Module) -> float:
    """Rescale every weight layer to ``max |w| = 1`` (bitfab's quantizers have the fixed range
    [-1, 1]; a float-trained layer's weights are far smaller) without changing the function: the
    BatchNorm after a layer gets ``running_mean * s`` and ``running_var * s**2``. The classifier
    has no BatchNorm: its logits grow by ``s``, and the returned ``1 / s`` undoes that (the
    caller folds it into the logit scale)."""
    mods = list(model.modules())
    last = 1.0
    weight_layers = [m for m in mods if isinstance(m, (nn.Conv2d, nn.Linear))]
    for k, m in enumerate(weight_layers):
        peak = float(m.weight.abs().max())
        if peak == 0.0:
            continue
        s = 1.0 / peak
        m.weight.mul_(s)
        bn = next(
            (
                b
                for b in mods[mods.index(m) + 1 :]
                if isinstance(b, nn.modules.batchnorm._BatchNorm)
            ),
            None,
        )
        is_last = k == len(weight_layers) - 1
        if is_last or bn is None:
            last = peak
            continue
        bn.running_mean.mul_(s)
        bn.running_var.mul_(s * s)
        bn.eps = bn.eps * s * s
    return last


# --------------------------------------------------------------------------------------------
# sensitivity tables
# --------------------------------------------------------------------------------------------


@dataclass
class Sensitivity:
    """Per-layer sensitivity tables: ``weight[i][b]`` for weight layer ``i`` and ``act[i][b]``
    for hidden activation ``i`` at ``b`` bits (dimensionless loss units; lower is safer).
    ``method``: ``"hessian"`` or ``"loss"``; ``traces``: the mean Hessian traces (weights,
    activations) for the Hessian method."""

    method: str
    bits: tuple[int, ...]
    weight: list[dict[int, float]]
    act: list[dict[int, float]]
    traces: dict[str, list[float]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "bits": list(self.bits),
            "weight": [{str(b): v for b, v in d.items()} for d in self.weight],
            "act": [{str(b): v for b, v in d.items()} for d in self.act],
            "traces": self.traces,
        }


class _ActOverride:
    """Forward hooks on the clipped ReLUs: replace activation ``i``'s output by
    ``fn(i, pre, out)`` (None = leave it)."""

    def __init__(self, fm: FloatModel, fn: Callable[[int, torch.Tensor, torch.Tensor], Any]):
        self.handles = []
        for i, m in enumerate(fm.act_modules()):
            self.handles.append(
                m.register_forward_hook(lambda _m, inp, out, i=i: fn(i, inp[0], out))
            )

    def __enter__(self) -> _ActOverride:
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()


def _check_bits(bits: Sequence[int]) -> tuple[int, ...]:
    out = tuple(sorted(set(bits)))
    if not out or any(
        isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= 8 for b in out
    ):
        raise BitfabError(f"bits {list(bits)}: candidate bit widths must be integers 1-8")
    return out


def hessian_sensitivity(
    fm: FloatModel,
    x: torch.Tensor,
    y: torch.Tensor,
    bits: Sequence[int] = DEFAULT_BITS,
    samples: int = 32,
    seed: int = 0,
) -> Sensitivity:
    """HAWQ-V2 sensitivity: mean Hessian trace (Hutchinson, ``samples`` Rademacher vectors) of
    the loss on ``x``/``y`` w.r.t. each weight tensor and each hidden activation tensor, times
    the squared quantization perturbation ``||Q_b(T) - T||^2`` of that tensor."""
    bits = _check_bits(bits)
    weights = [m.weight for m in fm.weight_layers()]
    for w in weights:
        w.requires_grad_(True)
    acts: dict[int, torch.Tensor] = {}
    pres: dict[int, torch.Tensor] = {}
    outs: dict[int, torch.Tensor] = {}

    def capture(i: int, pre: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        # out + e with e = 0 a leaf: d/de = d/d(out), and the graph to the weights stays whole
        e = torch.zeros_like(out, requires_grad=True)
        acts[i], pres[i], outs[i] = e, pre.detach(), out.detach()
        return out + e

    with _ActOverride(fm, capture):

        def loss_fn() -> torch.Tensor:
            return fm.loss(x, y)

        # the activation perturbations e are created during this forward pass
        loss = loss_fn()
        tensors = weights + [acts[i] for i in sorted(acts)]
        traces = hutchinson_trace(lambda: loss, tensors, samples, seed)
    n_w = len(weights)
    mean_w = [tr / w.numel() for (tr, _), w in zip(traces[:n_w], weights, strict=True)]
    act_list = [acts[i] for i in sorted(acts)]
    mean_a = [tr / a.numel() for (tr, _), a in zip(traces[n_w:], act_list, strict=True)]
    w_tab, a_tab = [], []
    with torch.no_grad():
        for w, t in zip(weights, mean_w, strict=True):
            w_tab.append({b: t * float(((quantize_weight(w, b) - w) ** 2).sum()) for b in bits})
        for i, t in enumerate(mean_a):
            a, pre = outs[i], pres[i]
            a_tab.append({b: t * float(((quantize_act(pre, b) - a) ** 2).sum()) for b in bits})
    return Sensitivity("hessian", bits, w_tab, a_tab, {"weight": mean_w, "act": mean_a})


def loss_sensitivity(
    fm: FloatModel,
    x: torch.Tensor,
    y: torch.Tensor,
    bits: Sequence[int] = DEFAULT_BITS,
) -> Sensitivity:
    """Measured sensitivity: the loss increase on ``x``/``y`` when one weight tensor (or one
    hidden activation) alone is quantized to ``b`` bits, the rest float (clamped at 0)."""
    bits = _check_bits(bits)
    with torch.no_grad():
        base = float(fm.loss(x, y))
        w_tab = []
        for m in fm.weight_layers():
            orig = m.weight.detach().clone()
            row = {}
            for b in bits:
                m.weight.copy_(quantize_weight(orig, b))
                row[b] = max(0.0, float(fm.loss(x, y)) - base)
            m.weight.copy_(orig)
            w_tab.append(row)
        a_tab = []
        for i in range(len(fm.act_modules())):
            row = {}
            for b in bits:

                def quant_one(j: int, pre: torch.Tensor, out: torch.Tensor, b=b, i=i):
                    return quantize_act(pre, b) if j == i else None

                with _ActOverride(fm, quant_one):
                    row[b] = max(0.0, float(fm.loss(x, y)) - base)
            a_tab.append(row)
    return Sensitivity("loss", bits, w_tab, a_tab)


def sensitivity(
    fm: FloatModel,
    x: torch.Tensor,
    y: torch.Tensor,
    method: str = "hessian",
    bits: Sequence[int] = DEFAULT_BITS,
    samples: int = 32,
    seed: int = 0,
) -> Sensitivity:
    """:func:`hessian_sensitivity` or :func:`loss_sensitivity` by ``method``."""
    if method == "hessian":
        return hessian_sensitivity(fm, x, y, bits, samples, seed)
    if method == "loss":
        return loss_sensitivity(fm, x, y, bits)
    raise BitfabError(f"sensitivity {method!r}: choose hessian or loss")
