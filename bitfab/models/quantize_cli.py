"""`bitfab quantize`: post-training quantization of a float zoo checkpoint (registered by bitfab.cli)."""

from __future__ import annotations

import argparse


def add_quantize(sub: argparse._SubParsersAction) -> None:
    """Register the `quantize` sub-command (not built yet: registers nothing)."""
