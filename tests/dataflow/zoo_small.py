"""Small Brevitas test models in the style of bnn_pynq TFC and FINN's CNV (for tests only).

Inputs are float NCHW [N,1,28,28] = uint8 / 255 (docs/architecture.md). Batch-norm statistics
are randomized (seeded) so that the untrained models have non-trivial thresholds.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn


class TensorNorm(nn.Module):
    """bnn_pynq's scalar affine after the last layer (absorbed into FINN's TopK)."""

    def __init__(self, eps: float = 1e-4) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.rand(1) + 0.5)
        self.bias = nn.Parameter(torch.randn(1) * 0.1)
        self.register_buffer("running_mean", torch.randn(1) * 0.1)
        self.register_buffer("running_var", torch.rand(1) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.running_mean) / torch.sqrt(self.running_var + self.eps) * self.weight + (
            self.bias
        )


def _act(bits: int, relu: bool = False) -> nn.Module:
    import brevitas.nn as qnn

    if bits == 1:
        from brevitas.quant import SignedBinaryActPerTensorConst

        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
    if relu:
        return qnn.QuantReLU(bit_width=bits)
    return qnn.QuantIdentity(bit_width=bits)


def _wq(bits: int) -> dict:
    if bits == 1:
        from brevitas.quant import SignedBinaryWeightPerTensorConst

        return {"weight_quant": SignedBinaryWeightPerTensorConst}
    return {"weight_bit_width": bits}


class TFC(nn.Module):
    """QuantIdentity input -> [QuantLinear(bias=False), BatchNorm1d, act] x n -> QuantLinear ->
    TensorNorm. ``wbits``/``abits`` may be per-layer lists (mixed precision)."""

    def __init__(self, wbits, abits, hidden=(32, 32), relu: bool = False) -> None:
        super().__init__()
        import brevitas.nn as qnn

        n = len(hidden) + 1
        wb = list(wbits) if isinstance(wbits, list | tuple) else [wbits] * n
        ab = list(abits) if isinstance(abits, list | tuple) else [abits] * n
        self.inq = _act(ab[0])
        layers: list[nn.Module] = []
        fan_in = 784
        for i, h in enumerate(hidden):
            layers += [
                qnn.QuantLinear(fan_in, h, bias=False, **_wq(wb[i])),
                nn.BatchNorm1d(h),
                _act(ab[i + 1], relu),
            ]
            fan_in = h
        layers += [qnn.QuantLinear(fan_in, 10, bias=False, **_wq(wb[-1])), TensorNorm()]
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], -1)
        return self.features(self.inq(2.0 * x - 1.0))


class CNV(nn.Module):
    """FINN CNV style, scaled down: [QuantConv2d 3x3 (bias=False), BatchNorm2d, act, (MaxPool2d)]
    x 4 -> QuantLinear, BatchNorm1d, act -> QuantLinear -> TensorNorm."""

    def __init__(self, wbits: int, abits: int, ch=(8, 8, 16, 16), fc: int = 32) -> None:
        super().__init__()
        import brevitas.nn as qnn

        self.inq = _act(abits)
        convs: list[nn.Module] = []
        cin = 1
        for i, c in enumerate(ch):
            convs += [
                qnn.QuantConv2d(cin, c, 3, bias=False, **_wq(wbits)),
                nn.BatchNorm2d(c),
                _act(abits),
            ]
            if i % 2 == 1:
                convs.append(nn.MaxPool2d(2))
            cin = c
        self.convs = nn.Sequential(*convs)
        self.fc = nn.Sequential(
            qnn.QuantLinear(cin * 4 * 4, fc, bias=False, **_wq(wbits)),
            nn.BatchNorm1d(fc),
            _act(abits),
            qnn.QuantLinear(fc, 10, bias=False, **_wq(wbits)),
            TensorNorm(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.inq(2.0 * x - 1.0))
        return self.fc(x.flatten(1))


def randomize_norms(model: nn.Module, seed: int) -> None:
    """Seeded random batch-norm statistics and affine parameters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


def export(model: nn.Module, path: Path, seed: int = 0, dynamo: bool = False) -> Path:
    """Randomize norms, switch to eval and export QONNX with ``brevitas.export.export_qonnx``
    (TorchScript path by default: ~1 s instead of ~8 s for the dynamo exporter)."""
    import contextlib
    import io
    import warnings

    from brevitas.export import export_qonnx

    randomize_norms(model, seed)
    model.eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.randn(1, 1, 28, 28), str(path), dynamo=dynamo)
    return path


#: Families covered by the tests: name -> constructor.
FAMILIES = {
    "tfc_w1a1": lambda: TFC(1, 1),
    "tfc_w2a2": lambda: TFC(2, 2),
    "tfc_w4a4": lambda: TFC(4, 4, relu=True),
    "tfc_mixed": lambda: TFC([4, 2, 1], [8, 2, 1]),
    "cnv_w1a1": lambda: CNV(1, 1),
    "cnv_w2a2": lambda: CNV(2, 2),
}

#: Seeds per family (weights and batch-norm statistics).
SEEDS = {name: i for i, name in enumerate(FAMILIES)}
