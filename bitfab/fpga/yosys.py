"""The Yosys step: synthesis script for iCE40/ECP5 and resource counts from ``stat -json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Resources:
    """Mapped cell counts of a netlist (one design, one family).

    ``lut`` counts 4-input LUTs: iCE40 ``SB_LUT4``; ECP5 ``LUT4`` plus 2 per ``CCU2C`` carry cell
    (a CCU2C occupies both LUT4s of a slice) plus 4 per ``TRELLIS_DPR16X4`` distributed RAM.
    ``carry`` counts carry cells (iCE40 ``SB_CARRY``, one per bit; ECP5 ``CCU2C``, two bits each).
    ``ff`` counts flip-flops, ``bram`` block RAMs (``SB_RAM40_4K`` / ``DP16KD``), ``spram`` iCE40
    SPRAMs, ``dsp`` hard multipliers (``SB_MAC16`` / ``MULT18X18D``), ``io`` top-level port bits.
    """

    lut: int
    ff: int
    carry: int
    bram: int
    spram: int
    dsp: int
    io: int

    def minus(self, other: Resources) -> Resources:
        """Element-wise difference (``self - other``), floored at 0; ``io`` is kept from self."""
        d = {k: max(v - getattr(other, k), 0) for k, v in asdict(self).items()}
        d["io"] = self.io
        return Resources(**d)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


#: Replacement for synth_ecp5's ``map_luts`` step (abc9, broken in YoWASP's build, see below).
ECP5_LUT_MAP = ("techmap -map +/lattice/latches_map.v", "abc -lut 4:7 -dress", "clean")


def yosys_script(
    family: str,
    top: str,
    sources: list[str],
    *,
    dsp: bool,
    netlist: str | None,
    stat: str,
    blackbox: str | None = None,
) -> str:
    """Yosys script text: read ``sources`` (``.il`` RTLIL or ``.v``/``.sv``), synthesize, report.

    Args:
        family: ``"ice40"`` or ``"ecp5"``.
        top: top module name.
        sources: file names relative to the build folder.
        dsp: map multipliers to hard DSPs (``synth_ice40 -dsp``; else ``synth_ecp5 -nodsp``).
        netlist: JSON netlist to write for nextpnr (``None``: statistics only).
        stat: file for ``stat -json`` of the mapped design.
        blackbox: module to turn into a black box before synthesis (harness-only runs).
    """
    lines = []
    for src in sources:
        if src.endswith(".il"):
            lines.append(f"read_rtlil {src}")
        elif src.endswith(".sv"):
            lines.append(f"read_verilog -sv {src}")
        else:
            lines.append(f"read_verilog {src}")
    if blackbox:
        lines.append(f"blackbox {blackbox}")
    if family == "ice40":  # the primitives a design may instantiate (SB_SPRAM256KA weights)
        lines.append("read_verilog -lib -specify +/ice40/cells_sim.v")
    lines.append(f"hierarchy -check -top {top}")
    if family == "ice40":
        lines.append(f"synth_ice40 -top {top}" + (" -dsp" if dsp else ""))
    elif family == "ecp5":
        # Yosys 0.70 maps ECP5 LUTs with abc9 only, and YoWASP's abc9 build hits an assertion
        # (ABC_OPS_REINTEGRATE) on PE arrays (YoWASP/yosys#29): run synth_ecp5 up to the LUT
        # mapping, map with the classic ABC flow (LUT4 + PFUMX/L6MUX wide functions, as
        # synth_ecp5 -noabc9 used to), then finish synth_ecp5.
        opts = f"-top {top}" + ("" if dsp else " -nodsp")
        lines += [
            f"synth_ecp5 {opts} -run begin:map_luts",
            *ECP5_LUT_MAP,
            f"synth_ecp5 {opts} -run map_cells:",
        ]
    else:
        raise ValueError(f"unknown family {family!r}")
    lines.append(f"tee -q -o {stat} stat -json")
    if netlist:
        lines.append(f"write_json {netlist}")
    return "\n".join(lines) + "\n"


def read_stat(path: Path, top: str) -> tuple[dict[str, int], int]:
    """Cell counts by type for the whole design and the top module's port bits from ``stat -json``."""
    data = json.loads(Path(path).read_text())
    modules = data.get("modules", {})
    design = data.get("design")
    if design is None:  # single-module designs: the top module is the design
        design = next(iter(modules.values()), {})
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    top_mod = modules.get("\\" + top) or modules.get(top) or design
    return cells, int(top_mod.get("num_port_bits", 0))


def resources(family: str, cells: dict[str, int], io: int) -> Resources:
    """Map Yosys cell counts of a ``family`` netlist to :class:`Resources`."""

    def count(pred) -> int:
        return sum(n for name, n in cells.items() if pred(name))

    if family == "ice40":
        return Resources(
            lut=cells.get("SB_LUT4", 0),
            ff=count(lambda c: c.startswith("SB_DFF")),
            carry=cells.get("SB_CARRY", 0),
            bram=count(lambda c: c.startswith("SB_RAM40_4K")),
            spram=cells.get("SB_SPRAM256KA", 0),
            dsp=cells.get("SB_MAC16", 0),
            io=io,
        )
    if family == "ecp5":
        return Resources(
            lut=cells.get("LUT4", 0)
            + 2 * cells.get("CCU2C", 0)
            + 4 * cells.get("TRELLIS_DPR16X4", 0),
            ff=cells.get("TRELLIS_FF", 0),
            carry=cells.get("CCU2C", 0),
            bram=cells.get("DP16KD", 0),
            spram=0,
            dsp=cells.get("MULT18X18D", 0),
            io=io,
        )
    raise ValueError(f"unknown family {family!r}")
