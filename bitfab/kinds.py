"""The PE array kinds: the one definition of their names.

Canonical names: ``parallel`` (bit-parallel baseline), ``bitserial`` (BISMO-style),
``bitfusion`` (Bit Fusion BitBricks). :data:`ARRAY_ALIASES` are older spellings still accepted
from users (``bitparallel`` was ``bitfab synth``'s name for ``parallel``).
"""

from __future__ import annotations

from bitfab.errors import BitfabError

#: Canonical PE array kinds, in the order reports list them.
ARRAY_KINDS: tuple[str, ...] = ("parallel", "bitserial", "bitfusion")
#: Older spellings -> canonical kind.
ARRAY_ALIASES = {"bitparallel": "parallel", "bit-parallel": "parallel", "bit-serial": "bitserial"}


def array_kind(name: str) -> str:
    """Canonical PE array kind of ``name`` (an alias or a kind, any case), or BitfabError."""
    kind = ARRAY_ALIASES.get(str(name).lower(), str(name).lower())
    if kind not in ARRAY_KINDS:
        raise BitfabError(f"array kind {name!r}: expected one of {', '.join(ARRAY_KINDS)}")
    return kind
