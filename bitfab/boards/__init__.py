"""Board catalogue: iCE40 and ECP5 boards and bare devices (see :mod:`bitfab.boards.catalogue`)."""

from bitfab.boards.catalogue import (
    BOARDS,
    DEVICES,
    FAMILIES,
    SerialLink,
    Target,
    get_target,
    target_names,
)

__all__ = ["BOARDS", "DEVICES", "FAMILIES", "SerialLink", "Target", "get_target", "target_names"]
