"""The open-toolchain back end: synthesis, place and route, bitstreams and reports with Yosys +
nextpnr (YoWASP builds).

Public API: :func:`synthesize` (component or Verilog -> :class:`Report`), the out-of-context
:class:`OutOfContextHarness`, and :func:`find_tool` / :func:`tool_version`.
"""

from bitfab.fpga.harness import OutOfContextHarness
from bitfab.fpga.report import Report
from bitfab.fpga.synth import fit_error, synthesize
from bitfab.fpga.toolchain import find_tool, tool_version
from bitfab.fpga.yosys import Resources

__all__ = [
    "OutOfContextHarness",
    "Report",
    "Resources",
    "find_tool",
    "fit_error",
    "synthesize",
    "tool_version",
]
