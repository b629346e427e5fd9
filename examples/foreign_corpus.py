"""Foreign QONNX models for the tests: plain Brevitas, written the way an outside user would.

Nothing here imports ``bitfab.models``. The networks are small non-image models (tabular /
feature-vector inputs) of every head shape the dataflow stage must keep honest:

- ``binary``: a network-intrusion style binary classifier, bipolar (+-1) input of 20 features,
  20-16-1 at W2A2, ending in a single ``BipolarQuant`` output (the class is its sign);
- ``tabular``: 12 signed 3-bit features, 12-24-5 at W3A3, five class logits (argmax head);
- ``regression``: 10 signed 4-bit features, 10-16-3, three signed 4-bit outputs (values head);
- ``softmax``: ``tabular`` ending in ``Softmax`` (an argmax-preserving tail);
- ``logsoftmax``: ``tabular`` ending in ``LogSoftmax``;
- ``argmax``: ``tabular`` ending in ``argmax`` (the graph output is the class index);
- ``topk``: ``tabular`` ending in ``topk(k=1).indices``;
- ``perchannel``: ``tabular`` with per-output-channel weight scales on the hidden layer;
- ``avgpool``: a 1 x 8 x 8 CNN with Brevitas' ``TruncAvgPool2d`` (8 output bits: exact);
- ``strided`` / ``depthwise``: a 1 x 8 x 8 CNN whose second conv has stride 2 / groups = channels.

and, for the refusals (:data:`REFUSED`): ``residual`` (a skip connection: an Add of two
activations), ``concat`` (a Concat of two activations), ``avgpool_lossy`` (``avgpool`` with a
2-bit TruncAvgPool2d output: its rounding drops bits), ``perchannel_last`` (per-channel weight scales on the classifier:
per-logit scales no integer argmax absorbs), ``depthwise`` (a grouped convolution: FINN's
VectorVectorActivation, not built).

Weights are random (seeded); BatchNorm statistics and the activation scales are calibrated by
forward passes in training mode on random inputs, so every layer's outputs spread over its
quantizer's range (no layer is constant). :func:`export` writes QONNX with the TorchScript
("legacy", ``dynamo=False``: MatMul) or the dynamo (Gemm) exporter.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # brevitas warns about optional CUDA kernels on import
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, SignedBinaryActPerTensorConst

#: model name -> number of input features
FEATURES = {
    "binary": 20,
    "tabular": 12,
    "regression": 10,
    "softmax": 12,
    "logsoftmax": 12,
    "argmax": 12,
    "topk": 12,
    "perchannel": 12,
}
MODELS = tuple(FEATURES)
#: models bitfab refuses (with the reason's pattern); inputs: features, or (C, H, W)
REFUSED = {
    "residual": "residual connection .*not supported",
    "concat": "Concat of activations .*not supported",
    "avgpool_lossy": "truncates an average pool with rounding",
    "perchannel_last": r"per-channel scale/bias after the last layer .*--head values",
    "depthwise": r"grouped \(depthwise\) convolution, groups=4",
}
INPUT_SHAPES = {**{k: (v,) for k, v in FEATURES.items()}, "residual": (12,), "concat": (12,), "perchannel_last": (12,),
                "avgpool": (1, 8, 8), "avgpool_lossy": (1, 8, 8), "strided": (1, 8, 8),
                "depthwise": (1, 8, 8)}  # fmt: skip


class BinaryClassifier(nn.Module):
    """Bipolar input [N, 20] -> 16 (W2A2) -> 1 bipolar output (+-1)."""

    def __init__(self, n_in: int = 20, hidden: int = 16) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)
        self.fc1 = qnn.QuantLinear(n_in, hidden, bias=True, weight_bit_width=2)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.fc2 = qnn.QuantLinear(hidden, 1, bias=True, weight_bit_width=2)
        self.bn2 = nn.BatchNorm1d(1)
        self.out = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.fc1(self.inp(x))))
        return self.out(self.bn2(self.fc2(x)))


class TabularMLP(nn.Module):
    """Signed 3-bit input [N, 12] -> 24 (W3A3) -> 5 logits (W3, no output quantizer).

    ``tail``: ``None``, ``"softmax"``, ``"logsoftmax"`` or ``"argmax"`` after the logits.
    """

    def __init__(
        self,
        n_in: int = 12,
        hidden: int = 24,
        classes: int = 5,
        tail=None,  # noqa: ANN001
        per_channel: bool | str = False,
    ) -> None:
        super().__init__()
        pc = {"weight_scaling_per_output_channel": True} if per_channel else {}
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=3)
        self.fc1 = qnn.QuantLinear(n_in, hidden, bias=True, weight_bit_width=3, **pc)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.act1 = qnn.QuantReLU(bit_width=3)
        # per-channel scales on the hidden layer only: on the classifier they would scale each
        # logit differently, which no argmax over integers can absorb (refused, REFUSED)
        last = pc if per_channel == "all" else {}
        self.fc2 = qnn.QuantLinear(hidden, classes, bias=False, weight_bit_width=3, **last)
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act1(self.bn1(self.fc1(self.inp(x)))))
        if self.tail == "softmax":
            return torch.softmax(x, dim=1)
        if self.tail == "logsoftmax":
            return torch.log_softmax(x, dim=1)
        if self.tail == "argmax":
            return torch.argmax(x, dim=1, keepdim=True)
        if self.tail == "topk":
            return torch.topk(x, 1, dim=1).indices
        return x


class SkipMLP(nn.Module):
    """12 -> 16 -> 16 with a skip connection (``join="add"``) or a concatenation (``"concat"``)
    of the two hidden activations -> 3 logits."""

    def __init__(self, join: str = "add") -> None:
        super().__init__()
        self.join = join
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=3)
        self.fc1 = qnn.QuantLinear(12, 16, bias=False, weight_bit_width=2)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.fc2 = qnn.QuantLinear(16, 16, bias=False, weight_bit_width=2)
        self.act2 = qnn.QuantReLU(bit_width=2)
        self.fc3 = qnn.QuantLinear(
            32 if join == "concat" else 16, 3, bias=False, weight_bit_width=2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.fc1(self.inp(x)))
        h2 = self.act2(self.fc2(h))
        return self.fc3(torch.cat([h, h2], dim=1) if self.join == "concat" else h + h2)


class ConvCNN(nn.Module):
    """1 x 8 x 8 image -> conv 3x3 (4 ch) -> [stride-2 conv 3x3 (``"strided"``) or depthwise
    conv 3x3, groups = 4 (``"depthwise"``)] -> 3 logits; W2A2, 4-bit input."""

    def __init__(self, kind: str = "strided") -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4)
        self.conv1 = qnn.QuantConv2d(1, 4, 3, bias=False, weight_bit_width=2)
        self.bn1 = nn.BatchNorm2d(4)
        self.act1 = qnn.QuantReLU(bit_width=2)
        if kind == "strided":
            self.conv2 = qnn.QuantConv2d(4, 8, 3, stride=2, bias=False, weight_bit_width=2)
            c2, side = 8, 2  # 6x6 -> 2x2
        else:
            self.conv2 = qnn.QuantConv2d(4, 4, 3, groups=4, bias=False, weight_bit_width=2)
            c2, side = 4, 4  # 6x6 -> 4x4
        self.bn2 = nn.BatchNorm2d(c2)
        self.act2 = qnn.QuantReLU(bit_width=2)
        self.fc1 = qnn.QuantLinear(c2 * side * side, 3, bias=False, weight_bit_width=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(self.inp(x))))
        return self.fc1(self.act2(self.bn2(self.conv2(x))).flatten(1))


class AvgPoolCNN(nn.Module):
    """1 x 8 x 8 image -> conv 3x3 (4 ch, W2A2) -> TruncAvgPool2d(2) -> 3 logits.

    ``out_bits``: the average pool's output bits (Brevitas' default 8 keeps every bit of the
    window sum, so its ROUND truncation is exact; 2 drops bits: a rounding FINN cannot convert).
    """

    def __init__(self, out_bits: int = 8) -> None:
        super().__init__()
        from brevitas.quant.scaled_int import RoundTo8bit

        class Trunc(RoundTo8bit):
            bit_width = out_bits

        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4)
        self.conv = qnn.QuantConv2d(1, 4, 3, bias=False, weight_bit_width=2)
        self.act = qnn.QuantReLU(bit_width=2, return_quant_tensor=True)
        self.pool = qnn.TruncAvgPool2d(2, trunc_quant=Trunc)
        self.fc1 = qnn.QuantLinear(4 * 3 * 3, 3, bias=False, weight_bit_width=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(self.pool(self.act(self.conv(self.inp(x)))).flatten(1))


class Regressor(nn.Module):
    """Signed 4-bit input [N, 10] -> 16 (W2A2) -> 3 signed 4-bit outputs (W4)."""

    def __init__(self, n_in: int = 10, hidden: int = 16, outputs: int = 3) -> None:
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4)
        self.fc1 = qnn.QuantLinear(n_in, hidden, bias=True, weight_bit_width=2)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.fc2 = qnn.QuantLinear(hidden, outputs, bias=True, weight_bit_width=4)
        self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.fc2(self.act1(self.bn1(self.fc1(self.inp(x))))))


def make(name: str, seed: int = 0) -> nn.Module:
    """The calibrated model ``name`` (one of :data:`MODELS`), in eval mode."""
    torch.manual_seed(seed)
    if name == "binary":
        model = BinaryClassifier()
    elif name == "regression":
        model = Regressor()
    elif name in ("residual", "concat"):
        model = SkipMLP("add" if name == "residual" else "concat")
    elif name in ("strided", "depthwise"):
        model = ConvCNN(name)
    elif name in ("avgpool", "avgpool_lossy"):
        model = AvgPoolCNN(8 if name == "avgpool" else 2)
    elif name == "perchannel":
        model = TabularMLP(per_channel=True)
    elif name == "perchannel_last":
        model = TabularMLP(per_channel="all")
    else:
        model = TabularMLP(tail=None if name == "tabular" else name)
    model.train()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(30):  # BatchNorm statistics and the activations' scales
            model(torch.randn(64, *INPUT_SHAPES[name]))
    return model.eval()


def export(model: nn.Module, path: str | Path, dynamo: bool = False) -> Path:
    """``brevitas.export.export_qonnx`` on a ``[1, features]`` example; returns ``path``."""
    from brevitas.export import export_qonnx

    path = Path(path)
    image = isinstance(model, (AvgPoolCNN, ConvCNN))
    shape = (1, 8, 8) if image else (model.fc1.in_features,)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        x = torch.randn(1, *shape)
        export_qonnx(model, input_t=x, export_path=str(path), dynamo=dynamo)
    return path


def torch_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's own output for float inputs ``x`` (no gradient)."""
    with torch.no_grad():
        return model(x)
