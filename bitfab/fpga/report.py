"""The synthesis + place-and-route report: one dataclass, JSON out, a rich table for people."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bitfab.fpga.yosys import Resources


@dataclass
class Report:
    """What one :func:`bitfab.fpga.synthesize` run measured.

    Counts come from Yosys (mapped netlist, before packing); ``utilization`` and ``fmax_mhz``
    from nextpnr after routing.

    Attributes:
        design: design name (component class or Verilog top).
        target: catalogue name (``"up5k"``, ``"icebreaker"``...); ``family``, ``device``,
            ``package`` as in :class:`bitfab.boards.Target`.
        clock_mhz: the clock constraint given to nextpnr, MHz.
        seed: nextpnr placer seed.
        dsp: whether multipliers were allowed onto hard DSPs.
        total: whole netlist that was placed (design + out-of-context harness, if any).
        harness: the harness alone (design black-boxed), ``None`` without a harness.
        design_only: ``total - harness`` (``total`` without a harness): the design's own cost.
        fmax_mhz: post-route Fmax in MHz (worst clock), ``None`` if no clock.
        utilization: resource -> used / available / percent, from nextpnr (whole netlist).
        critical_path: nextpnr's slowest path (see :class:`bitfab.fpga.pnr.PnrResult`).
        times_s: wall seconds per step (``convert``, ``yosys``, ``yosys_harness``, ``nextpnr``,
            ``pack``).
        tools: tool name -> version string.
        files: role -> file name inside the output folder (logs, netlist, report, bitstream).
    """

    design: str
    target: str
    family: str
    device: str
    package: str
    clock_mhz: float
    seed: int
    dsp: bool
    total: Resources
    harness: Resources | None
    design_only: Resources
    fmax_mhz: float | None
    utilization: dict[str, dict[str, float]]
    critical_path: dict | None = None
    times_s: dict[str, float] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    out_dir: str = ""

    # Convenience accessors for the design's own cost (what benchmarks compare).
    @property
    def lut(self) -> int:
        return self.design_only.lut

    @property
    def ff(self) -> int:
        return self.design_only.ff

    @property
    def carry(self) -> int:
        return self.design_only.carry

    @property
    def bram(self) -> int:
        return self.design_only.bram

    @property
    def dsp_cells(self) -> int:
        return self.design_only.dsp

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total"] = self.total.as_dict()
        d["harness"] = self.harness.as_dict() if self.harness else None
        d["design_only"] = self.design_only.as_dict()
        return d

    def write_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> Report:
        d = dict(d)
        d["total"] = Resources(**d["total"])
        d["harness"] = Resources(**d["harness"]) if d.get("harness") else None
        d["design_only"] = Resources(**d["design_only"])
        return cls(**d)

    def table(self):
        """A :class:`rich.table.Table` summary."""
        from rich.table import Table

        fmax = f"{self.fmax_mhz:.1f} MHz" if self.fmax_mhz else "n/a"
        t = Table(
            title=f"{self.design} on {self.target} ({self.device} {self.package}): "
            f"Fmax {fmax} (target {self.clock_mhz:g} MHz)"
        )
        t.add_column("resource")
        t.add_column("design", justify="right")
        t.add_column("harness", justify="right")
        t.add_column("total", justify="right")
        for k in ("lut", "ff", "carry", "bram", "spram", "dsp"):
            h = getattr(self.harness, k) if self.harness else "-"
            t.add_row(k, str(getattr(self.design_only, k)), str(h), str(getattr(self.total, k)))
        for k, u in self.utilization.items():
            t.add_row(
                f"{k} (placed)", "", "", f"{u['used']}/{u['available']} ({u['percent']:.1f}%)"
            )
        t.caption = "  ".join(f"{k} {v:.1f} s" for k, v in self.times_s.items())
        return t
