"""One place for Amaranth's "elaboratable created but never used" warning.

Amaranth warns (``UnusedElaboratable``) when an ``Elaboratable`` is garbage-collected without
having been elaborated. bitfab builds many components only to read their parameters, estimates
or cycle formulas; :func:`unused_ok` marks such an object as intentionally unelaborated. It is the
only code in bitfab that touches Amaranth's private ``_MustUse__silence`` flag.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def unused_ok(obj: T, ok: bool = True) -> T:
    """Mark ``obj`` (an Amaranth elaboratable, or a fragment) as fine to leave unelaborated
    (``ok=False`` turns the warning back on). Returns ``obj``."""
    obj._MustUse__silence = ok  # the flag of amaranth._utils.MustUse
    return obj
