"""`bitfab mixed`: hardware-aware mixed-precision allocation (registered by bitfab.cli)."""

from __future__ import annotations

import argparse


def add_mixed(sub: argparse._SubParsersAction) -> None:
    """Register the `mixed` sub-command (not built yet: registers nothing)."""
