"""Generic cocotb test module: replays stream test cases from a JSON file against the DUT.

Run by :func:`bitfab.sim.rtl_runner.run_cases` (it writes the JSON and points the environment
variable ``BITFAB_SIM_PARAMS`` at it; the report goes to ``$BITFAB_SIM_RESULT``). The JSON
holds::

    {"ports": <PortMap.to_json()>,
     "cases": [{"name": str,
                "setup": {plain input port: int},       # constants, set while in reset
                "inputs": {input stream: [int, ...]},   # raw payload words
                "expected": {output stream: [int, ...]},
                "gap": float, "stall": float, "seed": int,
                "max_cycles": int (optional),
                "skip_idle": bool (optional, default true)}, ...]}

Cases run one after the other in one simulation; each starts with a reset, with its setup
constants applied during reset. The test fails at the first mismatching output word, naming
the case, stream, word index, expected and received value; it also fails when the outputs
are complete while input words were never taken. Per-case cycle counts and the
simulation wall time go to the result file (JSON, ``$BITFAB_SIM_RESULT``) so the runner can report cycles/s.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

from bitfab.sim.cocotb_streams import reset, run_streams, set_inputs, start_clock
from bitfab.sim.verilog import PortMap

PARAMS_ENV = "BITFAB_SIM_PARAMS"
RESULT_ENV = "BITFAB_SIM_RESULT"


@cocotb.test()
async def replay_cases(dut) -> None:
    """Replay every case of the JSON file named by ``$BITFAB_SIM_PARAMS``."""
    spec = json.loads(Path(os.environ[PARAMS_ENV]).read_text())
    ports = PortMap.from_json(spec["ports"])
    result_path = os.environ.get(RESULT_ENV)
    report: dict = {"cases": [], "cycles": 0, "wall_s": 0.0, "error": None}
    t0 = time.perf_counter()
    start_clock(dut, ports)
    try:
        for case in spec["cases"]:
            name = case.get("name", f"case{len(report['cases'])}")
            set_inputs(dut, ports, case.get("setup", {}))
            await reset(dut, ports)
            expected = case.get("expected", {})
            tc = time.perf_counter()
            res = await run_streams(
                dut,
                ports,
                case.get("inputs", {}),
                {k: len(v) for k, v in expected.items()},
                expected=expected,
                gap=case.get("gap", 0.0),
                stall=case.get("stall", 0.0),
                seed=case.get("seed", 0),
                max_cycles=case.get("max_cycles", 1_000_000),
                label=f"case {name!r}: ",
                skip_idle=case.get("skip_idle", True),
            )
            report["cases"].append(
                {
                    "name": name,
                    "cycles": res.cycles,
                    "wall_s": time.perf_counter() - tc,
                    "unsent": res.unsent,
                }
            )
            report["cycles"] += res.cycles
            left = {k: n for k, n in res.unsent.items() if n}
            if left:
                raise AssertionError(
                    f"case {name!r}: all expected outputs arrived but input words were never "
                    f"taken: {left}"
                )
        await RisingEdge(getattr(dut, ports.clk))
    except BaseException as e:  # record, then let cocotb report the failure
        report["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        report["wall_s"] = time.perf_counter() - t0
        if result_path:
            Path(result_path).write_text(json.dumps(report))
