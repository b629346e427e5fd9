"""The model zoo: FINN's TFC/SFC/LFC MLPs and small CNV-style CNNs, as Brevitas QAT models.

Every model takes a float tensor ``[N, 1, 28, 28]`` = uint8 pixel / 255 and returns 10 logits.
Structure (kept inside what FINN's streamlining handles):

    input quant -> [QuantConv2d(3x3, no bias) -> BatchNorm2d -> act quant (-> MaxPool2d 2x2)]*
    -> Flatten -> [QuantLinear(no bias) -> BatchNorm1d -> act quant (-> Dropout)]* -> QuantLinear

The classifier has no BatchNorm and no bias: its logits are (integer dot product) x (scalar scale),
so argmax is decided by integers. Quantizers: :mod:`bitfab.models.quant` (the config's
``quantizer`` family picks the weight and hidden-activation quantizers). The float model (bench
only) has the same layers with plain ``nn`` modules and ``Hardtanh(0, 1)`` (the clipped ReLU of
the >1-bit activation quantizers) in place of the activation quantizers.
"""

from __future__ import annotations

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from torch import nn

from bitfab.models.config import ModelConfig
from bitfab.models.quant import BipolarActQuant, InputQuant, PactAct, act_layer, family

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
BN_EPS = 1e-4


def _act(bits: int, is_float: bool, quantizer: str) -> nn.Module:
    if is_float:
        return nn.Hardtanh(0.0, 1.0)  # the clipped ReLU the unsigned quantizers apply
    return act_layer(quantizer, bits)


def _weight_layer(
    kind: str, n_in: int, n_out: int, bits: int, is_float: bool, quantizer: str
) -> nn.Module:
    if kind == "conv":
        if is_float:
            return nn.Conv2d(n_in, n_out, 3, bias=False)
        wq = family(quantizer).weight_quant
        return QuantConv2d(n_in, n_out, 3, bias=False, weight_quant=wq, weight_bit_width=bits)
    if is_float:
        return nn.Linear(n_in, n_out, bias=False)
    wq = family(quantizer).weight_quant
    return QuantLinear(n_in, n_out, bias=False, weight_quant=wq, weight_bit_width=bits)


class ZooNet(nn.Module):
    """A zoo model built from a :class:`ModelConfig` (see the module docstring for the layers)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        arch = cfg.arch
        f = cfg.is_float
        q = cfg.quantizer
        # 1-bit input: bipolar sign of (x - 0.5), i.e. pixel >= 128 -> +1 (as FINN's TFC binarizes).
        self.input_shift = (not f) and cfg.in_bits == 1
        if f:
            self.input_quant: nn.Module = nn.Identity()
        elif cfg.in_bits == 1:
            self.input_quant = QuantIdentity(act_quant=BipolarActQuant, bit_width=1)
        else:
            self.input_quant = QuantIdentity(act_quant=InputQuant, bit_width=cfg.in_bits)
        self.in_dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 and not arch.convs else None

        layer = 0
        ch, h, w = IMAGE_SHAPE
        self.conv_features = nn.ModuleList()
        for out_ch, pool in arch.convs:
            self.conv_features.append(_weight_layer("conv", ch, out_ch, cfg.wbits[layer], f, q))
            self.conv_features.append(nn.BatchNorm2d(out_ch, eps=BN_EPS))
            self.conv_features.append(_act(cfg.abits[layer], f, q))
            ch, h, w = out_ch, h - 2, w - 2
            if pool:
                self.conv_features.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            layer += 1
        n = ch * h * w
        self.linear_features = nn.ModuleList()
        for width in arch.fcs:
            self.linear_features.append(_weight_layer("fc", n, width, cfg.wbits[layer], f, q))
            self.linear_features.append(nn.BatchNorm1d(width, eps=BN_EPS))
            self.linear_features.append(_act(cfg.abits[layer], f, q))
            if cfg.dropout > 0:
                self.linear_features.append(nn.Dropout(cfg.dropout))
            n = width
            layer += 1
        self.linear_features.append(_weight_layer("fc", n, NUM_CLASSES, cfg.wbits[layer], f, q))
        assert layer + 1 == arch.n_weight_layers

        if not f:  # as Brevitas bnn_pynq: weights start uniform in the quantizer range [-1, 1]
            for m in self.weight_layers():
                nn.init.uniform_(m.weight.data, -1.0, 1.0)

    def weight_layers(self) -> list[nn.Module]:
        """The conv/linear layers in order (``len == cfg.arch.n_weight_layers``)."""
        return [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def regularization(self) -> torch.Tensor | None:
        """Extra training-loss terms of the quantizers (PACT's L2 on alpha), or None."""
        terms = [m.regularization() for m in self.modules() if isinstance(m, PactAct)]
        return torch.stack(terms).sum() if terms else None

    @torch.no_grad()
    def clip_weights(self, lo: float = -1.0, hi: float = 1.0) -> None:
        """Clamp latent float weights of quantized layers to the quantizer range (after each step)."""
        if self.cfg.is_float:
            return
        for m in self.weight_layers():
            m.weight.clamp_(lo, hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: float ``[N, 1, 28, 28]`` = pixel / 255 -> logits ``[N, 10]``."""
        if self.input_shift:
            x = x - 0.5
        x = self.input_quant(x)
        if self.in_dropout is not None:
            x = self.in_dropout(x)
        for m in self.conv_features:
            x = m(x)
        x = torch.flatten(x, 1)
        for m in self.linear_features:
            x = m(x)
        return x


def build_model(cfg: ModelConfig) -> ZooNet:
    """Instantiate the zoo model for ``cfg`` (fresh weights; seed torch first for determinism)."""
    return ZooNet(cfg)
