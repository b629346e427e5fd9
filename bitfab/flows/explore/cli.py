"""`bitfab explore`: design-space sweeps (registered by bitfab.cli)."""

from __future__ import annotations

import argparse


def add_explore(sub: argparse._SubParsersAction) -> None:
    """Register the `explore` sub-command (not built yet: registers nothing)."""
