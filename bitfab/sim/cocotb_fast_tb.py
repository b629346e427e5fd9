"""cocotb test for the free-running harness (:mod:`bitfab.sim.fast_harness`).

Python only starts the clock, applies the setup constants, holds reset for two cycles and then
sleeps until the harness raises ``done`` (or the cycle budget ends); stimulus, random gaps and
stalls, and the comparison with the expected words all run inside the simulator. Parameters
(JSON named by ``$BITFAB_SIM_PARAMS``): ``ports`` (the design's PortMap), ``name``, ``setup``,
``counts`` ({stream: words}), ``expected_files`` ({output stream: hex file}), ``max_cycles``.
The report (``$BITFAB_SIM_RESULT``) has the same keys as :mod:`bitfab.sim.cocotb_case_tb`'s.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from bitfab.sim.cocotb_streams import CLOCK_PERIOD_NS
from bitfab.sim.verilog import PortMap

PARAMS_ENV = "BITFAB_SIM_PARAMS"
RESULT_ENV = "BITFAB_SIM_RESULT"


def _int(handle) -> int:
    return int(handle._handle.get_signal_val_binstr(), 2)


@cocotb.test()
async def free_run(tb) -> None:
    """Run the harness to completion and report cycles and the first mismatch."""
    spec = json.loads(Path(os.environ[PARAMS_ENV]).read_text())
    ports = PortMap.from_json(spec["ports"])
    name = spec.get("name", "case0")
    report: dict = {"cases": [], "cycles": 0, "wall_s": 0.0, "error": None}
    t0 = time.perf_counter()
    try:
        Clock(tb.clk, CLOCK_PERIOD_NS, unit="ns").start(start_high=False)
        for port, v in spec.get("setup", {}).items():
            p = ports.plain.get(port)
            if p is None or p.direction != "in":
                raise ValueError(f"no plain input port {port!r} on the DUT")
            getattr(tb, port).value = int(v) & ((1 << p.width) - 1)
        tb.rst.value = 1
        for _ in range(2):
            await RisingEdge(tb.clk)
        tb.rst.value = 0
        tc = time.perf_counter()
        max_cycles = int(spec.get("max_cycles", 10_000_000))
        budget = Timer(max_cycles * CLOCK_PERIOD_NS, "ns")
        await ReadOnly()
        if not _int(tb.done):
            fired = await First(RisingEdge(tb.done), budget)
            await ReadOnly()
            if fired is budget:
                got = ", ".join(
                    f"{s}: {_int(getattr(tb, 'count_' + s))}/{n} words"
                    for s, n in spec["counts"].items()
                    if ports.streams[s].direction == "out"
                )
                raise TimeoutError(
                    f"case {name!r}: no complete output after {max_cycles} cycles: {got}"
                )
        outs = [s for s, sp in ports.streams.items() if sp.direction == "out"]
        ins = [s for s, sp in ports.streams.items() if sp.direction == "in"]
        cycles = max(_int(getattr(tb, "last_" + s)) for s in outs)
        for s in outs:
            if _int(getattr(tb, "err_" + s)):
                i = _int(getattr(tb, "err_idx_" + s))
                got = _int(getattr(tb, "err_got_" + s))
                lines = Path(spec["expected_files"][s]).read_text().split()
                exp = int(lines[i], 16)
                w = ports.streams[s].width
                digits = max(1, (w + 3) // 4)
                raise AssertionError(
                    f"case {name!r}: stream {s!r} word {i} of {spec['counts'][s]}: "
                    f"expected {exp} (0x{exp:0{digits}x}), got {got} (0x{got:0{digits}x})"
                )
        left = {s: spec["counts"][s] - _int(getattr(tb, "sent_" + s)) for s in ins}
        left = {s: n for s, n in left.items() if n}
        report["cases"].append(
            {"name": name, "cycles": cycles, "wall_s": time.perf_counter() - tc, "unsent": left}
        )
        report["cycles"] = cycles
        if left:
            raise AssertionError(
                f"case {name!r}: all expected outputs arrived but input words were never "
                f"taken: {left}"
            )
        await RisingEdge(tb.clk)
    except BaseException as e:
        report["error"] = f"{type(e).__name__}: {e}"
        raise
    finally:
        report["wall_s"] = time.perf_counter() - t0
        result = os.environ.get(RESULT_ENV)
        if result:
            Path(result).write_text(json.dumps(report))
