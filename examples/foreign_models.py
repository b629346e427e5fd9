"""Two QONNX models that bitfab did not define: written the way an outside Brevitas user would.

Only plain ``brevitas.nn`` layers with Brevitas' stock quantizers (``Uint8ActPerTensorFloat``
for activations with learned per-tensor scales, ``Int8WeightPerTensorFloat`` for weights, bit
widths overridden), ``torch.nn.BatchNorm`` and ``MaxPool2d``, a plain PyTorch training loop and
``brevitas.export.export_qonnx``. Nothing here imports ``bitfab.models`` (its zoo, quantizers or
training code); only the Fashion-MNIST/digits readers are shared with bitfab so that the test
images are the ones ``bitfab verify`` streams.

Input convention (as bitfab's graphs expect): float NCHW ``[N, 1, 28, 28]`` = uint8 pixel / 255.

- :class:`ForeignMLP`: 784-128-96-10, unsigned 8-bit input, hidden QuantLinear with float bias
  -> BatchNorm1d -> QuantReLU, mixed precision W4A2 / W2A2 / W4 classifier (no bias).
- :class:`ForeignCNN`: conv 3x3 (16 ch) -> BN -> QuantReLU -> MaxPool 2 -> conv 3x3 (32 ch) ->
  BN -> QuantReLU -> MaxPool 2 -> QuantLinear(32*s*s, 10); W2A2 with a 4-bit unsigned input;
  ``cnn`` without padding (s = 5), ``cnn_pad1`` with padding 1 (s = 7, FINN emits FMPadding).
"""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # brevitas warns about optional CUDA kernels on import
    import brevitas.nn as qnn
    from brevitas.quant import Uint8ActPerTensorFloat


class ForeignMLP(nn.Module):
    """784-128-96-10 MLP: 8-bit unsigned input; W4A2, W2A2 hidden layers; W4 classifier.

    ``x``: float ``[N, 1, 28, 28]`` in [0, 1] -> logits ``[N, 10]``.
    """

    def __init__(self, hidden: tuple[int, int] = (128, 96)) -> None:
        super().__init__()
        h1, h2 = hidden
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=8)
        self.fc1 = qnn.QuantLinear(784, h1, bias=True, weight_bit_width=4)
        self.bn1 = nn.BatchNorm1d(h1)
        self.act1 = qnn.QuantReLU(bit_width=2)
        self.fc2 = qnn.QuantLinear(h1, h2, bias=True, weight_bit_width=2)
        self.bn2 = nn.BatchNorm1d(h2)
        self.act2 = qnn.QuantReLU(bit_width=2)
        self.fc3 = qnn.QuantLinear(h2, 10, bias=False, weight_bit_width=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.inp(x.flatten(1))
        x = self.act1(self.bn1(self.fc1(x)))
        x = self.act2(self.bn2(self.fc2(x)))
        return self.fc3(x)


class ForeignCNN(nn.Module):
    """Two padded 3x3 convolutions (16, 32 channels) with max-pools, then one QuantLinear.

    4-bit unsigned input, W2A2 elsewhere. ``x``: float ``[N, 1, 28, 28]`` in [0, 1] -> logits
    ``[N, 10]``. Feature maps with ``padding=1`` (FINN then emits FMPadding layers): 28x28x16 ->
    14x14x16 -> 14x14x32 -> 7x7x32 -> 10; with ``padding=0``: 26x26x16 -> 13x13x16 -> 11x11x32 ->
    5x5x32 -> 10.
    """

    def __init__(
        self, ch: tuple[int, int] = (16, 32), wbits: int = 2, abits: int = 2, padding: int = 1
    ) -> None:
        super().__init__()
        c1, c2 = ch
        side = ((28 + 2 * padding - 2) // 2 + 2 * padding - 2) // 2  # after conv, pool, conv, pool
        self.features = nn.Sequential(
            qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, bit_width=4),
            qnn.QuantConv2d(1, c1, 3, padding=padding, bias=False, weight_bit_width=wbits),
            nn.BatchNorm2d(c1),
            qnn.QuantReLU(bit_width=abits),
            nn.MaxPool2d(2),
            qnn.QuantConv2d(c1, c2, 3, padding=padding, bias=False, weight_bit_width=wbits),
            nn.BatchNorm2d(c2),
            qnn.QuantReLU(bit_width=abits),
            nn.MaxPool2d(2),
        )
        self.classifier = qnn.QuantLinear(c2 * side * side, 10, bias=False, weight_bit_width=wbits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


#: Model name -> constructor. ``cnn`` has unpadded convolutions, ``cnn_pad1`` padding 1.
MODELS: dict[str, Callable[[], nn.Module]] = {
    "mlp": ForeignMLP,
    "cnn": lambda: ForeignCNN(padding=0),
    "cnn_pad1": lambda: ForeignCNN(padding=1),
}


def to_float(images: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, 1, 28, 28]`` pixels -> float tensor pixel / 255."""
    return torch.from_numpy(images.astype(np.float32) / np.float32(255.0))


def train(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    *,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> nn.Module:
    """A plain PyTorch loop: Adam, cross-entropy, cosine learning rate, shuffled batches.

    ``images``: uint8 ``[N, 1, 28, 28]``; ``labels``: int ``[N]``. Returns the model in eval mode.
    """
    torch.manual_seed(seed)
    x, y = to_float(images), torch.from_numpy(labels.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for ep in range(epochs):
        t0, total = time.perf_counter(), 0.0
        perm = torch.randperm(len(x))
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        if log is not None:
            log(
                f"epoch {ep + 1}/{epochs}: loss {total / len(x):.4f} ({time.perf_counter() - t0:.0f} s)"
            )
    return model.eval()


@torch.no_grad()
def torch_predict(model: nn.Module, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """Class index per image (``int64 [N]``) from the torch model in eval mode."""
    model.eval()
    out = [model(to_float(images[i : i + batch])).argmax(1) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy()


def export(model: nn.Module, path: str | Path) -> Path:
    """``brevitas.export.export_qonnx`` on a ``[1, 1, 28, 28]`` example (TorchScript path)."""
    from brevitas.export import export_qonnx

    model.eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, input_t=torch.rand(1, 1, 28, 28), export_path=str(path), dynamo=False)
    return Path(path)


def qonnx_predict(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Class index per image from qonnx's execution of the exported QONNX file (one at a time)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    m = cleanup_model(ModelWrapper(str(path)))
    iname, oname = m.graph.input[0].name, m.graph.output[0].name
    x = to_float(images).numpy()
    return np.array(
        [int(np.argmax(execute_onnx(m, {iname: x[i : i + 1]})[oname])) for i in range(len(x))]
    )
