"""bitfab: low-bit neural networks to verified open-toolchain FPGA bitstreams.

The Python API has the command line's names (docs: :mod:`bitfab.api`, README "From Python")::

    import bitfab
    bitfab.train("runs/tfc", model="tfc", wbits=1, epochs=1)
    bitfab.dataflow("runs/tfc/model.onnx", "runs/tfc/df", target_cycles=1000)
    bitfab.compile("runs/tfc/df/dataflow.onnx", "runs/tfc/acc", array="bitserial")
    bitfab.verify("runs/tfc/acc", images=100)

Each name is imported on first use, so ``import bitfab`` stays instant.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
API: dict[str, str] = {
    "train": "bitfab.api",
    "quantize": "bitfab.api",
    "dataflow": "bitfab.api",
    "compile": "bitfab.api",
    "verify": "bitfab.api",
    "build": "bitfab.api",
    "explore": "bitfab.api",
    "load_dataset": "bitfab.api",
    "GoldenModel": "bitfab.dataflow.golden",
    "BitfabError": "bitfab.errors",
}

__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    if name not in API:
        raise AttributeError(f"module 'bitfab' has no attribute {name!r}")
    value = getattr(importlib.import_module(API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
