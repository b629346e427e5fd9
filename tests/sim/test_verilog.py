"""Port maps read from component signatures match the Verilog that Amaranth writes."""

from __future__ import annotations

import re

import pytest
from amaranth import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from sim_toys import DotAcc, LaneAdder

from bitfab.hw.elaboratable import unused_ok
from bitfab.sim.verilog import PortMap, component_to_verilog, port_map


def _module_ports(text: str) -> dict[str, tuple[str, int]]:
    """Verilog port name -> (direction, width) parsed from the declarations."""
    top = re.search(r"^module top\(.*?^endmodule", text, re.M | re.S).group(0)
    ports = {}
    for d, rng, name in re.findall(
        r"^\s*(input|output)\s+(\[\d+:0\]\s+)?\\?([\w$.]+)\s*;", top, re.M
    ):
        w = int(re.match(r"\[(\d+):0\]", rng).group(1)) + 1 if rng else 1
        ports[name] = (d, w)
    return ports


def _quiet(c):
    """Mark a component that is only inspected (never elaborated) as used."""
    unused_ok(c)
    return c


class TwoStreams(wiring.Component):
    """Arrays of streams and of plain ports, and a flipped (output) struct stream."""

    def __init__(self):
        super().__init__(
            {
                "xs": In(stream.Signature(unsigned(3))).array(2),
                "y": Out(stream.Signature(data.StructLayout({"a": 5, "b": 2}))),
                "cfg": In(4).array(3),
                "busy": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.busy.eq(self.xs[0].valid)
        m.d.comb += [
            self.y.payload.a.eq(self.xs[0].payload + self.xs[1].payload + self.cfg[2]),
            self.y.valid.eq(self.xs[0].valid & self.xs[1].valid),
            self.xs[0].ready.eq(self.y.ready),
            self.xs[1].ready.eq(self.y.ready),
        ]
        return m


@pytest.mark.parametrize(
    "make", [LaneAdder, lambda: LaneAdder(lanes=3, width=5), DotAcc, TwoStreams]
)
def test_port_map_matches_verilog(make):
    design = component_to_verilog(make())
    vports = _module_ports(design.text)
    seen = set()
    for sp in design.ports.streams.values():
        pdir = "input" if sp.direction == "in" else "output"
        rdir = "output" if sp.direction == "in" else "input"
        assert vports[sp.payload] == (pdir, sp.width)
        assert vports[sp.valid] == (pdir, 1)
        assert vports[sp.ready] == (rdir, 1)
        seen |= {sp.payload, sp.valid, sp.ready}
    for p in design.ports.plain.values():
        assert vports[p.name] == ("input" if p.direction == "in" else "output", p.width)
        seen.add(p.name)
    assert set(vports) - seen == {"clk", "rst"}
    assert (design.ports.clk, design.ports.rst) == ("clk", "rst")


def test_port_map_fields():
    pm = port_map(_quiet(TwoStreams()))
    assert set(pm.streams) == {"xs__0", "xs__1", "y"}
    assert pm.streams["xs__1"].direction == "in" and pm.streams["xs__1"].width == 3
    assert pm.streams["y"].direction == "out" and pm.streams["y"].width == 7
    assert set(pm.plain) == {"cfg__0", "cfg__1", "cfg__2", "busy"}
    assert pm.plain["busy"].direction == "out"
    pm2 = port_map(_quiet(DotAcc(width=3, acc=11)))
    assert pm2.streams["i"].width == 7 and pm2.streams["o"].width == 11
    assert pm2.plain == {}


def test_port_map_json_round_trip():
    pm = port_map(_quiet(TwoStreams()))
    assert PortMap.from_json(pm.to_json()) == pm
