"""QONNX export of zoo models and the export check (QONNX execution vs torch).

The export uses Brevitas' ``export_qonnx`` on torch's TorchScript path (``dynamo=False``: MatMul
nodes, no dynamo-only ops), then qonnx's ``cleanup_model`` (shape inference, constant folding,
readable names). Input: float ``[1, 1, 28, 28]`` = pixel / 255; output: logits ``[1, 10]``.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bitfab.errors import BitfabError
from bitfab.models.zoo import IMAGE_SHAPE

DEFAULT_CHECK_BATCH = 500


def export_model(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Export ``model`` (a quantized zoo model) to QONNX at ``path`` and clean it up in place."""
    with warnings.catch_warnings():
        # brevitas.graph.equalize warns about an optional CUDA kernel package on import.
        warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")
        from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    was_training = model.training
    model.eval()
    try:
        x = torch.zeros((1, *IMAGE_SHAPE), dtype=torch.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_qonnx(model, input_t=x, export_path=str(path), dynamo=False)
        mw = cleanup_model(ModelWrapper(str(path)))
        mw.save(str(path))
    finally:
        model.train(was_training)


def _torch_logits(model: nn.Module, x: np.ndarray, batch: int) -> np.ndarray:
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(torch.from_numpy(x[i : i + batch])).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 10), np.float32)


def _qonnx_logits(onnx_path: str | os.PathLike[str], x: np.ndarray, batch: int) -> np.ndarray:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    base = ModelWrapper(str(onnx_path))
    models: dict[int, Any] = {}
    outs = []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        n = len(xb)
        if n not in models:
            m = ModelWrapper(base.model.__deepcopy__())
            models[n] = m.transform(ChangeBatchSize(n)).transform(InferShapes())
        m = models[n]
        res = execute_onnx(m, {m.graph.input[0].name: xb})
        outs.append(np.asarray(res[m.graph.output[0].name], dtype=np.float32))
    return np.concatenate(outs) if outs else np.zeros((0, 10), np.float32)


def check_export(
    model: nn.Module,
    onnx_path: str | os.PathLike[str],
    x: np.ndarray,
    *,
    batch: int = DEFAULT_CHECK_BATCH,
    tie_tol: float = 1e-5,
) -> dict[str, Any]:
    """Run the QONNX file with qonnx's ``execute_onnx`` on ``x`` and compare with ``model``.

    ``x``: float32 ``[N, 1, 28, 28]`` model input (pixel / 255). Returns a JSON-ready dict:
    ``images``, ``argmax_agree``, ``disagree``, ``disagree_at_tie`` (torch's top-2 logits equal
    within ``tie_tol`` relative to the logit range), ``disagree_not_tie``, ``max_abs_logit_diff``,
    ``images_logit_diff`` (images whose logits differ by more than float rounding: an activation
    that lands within rounding error of a quantization step can round to the neighbouring level
    when BatchNorm is evaluated in a different order), ``seconds``, ``ok`` (no disagreement
    outside ties). Execution is batched (``batch`` images).
    """
    if not Path(onnx_path).is_file():
        raise BitfabError(f"{onnx_path}: exported model not found")
    x = np.ascontiguousarray(x, dtype=np.float32)
    t0 = time.perf_counter()
    ref = _torch_logits(model, x, batch)
    got = _qonnx_logits(onnx_path, x, batch)
    seconds = time.perf_counter() - t0
    if got.shape != ref.shape:
        raise BitfabError(f"{onnx_path}: QONNX output shape {got.shape} != torch {ref.shape}")
    a_ref, a_got = ref.argmax(1), got.argmax(1)
    dis = a_ref != a_got
    top2 = np.sort(ref, axis=1)[:, -2:] if len(ref) else np.zeros((0, 2))
    scale = np.maximum(np.abs(ref).max(axis=1), 1.0) if len(ref) else np.zeros(0)
    tie = (top2[:, 1] - top2[:, 0]) <= tie_tol * scale
    n_dis, n_tie = int(dis.sum()), int((dis & tie).sum())
    return {
        "images": int(len(x)),
        "argmax_agree": int((~dis).sum()),
        "disagree": n_dis,
        "disagree_at_tie": n_tie,
        "disagree_not_tie": n_dis - n_tie,
        "max_abs_logit_diff": float(np.abs(got - ref).max()) if len(x) else 0.0,
        "images_logit_diff": int((np.abs(got - ref).max(axis=1) > 1e-4 * scale).sum())
        if len(x)
        else 0,
        "seconds": round(seconds, 3),
        "ok": n_dis == n_tie,
    }


def export_and_check(
    model: nn.Module,
    path: Path,
    x_test: torch.Tensor,
    check_images: int | None = None,
    shown_path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Export ``model`` to QONNX at ``path`` and check it against torch on the first
    ``check_images`` of ``x_test`` (all when None); returns :func:`check_export`'s record.

    Raises BitfabError naming ``shown_path`` (default ``path``; the final location when ``path``
    is in a staging folder) if the export disagrees with torch anywhere but at exact ties."""
    export_model(model, path)
    n_check = len(x_test) if check_images is None else min(check_images, len(x_test))
    check = check_export(model, path, x_test[:n_check].numpy())
    if not check["ok"]:
        raise BitfabError(
            f"{shown_path or path}: QONNX export disagrees with torch on "
            f"{check['disagree_not_tie']} of {check['images']} test images (not at ties)"
        )
    return check
