"""PE arrays: one class per kind of :data:`bitfab.kinds.ARRAY_KINDS`, all subclasses of
:class:`~bitfab.hw.arrays.base.PEArray`, which owns the PE array contract (docs/hw_pe_arrays.md).

:func:`array_class` is the registry: kind name -> class, imported on first use; the class's
``kind`` attribute is its key here.
"""

from __future__ import annotations

import importlib

from bitfab.hw.arrays.base import PEArray
from bitfab.kinds import ARRAY_KINDS, array_kind

#: kind -> (module, class) of the PE array implementing the contract
ARRAYS: dict[str, tuple[str, str]] = {
    "parallel": ("bitfab.hw.arrays.parallel", "BitParallelArray"),
    "bitserial": ("bitfab.hw.arrays.bitserial", "BitSerialArray"),
    "bitfusion": ("bitfab.hw.arrays.bitfusion", "BitFusionArray"),
}
assert tuple(ARRAYS) == ARRAY_KINDS, "every array kind needs exactly one class"


def array_class(kind: str) -> type[PEArray]:
    """The PE array class of ``kind`` (a canonical kind; ``ValueError`` for anything else)."""
    if kind not in ARRAYS:
        raise ValueError(f"array must be one of {', '.join(ARRAYS)}, got {kind!r}")
    mod, cls = ARRAYS[kind]
    found = getattr(importlib.import_module(mod), cls)
    assert issubclass(found, PEArray) and found.kind == kind, (
        f"{mod}.{cls} is not the {kind!r} PEArray"
    )
    return found


__all__ = ["ARRAYS", "ARRAY_KINDS", "PEArray", "array_class", "array_kind"]
