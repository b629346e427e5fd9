"""Brevitas quantizers for the zoo: four QAT quantizer families (``bitfab train --quantizer``).

Every family exports per-tensor scales that are constants in the QONNX graph (``Quant`` /
``BipolarQuant`` nodes), so FINN streamlining turns each of them into thresholds. They differ in
how the weight and hidden-activation scales are found during training (the input quantizer is the
same for all: an exact ``pixel / 255`` at 8 bits):

- ``finn`` (default): constant scales, after Brevitas' bnn_pynq examples (FINN's reference models;
  BinaryNet at 1 bit). Details below.
- ``stats``: scales taken from statistics, fixed at export: weights by the abs-max of the latent
  weights (recomputed each step), activations by a running average (momentum 0.1) of the
  per-batch 99.99th percentile, frozen in eval mode (the whitepaper's QAT recipe, Krishnamoorthi
  2018). Needs >= 2 bits.
- ``lsq``: learned step sizes (LSQ, Esser et al.): weights and activations each learn their step
  ``s`` (init ``2 * mean|v| / sqrt(Qp)`` on the first batch), with the gradient of ``s`` scaled by
  ``1 / sqrt(N * Qp)`` (``N`` = weights in the layer, or features per image for activations;
  ``Qp`` = largest integer level). Needs >= 2 bits.
- ``pact``: learned clipping level of the activations (PACT, Choi et al.): ``clamp(x, 0, alpha)``
  with a learned ``alpha`` (init 1.0, L2 decay 2e-4), quantized to ``2**b - 1`` steps of
  ``alpha / (2**b - 1)``; the gradient reaches ``alpha`` only through the clip (the quantizer is a
  straight-through estimator), as in the paper. Weights as ``finn``. Needs >= 2 bits.

``finn`` family, all scales constants (per tensor):

- weights: 1 bit -> bipolar {-1, +1} (scale 1); b > 1 bits -> signed narrow-range integers
  ``k / (2**(b-1) - 1)``, ``|k| <= 2**(b-1) - 1``, i.e. values in [-1, 1].
- hidden activations: 1 bit -> bipolar sign {-1, +1} (as bnn_pynq); b > 1 -> unsigned integers
  ``k / (2**b - 1)`` in [0, 1], a clipped ReLU (the BatchNorm before it learns the range). Unsigned
  uses all 2**b levels (bnn_pynq's signed narrow range leaves 2 bits ternary); FINN thresholds
  produce either kind.
- input: 1 bit -> bipolar sign of ``x - 0.5`` (done in the model); b > 1 -> unsigned integers
  ``k / (2**b - 1)`` in [0, 1], so at 8 bits the input Quant reproduces the uint8 pixel exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.stats import StatsOp
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.nn import QuantIdentity
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from dependencies import value
from torch import nn

from bitfab.errors import BitfabError


class CommonQuant(ExtendedInjector):
    """Constant per-tensor scale, zero point 0, round-to-nearest; bipolar at 1 bit."""

    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True

    @value
    def quant_type(bit_width):
        if bit_width is None:
            return QuantType.FP
        if bit_width == 1:
            return QuantType.BINARY
        return QuantType.INT


class WeightQuant(CommonQuant, WeightQuantSolver):
    """Weights in [-1, 1]: bipolar at 1 bit, signed narrow-range integers above."""

    scaling_const = 1.0


class BipolarActQuant(CommonQuant, ActQuantSolver):
    """1-bit hidden activations (and 1-bit input): bipolar sign {-1, +1}."""

    min_val = -1.0
    max_val = 1.0


class UnsignedActQuant(CommonQuant, ActQuantSolver):
    """b-bit hidden activations (b >= 2): unsigned ``k / (2**b - 1)`` in [0, 1], a clipped ReLU."""

    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 1.0


class InputQuant(UnsignedActQuant):
    """Unsigned input in [0, 1] with ``2**b - 1`` steps (b >= 2); at 8 bits that is pixel / 255."""


# --- stats: scales from statistics (Krishnamoorthi 2018) -------------------------------------------
SCALE_MIN = 1e-4  # floor of every data-derived scale (a dead activation must not give scale 0)


class StatsWeightQuant(CommonQuant, WeightQuantSolver):
    """Signed narrow-range b-bit weights, scale = max|w| / (2**(b-1) - 1) of the latent weights."""

    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.MAX
    scaling_min_val = SCALE_MIN


class StatsActQuant(CommonQuant, ActQuantSolver):
    """Unsigned b-bit activations in [0, p] with p a running average of the per-batch 99.99th
    percentile (updated in training mode, fixed in eval mode and in the export)."""

    signed = False
    narrow_range = False
    min_val = 0.0
    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.PERCENTILE
    high_percentile_q = 99.99
    scaling_stats_momentum = 0.1
    scaling_min_val = SCALE_MIN


# --- lsq: learned step size (Esser et al.) --------------------------------------------------------
class LsqScaling(nn.Module):
    """LSQ step size of one tensor quantizer (a Brevitas ``scaling_impl``).

    ``forward(x, threshold)`` returns the step ``s`` (the quantizer's scale, float); ``threshold``
    is ``Qp``, the largest integer level. ``s`` is learned: initialised on the first call from
    ``x`` as ``2 * mean|x| / sqrt(Qp)``, and its gradient is multiplied by
    ``g = 1 / sqrt(N * Qp)`` with ``N`` = elements of ``x`` (weights) or elements per image
    (activations, ``per_sample``).
    """

    per_sample = False

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("initialized", torch.tensor(False))

    def forward(self, x: torch.Tensor, threshold: torch.Tensor | None = None) -> torch.Tensor:
        qp = float(threshold.detach().reshape(-1)[0]) if threshold is not None else 1.0
        n = x[0].numel() if self.per_sample and x.dim() > 1 else x.numel()
        if not bool(self.initialized):
            with torch.no_grad():
                init = 2.0 * x.detach().abs().mean() / math.sqrt(qp)
                self.value.copy_(init.clamp_min(SCALE_MIN))
                self.initialized.fill_(True)
        s = self.value.abs().clamp_min(SCALE_MIN)
        g = 1.0 / math.sqrt(n * qp)
        return (s - s * g).detach() + s * g  # value s, gradient scaled by g (LSQ's gradscale)


class LsqActScaling(LsqScaling):
    """LSQ step size of an activation: ``N`` counts the features of one image."""

    per_sample = True


class LsqWeightQuant(CommonQuant, WeightQuantSolver):
    """Signed narrow-range b-bit weights ``k * s``, ``|k| <= 2**(b-1) - 1``, ``s`` learned (LSQ)."""

    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_impl = LsqScaling


class LsqActQuant(CommonQuant, ActQuantSolver):
    """Unsigned b-bit activations ``k * s``, ``0 <= k <= 2**b - 1``, ``s`` learned (LSQ)."""

    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 1.0
    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_impl = LsqActScaling


# --- pact: learned clipping level (Choi et al.) ---------------------------------------------------
PACT_ALPHA_INIT = 1.0
PACT_L2 = 2e-4  # L2 decay on alpha (the paper's lambda_alpha)


class PactScaling(nn.Module):
    """Holds PACT's clipping level ``alpha`` (float, > 0); as a Brevitas ``scaling_impl`` it
    returns the step ``alpha / (2**b - 1)`` without a gradient (alpha learns through the clip)."""

    def __init__(self) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.tensor(PACT_ALPHA_INIT))

    def alpha(self) -> torch.Tensor:
        return self.value.abs().clamp_min(SCALE_MIN)

    def forward(self, x: torch.Tensor, threshold: torch.Tensor | None = None) -> torch.Tensor:
        a = self.alpha().detach()
        return a if threshold is None else a / threshold


class PactActQuant(CommonQuant, ActQuantSolver):
    """Unsigned b-bit activations ``k * alpha / (2**b - 1)``, ``0 <= k <= 2**b - 1``."""

    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 1.0
    scaling_impl_type = ScalingImplType.PARAMETER
    scaling_impl = PactScaling


class PactAct(nn.Module):
    """PACT activation: ``clamp(x, 0, alpha)`` then b-bit quantization with step
    ``alpha / (2**b - 1)``. In training the clip comes first, so ``d y / d alpha = 1`` where
    ``x >= alpha`` and 0 elsewhere (the quantizer passes gradients straight through). In eval mode
    (and so in the export) only the quantizer runs: its own clamp to ``[0, alpha]`` gives the same
    values, and the graph holds one ``Quant`` node like every other family."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.quant = QuantIdentity(act_quant=PactActQuant, bit_width=bits)

    def scaling(self) -> PactScaling:
        return next(m for m in self.quant.modules() if isinstance(m, PactScaling))

    def regularization(self) -> torch.Tensor:
        """PACT's L2 term on alpha (added to the training loss)."""
        return PACT_L2 * self.scaling().value ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            alpha = self.scaling().alpha()
            x = torch.minimum(torch.relu(x), alpha)
        return self.quant(x)


# --- the families -----------------------------------------------------------------------------
@dataclass(frozen=True)
class QuantizerFamily:
    """One ``--quantizer`` choice: its Brevitas weight quantizer, activation layer and seed paper."""

    name: str
    summary: str
    paper: str
    min_bits: int
    weight_quant: type


FAMILIES: dict[str, QuantizerFamily] = {
    "finn": QuantizerFamily(
        "finn",
        "constant scales (FINN/bnn_pynq), bipolar at 1 bit",
        "BinaryNet (Courbariaux, Hubara et al. 2016) / FINN bnn_pynq",
        1,
        WeightQuant,
    ),
    "stats": QuantizerFamily(
        "stats",
        "scales from statistics (weight abs-max, activation running percentile), fixed at export",
        "Quantizing Deep Convolutional Networks for Efficient Inference: A Whitepaper "
        "(Krishnamoorthi 2018)",
        2,
        StatsWeightQuant,
    ),
    "lsq": QuantizerFamily(
        "lsq",
        "learned step size with gradient scaling 1/sqrt(N*Qp)",
        "LSQ: Learned Step Size Quantization (Esser et al. 2019/ICLR 2020)",
        2,
        LsqWeightQuant,
    ),
    "pact": QuantizerFamily(
        "pact",
        "learned activation clipping level alpha (weights as finn)",
        "PACT: Parameterized Clipping Activation (Choi et al. 2018)",
        2,
        WeightQuant,
    ),
}


def family(name: str) -> QuantizerFamily:
    """The family called ``name``; an unknown name raises :class:`BitfabError`."""
    if name not in FAMILIES:
        raise BitfabError(f"unknown quantizer {name!r}; choose one of {', '.join(FAMILIES)}")
    return FAMILIES[name]


def act_layer(name: str, bits: int) -> nn.Module:
    """The hidden-activation layer of family ``name`` at ``bits`` (1-8) bits."""
    if bits == 1:
        return QuantIdentity(act_quant=BipolarActQuant, bit_width=1)
    if name == "stats":
        return QuantIdentity(act_quant=StatsActQuant, bit_width=bits)
    if name == "lsq":
        return QuantIdentity(act_quant=LsqActQuant, bit_width=bits)
    if name == "pact":
        return PactAct(bits)
    return QuantIdentity(act_quant=UnsignedActQuant, bit_width=bits)


def restore_stats_counters(model: nn.Module, calls: int) -> None:
    """After loading a checkpoint: tell Brevitas' running-statistics modules (``stats`` family)
    that ``calls`` training batches have been seen. Brevitas keeps that count outside the state
    dict, and at 0 the next batch would overwrite the running average instead of updating it."""
    for m in model.modules():
        if hasattr(m, "running_stats") and hasattr(m, "counter"):
            m.counter = calls
