"""Yosys + nextpnr on real (YoWASP) tools: one small run per family, reports checked against
the tools' own outputs, and the errors for designs that do not fit.

The first run on a fresh machine compiles YoWASP's WebAssembly (~70 s for Yosys): it is paid once
by the module fixture below.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from fpga_toys import ToyMac

from bitfab.boards import get_target
from bitfab.errors import BitfabError
from bitfab.fpga import Report, synthesize
from bitfab.fpga.harness import OutOfContextHarness
from bitfab.hw.elaboratable import unused_ok

ACC = 12


@pytest.fixture(scope="module", params=["up5k", "ecp5-25f"])
def run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / request.param
    report = synthesize(ToyMac(4, 4, ACC), request.param, out, clock_mhz=40, bitstream=True)
    return request.param, out, report


def _cells(path):
    data = json.loads(path.read_text())
    return data["design"]["num_cells_by_type"]


def test_report_counts_match_yosys_stat(run):
    target, out, r = run
    cells = _cells(out / "yosys_stat.json")
    if r.family == "ice40":
        assert r.total.lut == cells["SB_LUT4"]
        assert r.total.ff == sum(n for c, n in cells.items() if c.startswith("SB_DFF"))
        assert r.total.carry == cells.get("SB_CARRY", 0)
    else:
        assert r.total.lut == cells["LUT4"] + 2 * cells.get("CCU2C", 0)
        assert r.total.ff == cells["TRELLIS_FF"]
    assert r.total.bram == r.total.dsp == r.total.spram == 0
    assert r.lut > 0 and r.design_only.lut + r.harness.lut == r.total.lut


def test_harness_cost_is_measured_exactly(run):
    target, out, r = run
    dut = ToyMac(4, 4, ACC)
    h = OutOfContextHarness(dut)
    unused_ok(h)
    unused_ok(dut)
    # the black-boxed harness has exactly the chain, tree and pin registers; the design's own
    # registers are its accumulator
    assert r.harness.ff == h.harness_ffs()
    assert r.design_only.ff == ACC
    assert r.design_only.carry > 0  # the accumulator's adder is a carry chain


def test_post_route_figures(run):
    target, out, r = run
    rep = json.loads((out / "nextpnr_report.json").read_text())
    achieved = [v["achieved"] for v in rep["fmax"].values()]
    assert r.fmax_mhz == pytest.approx(min(achieved))
    assert 1.0 < r.fmax_mhz < 1000.0
    cells = r.utilization["logic_cells"]
    assert cells["available"] == get_target(target).luts
    assert r.total.lut <= cells["used"] <= r.total.lut + r.total.ff + r.total.carry
    assert cells["percent"] == pytest.approx(100 * cells["used"] / cells["available"], abs=0.01)
    # clk, rst, sin and the output pins
    dut = ToyMac(4, 4, ACC)
    h = OutOfContextHarness(dut)
    unused_ok(h)
    unused_ok(dut)
    assert r.utilization["io"]["used"] == 3 + h.n_sout


def test_outputs_on_disk(run):
    target, out, r = run
    for name in ("yosys.log", "yosys_harness.log", "nextpnr.log", "netlist.json", "report.json"):
        assert (out / name).stat().st_size > 0, name
    again = Report.from_dict(json.loads((out / "report.json").read_text()))
    assert again == dataclasses.replace(r)
    bit = (out / r.files["bitstream"]).read_bytes()
    if r.family == "ice40":
        assert bytes.fromhex("7eaa997e") in bit[:256]  # iCE40 sync word
    else:
        assert bytes.fromhex("ffffbdb3") in bit[:2048]  # ECP5 preamble
    assert r.times_s["yosys"] > 0 and r.times_s["nextpnr"] > 0


BIG_RAM = """
module top(input clk, input [12:0] addr, input [19:0] d, input we, output reg [19:0] q);
  reg [19:0] mem [0:8191];
  always @(posedge clk) begin
    if (we) mem[addr] <= d;
    q <= mem[addr];
  end
endmodule
"""


def test_too_big_for_the_device(tmp_path):
    out = tmp_path / "big"
    with pytest.raises(BitfabError) as exc:
        synthesize(BIG_RAM, "up5k", out, name="bigram")
    msg = str(exc.value)
    assert "bigram does not fit up5k" in msg and "block RAMs" in msg and "(has 30)" in msg
    assert "bigger device" in msg and "ecp5" in msg and "\n" not in msg
    assert not out.exists()


PINS = "module top(input [29:0] a, output [29:0] y); assign y = ~a; endmodule\n"


def test_pin_overflow_caught_before_and_by_nextpnr(tmp_path):
    with pytest.raises(BitfabError, match=r"needs 60 I/O pins \(has 39\)"):
        synthesize(PINS, "up5k", tmp_path / "a")
    # pretend the package had pins enough: nextpnr itself must refuse, and we name it
    roomy = dataclasses.replace(get_target("up5k"), io=1000)
    with pytest.raises(BitfabError, match="does not fit up5k.*I/O pins"):
        synthesize(PINS, roomy, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_bad_inputs(tmp_path):
    with pytest.raises(BitfabError, match="unknown board or device 'artix7'"):
        synthesize(PINS, "artix7", tmp_path / "x")
    with pytest.raises(BitfabError, match="does not exist"):
        synthesize(str(tmp_path / "missing.v"), "up5k", tmp_path / "x")
    with pytest.raises(BitfabError, match="harness needs an Amaranth"):
        synthesize(PINS, "up5k", tmp_path / "x", harness=True)
