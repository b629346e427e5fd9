"""Load a QONNX model file and reject what the dataflow stage cannot use (one-line errors)."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from qonnx.core.modelwrapper import ModelWrapper

from bitfab.errors import BitfabError

#: QONNX quantizer op types; a model without any is a float model.
QUANT_OPS = ("Quant", "BipolarQuant", "BinaryQuant", "Trunc")


def load_qonnx(path: str | os.PathLike[str]) -> ModelWrapper:
    """Read ``path`` as a QONNX model with one input and one output and at least one quantizer.

    Raises :class:`BitfabError` for a missing, unreadable/truncated or float (no Quant node) file.
    """
    p = Path(path)
    if not p.is_file():
        raise BitfabError(f"{p}: no such file; pass the model.onnx written by 'bitfab train'")
    try:
        proto = onnx.load(str(p))
    except Exception as e:  # protobuf DecodeError, missing external data, ...
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BitfabError(
            f"{p}: not a readable ONNX model ({type(e).__name__}: {reason[:120]}); "
            "the file is truncated or corrupt, re-export it"
        ) from None
    graph = proto.graph
    if len(graph.node) == 0:
        raise BitfabError(f"{p}: the ONNX graph has no nodes; the file is truncated or not a model")
    if len(graph.input) < 1 or len(graph.output) != 1:
        raise BitfabError(
            f"{p}: expected one graph input and one output, found {len(graph.input)} and "
            f"{len(graph.output)}"
        )
    if not any(n.op_type in QUANT_OPS for n in graph.node):
        raise BitfabError(
            f"{p}: float (unquantized) model, no Quant nodes; export a Brevitas QAT model "
            "with brevitas.export.export_qonnx"
        )
    try:
        return ModelWrapper(proto)
    except Exception as e:
        raise BitfabError(f"{p}: qonnx cannot wrap this model ({type(e).__name__}: {e})") from None
