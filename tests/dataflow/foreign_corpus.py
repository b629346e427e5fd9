"""Foreign QONNX models for the tests: plain Brevitas, written the way an outside user would.

Nothing here imports ``bitfab.models``. The networks are small non-image models (tabular /
feature-vector inputs) of every head shape the dataflow stage must keep honest:

- ``binary``: a network-intrusion style binary classifier, bipolar (+-1) input of 20 features,
  20-16-1 at W2A2, ending in a single ``BipolarQuant`` output (the class is its sign);
- ``tabular``: 12 signed 3-bit features, 12-24-5 at W3A3, five class logits (argmax head);
- ``regression``: 10 signed 4-bit features, 10-16-3, three signed 4-bit outputs (values head);
- ``softmax``: ``tabular`` ending in ``Softmax`` (an argmax-preserving tail);
- ``logsoftmax``: ``tabular`` ending in ``LogSoftmax``;
- ``argmax``: ``tabular`` ending in ``argmax`` (the graph output is the class index).

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
}
MODELS = tuple(FEATURES)


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

    def __init__(self, n_in: int = 12, hidden: int = 24, classes: int = 5, tail=None) -> None:  # noqa: ANN001
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=3)
        self.fc1 = qnn.QuantLinear(n_in, hidden, bias=True, weight_bit_width=3)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.act1 = qnn.QuantReLU(bit_width=3)
        self.fc2 = qnn.QuantLinear(hidden, classes, bias=False, weight_bit_width=3)
        self.tail = tail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc2(self.act1(self.bn1(self.fc1(self.inp(x)))))
        if self.tail == "softmax":
            return torch.softmax(x, dim=1)
        if self.tail == "logsoftmax":
            return torch.log_softmax(x, dim=1)
        if self.tail == "argmax":
            return torch.argmax(x, dim=1, keepdim=True)
        return x


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
    else:
        model = TabularMLP(tail=None if name == "tabular" else name)
    model.train()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(30):  # BatchNorm statistics and the activations' scales
            model(torch.randn(64, FEATURES[name]))
    return model.eval()


def export(model: nn.Module, path: str | Path, dynamo: bool = False) -> Path:
    """``brevitas.export.export_qonnx`` on a ``[1, features]`` example; returns ``path``."""
    from brevitas.export import export_qonnx

    path = Path(path)
    n_in = model.fc1.in_features
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        export_qonnx(model, input_t=torch.randn(1, n_in), export_path=str(path), dynamo=dynamo)
    return path


def torch_outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's own output for float inputs ``x`` (no gradient)."""
    with torch.no_grad():
        return model(x)
