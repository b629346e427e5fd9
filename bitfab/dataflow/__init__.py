"""FINN streamlining, HW-layer conversion, PE/SIMD folding and the golden model.

Public API:

- :func:`build_dataflow` (``bitfab dataflow``): QONNX file -> ``dataflow.onnx`` + ``dataflow.json``.
- :func:`make_dataflow`: the same in memory, returns ``(ModelWrapper, report)``.
- :mod:`bitfab.dataflow.golden`: execute ``dataflow.onnx`` on uint8 images (class and every
  layer-boundary integer tensor), and check it against the QONNX model.
- :mod:`bitfab.dataflow.folding`: cycle and LUT estimates, folding choice.

Import is lazy so that ``import bitfab.dataflow`` does not load FINN.
"""

from __future__ import annotations

__all__ = ["build_dataflow", "make_dataflow"]


def __getattr__(name: str):  # noqa: ANN202 - lazy module attribute
    if name in __all__:
        from bitfab.dataflow import build

        return getattr(build, name)
    raise AttributeError(name)
