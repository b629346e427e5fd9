"""Verilog text of an Amaranth design, the one way bitfab writes it.

Amaranth annotates every cell with ``(* src = "FILE:LINE" *)``: the absolute path of the Python
source and a line number. bitfab leaves them out (``emit_src=False``), so a design's Verilog
depends on the design only - not on where the checkout lives or on edits that move lines - and
the simulator build caches, keyed by the Verilog text, hit for the same design from any tree.
"""

from __future__ import annotations

from amaranth.back import verilog


def verilog_text(design, name: str) -> str:  # noqa: ANN001 - an Amaranth elaboratable
    """Verilog of ``design`` as module ``name``, without source-location attributes."""
    return verilog.convert(design, name=name, emit_src=False)
