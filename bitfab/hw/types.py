"""Data-type helpers of the HW layers and PE arrays: value kinds and bit widths.

A value type is ``(kind, bits)``: ``kind`` one of :data:`KINDS` (FINN's BIPOLAR is ``bipolar``,
1 bit, values -1/+1; INTk is ``signed``; UINTk and BINARY are ``unsigned``), ``bits`` its width.
Every function here takes the pair in that order.
"""

from __future__ import annotations

import numpy as np

#: The value kinds of stream lanes, weights and thresholds.
KINDS = ("bipolar", "signed", "unsigned")


def check_kind_bits(name: str, kind: str, bits: int, max_bits: int = 8) -> int:
    """Validate a (kind, bits) data type; return the width in bits (bipolar is 1).

    Raises ``ValueError`` naming ``name`` if the kind is unknown or the width is outside
    ``1..max_bits``.
    """
    if kind not in KINDS:
        raise ValueError(f"{name}: kind must be one of {KINDS}, got {kind!r}")
    if kind == "bipolar":
        if bits not in (1, None):
            raise ValueError(f"{name}: bipolar data is 1 bit wide, got bits={bits}")
        return 1
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= max_bits:
        raise ValueError(f"{name}: bits must be an integer in 1..{max_bits}, got {bits!r}")
    if kind == "signed" and bits < 2:
        raise ValueError(f"{name}: signed data needs at least 2 bits, got {bits}")
    return int(bits)


def finn_kind_bits(dtype) -> tuple[str, int]:
    """(kind, bits) of a FINN/qonnx integer data type name (``"UINT4"``, ``"INT8"``,
    ``"BINARY"``, ``"BIPOLAR"``) or ``DataType``; ``ValueError`` for anything else."""
    name = getattr(dtype, "name", dtype)
    name = name.decode() if isinstance(name, bytes) else str(name)
    if name == "BIPOLAR":
        return "bipolar", 1
    if name == "BINARY":
        return "unsigned", 1
    for prefix, kind in (("UINT", "unsigned"), ("INT", "signed")):
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return kind, int(name[len(prefix) :])
    raise ValueError(f"data type {name!r}: only BIPOLAR, BINARY, UINTk and INTk are supported")


def check_positive(name: str, value: int) -> int:
    """Validate a positive integer parameter."""
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_divides(small_name: str, small: int, big_name: str, big: int) -> None:
    """Raise ``ValueError`` unless ``small`` divides ``big``."""
    if big % small:
        raise ValueError(f"{small_name} ({small}) must divide {big_name} ({big})")


def value_range(kind: str, bits: int) -> tuple[int, int]:
    """Smallest and largest value of a (kind, bits) data type."""
    if kind == "bipolar":
        return -1, 1
    if kind == "signed":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def signed_bits_for(lo: int, hi: int) -> int:
    """Bits of a two's complement number holding every integer in ``[lo, hi]``."""
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


def int_bits(v: int) -> int:
    """Signed (two's complement) width needed for the integer ``v``."""
    n = 1
    while not -(1 << (n - 1)) <= v <= (1 << (n - 1)) - 1:
        n += 1
    return n
