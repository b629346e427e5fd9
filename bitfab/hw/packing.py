"""Packing of integer lanes into stream words and memory words.

Convention used by every bitfab component: lane ``i`` of an ``n``-lane word of ``w``-bit lanes
occupies bits ``[i*w, (i+1)*w)`` (lane 0 in the least significant bits), as Amaranth's
``data.ArrayLayout`` lays it out. Signed lanes are two's complement. Bipolar lanes (FINN's
BIPOLAR data type, values -1/+1) are one bit: 1 encodes +1, 0 encodes -1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from bitfab.hw.types import KINDS


def encode(value: int, width: int, kind: str) -> int:
    """Encode one integer value as a ``width``-bit field of the given kind."""
    if kind == "bipolar":
        if value not in (-1, 1):
            raise ValueError(f"bipolar value must be -1 or +1, got {value}")
        return 1 if value == 1 else 0
    if kind == "signed":
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    elif kind == "unsigned":
        lo, hi = 0, (1 << width) - 1
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if not lo <= value <= hi:
        raise ValueError(f"value {value} out of range [{lo}, {hi}] for {width}-bit {kind}")
    return value & ((1 << width) - 1)


def decode(field: int, width: int, kind: str) -> int:
    """Decode one ``width``-bit field of the given kind to its integer value."""
    field &= (1 << width) - 1
    if kind == "bipolar":
        return 1 if field & 1 else -1
    if kind == "signed" and field >> (width - 1):
        return field - (1 << width)
    return field


def pack(values: Iterable[int], width: int, kind: str = "unsigned") -> int:
    """Pack integer lanes (lane 0 first) into one word, lane 0 in the LSBs."""
    word = 0
    for i, v in enumerate(values):
        word |= encode(int(v), width, kind) << (i * width)
    return word


def unpack(word: int, width: int, n: int, kind: str = "unsigned") -> list[int]:
    """Unpack ``n`` lanes of ``width`` bits from ``word`` (lane 0 from the LSBs)."""
    return [decode(word >> (i * width), width, kind) for i in range(n)]


def pack_rows(rows: Sequence[Sequence[int]] | np.ndarray, width: int, kind: str) -> list[int]:
    """Pack each row of a 2-D array into one word (e.g. a memory image)."""
    return [pack(row, width, kind) for row in np.asarray(rows).tolist()]
