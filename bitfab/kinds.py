"""The PE array kinds: the one definition of their names.

Canonical names: ``parallel`` (bit-parallel baseline), ``bitserial`` (BISMO-style),
``bitfusion`` (Bit Fusion BitBricks). Older spellings (``bitparallel`` was ``bitfab synth``'s
name for ``parallel``) are accepted by the command line only (:mod:`bitfab.cli.common`); the
Python API and config files take the canonical names.
"""

from __future__ import annotations

from bitfab.errors import BitfabError

#: Canonical PE array kinds, in the order reports list them.
ARRAY_KINDS: tuple[str, ...] = ("parallel", "bitserial", "bitfusion")


def array_kind(name: str) -> str:
    """``name`` checked against :data:`ARRAY_KINDS` (any case), or BitfabError naming them."""
    kind = str(name).lower()
    if kind not in ARRAY_KINDS:
        raise BitfabError(f"array kind {name!r}: expected one of {', '.join(ARRAY_KINDS)}")
    return kind
