"""FINN streamlining, HW-layer conversion, PE/SIMD folding and the golden model.

Public API:

- :func:`build_dataflow` (``bitfab dataflow``): QONNX file -> ``dataflow.onnx`` + ``dataflow.json``.
  The package itself is callable as that function, so ``bitfab.dataflow(model, out, ...)`` (the
  Python API's name, :func:`bitfab.api.dataflow`) works whether or not this subpackage has been
  imported (importing it makes it the ``dataflow`` attribute of ``bitfab``).
- :func:`make_dataflow`: the same in memory, returns ``(ModelWrapper, report)``.
- :mod:`bitfab.dataflow.golden`: execute ``dataflow.onnx`` on uint8 images (class and every
  layer-boundary integer tensor), and check it against the QONNX model.
- :mod:`bitfab.dataflow.folding`: cycle estimates, folding choice; :mod:`bitfab.dataflow.cost`:
  the LUT and memory cost model.

Import is lazy so that ``import bitfab.dataflow`` does not load FINN.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["build_dataflow", "make_dataflow"]


def __getattr__(name: str):  # noqa: ANN202 - lazy module attribute
    if name in __all__:
        from bitfab.dataflow import build

        return getattr(build, name)
    raise AttributeError(name)


class _CallablePackage(types.ModuleType):
    """This package, callable as :func:`bitfab.dataflow.build.build_dataflow`."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict:
        from bitfab.dataflow.build import build_dataflow

        return build_dataflow(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
