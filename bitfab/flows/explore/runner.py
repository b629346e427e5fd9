"""Run one piece of a sweep: train a model, or estimate (and build) one point.

These functions run in worker processes (a local pool or Ray): they take and return plain
data (dicts, :class:`Point`), write only their own folders, and never raise for a failing
point: the failure becomes the record's ``status``/``reason``.

Per point (folder ``DIR/points/<name>/``):

- ``estimate/``: :func:`bitfab.fpga.fit.fit_plan` (FINN streamlining, the fastest folding
  whose compiled accelerator fits the board) and the accelerator compiled in memory
  (:func:`bitfab.hw.accelerator.accelerator_report`: per-layer cycles and LUT estimates, no
  Verilog): ``dataflow.onnx``, ``dataflow.json``, ``fit.json``, ``accelerator.json``, and
  ``estimate.json`` (the record and its cache key).
- ``build/`` (with synthesis): :func:`bitfab.flows.build.build` (compile, RTL verification,
  Yosys + nextpnr, bitstream; its own step cache) and ``synth.json``.

Estimated figures: LUT = the logic cells the build's fit model predicts for the board top
around the accelerator (``1500 + 4.3 x`` the accelerator's LUT estimate, docs/boards.md), so it
compares with nextpnr's count; BRAM = block RAMs by Yosys's mapping rule; cycles per image =
the performance model's initiation interval; images/s = clock / cycles (no Fmax estimate: the
design clock is used, the build reports ``min(Fmax, clock)``). FF and DSP are known only after
synthesis.
"""

from __future__ import annotations

import json
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

from bitfab.content_hash import content_key, sha256_file, source_hash
from bitfab.errors import BitfabError
from bitfab.flows.explore.cache import POINT_SOURCES, model_key, versions, write_json_atomic
from bitfab.flows.explore.spec import Point
from bitfab.hw.elaboratable import unused_ok

#: Test images of the QONNX export check when a sweep trains a model (not all 10,000: speed).
EXPORT_CHECK_IMAGES = 1000


def _reason(e: BaseException) -> str:
    """One line for a failure: the BitfabError text, or the exception type and message."""
    if isinstance(e, BitfabError):
        return str(e).splitlines()[0] if str(e) else "error"
    tb = traceback.extract_tb(e.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return f"{type(e).__name__}: {e}{where}".splitlines()[0][:500]


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def train_model(model_config: dict, train: dict, cache_dir: str) -> dict:
    """Train (or reuse) the model ``model_config`` with ``train`` options (epochs, seed, limit,
    dataset) in ``cache_dir/models/<key>``. Returns ``{key, path, accuracy, cached, seconds}``
    or ``{key, error}``; never raises for a bad config or a failed training."""
    t0 = time.perf_counter()
    try:
        import torch

        torch.set_num_threads(1)
        from bitfab.models.config import make_config
        from bitfab.models.train import train as train_fn

        key = model_key(model_config, train)
        folder = Path(cache_dir) / "models" / key
        metrics = folder / "metrics.json"
        onnx = folder / "model.onnx"
        cached = metrics.is_file() and onnx.is_file()
        if not cached:
            if folder.exists():  # an interrupted training: start it again
                shutil.rmtree(folder)
            train_fn(
                make_config(**model_config),
                folder,
                epochs=train["epochs"],
                seed=train["seed"],
                limit=train["limit"],
                dataset=train["dataset"],
                check_images=EXPORT_CHECK_IMAGES,
                threads=1,
                progress=False,
            )
        m = json.loads(metrics.read_text())
        return {
            "key": key,
            "path": str(onnx),
            "onnx_sha256": sha256_file(onnx),
            "accuracy": m["test_accuracy"],
            "train_seconds": m.get("train_seconds"),
            "cached": cached,
            "seconds": round(time.perf_counter() - t0, 2),
        }
    except Exception as e:  # noqa: BLE001 - a failed model fails its points, not the sweep
        key = None
        try:
            key = model_key(model_config, train)
        except Exception:  # noqa: BLE001
            pass
        return {"key": key, "error": _reason(e), "seconds": round(time.perf_counter() - t0, 2)}


# --------------------------------------------------------------------------------------------
# points
# --------------------------------------------------------------------------------------------


def point_margin(point: Point, opts: dict) -> float:
    """The fit margin of ``point``: ``opts["margin"]``, lowered so that the design's logic
    cells stay within ``opts["max_luts"]`` (when given) on big boards."""
    from bitfab.boards import get_target
    from bitfab.fpga.fit import PLACEABLE

    margin = opts["margin"]
    cap = opts.get("max_luts")
    if cap:
        t = get_target(point.board)
        margin = min(margin, cap / (PLACEABLE[t.family] * t.luts))
    return round(margin, 6)


def point_key(point: Point, model: dict, opts: dict, synth: bool) -> str:
    """Cache key of a point's estimate (``synth`` False) or build (True)."""
    inputs = {
        "point": point.to_json(),
        "model_sha256": model.get("onnx_sha256"),
        "model_key": model.get("key"),
        "margin": point_margin(point, opts),
        "versions": versions(),
        "src": source_hash(POINT_SOURCES),
        "what": "synth" if synth else "estimate",
    }
    if synth:
        inputs["verify_images"] = opts["verify_images"]
    return content_key(inputs)


def _estimate(point: Point, model: dict, opts: dict, folder: Path) -> dict:
    """Fit, compile in memory, estimate; writes ``folder`` (staged). Raises on failure."""
    from bitfab.boards import get_target
    from bitfab.fpga.fit import fit_plan
    from bitfab.hw.accelerator import Accelerator, accelerator_report
    from bitfab.hw.compiler import compile_graph
    from bitfab.staging import staged_output

    target = get_target(point.board)
    if folder.exists():
        shutil.rmtree(folder)
    with staged_output(folder) as tmp:
        fit = fit_plan(Path(model["path"]), target, point.array, point_margin(point, opts), tmp)
        acc = Accelerator(compile_graph(str(tmp / "dataflow.onnx"), point.array))
        unused_ok(acc)
        rep = accelerator_report(acc)
        (tmp / "accelerator.json").write_text(json.dumps(rep, indent=2, default=str) + "\n")
    cycles = int(rep["performance"]["cycles_per_image"])
    # the fit's modelled cells: accelerator estimate plus the memory Yosys puts in logic
    cells = fit["cells_modelled"]
    ips = point.clock_mhz * 1e6 / cycles if cycles else None
    return {
        "lut": cells,
        "lut_accelerator": rep["luts"],
        "lut_available": target.luts,
        "bram": fit["bram_blocks_estimate"],
        "bram_available": target.bram_blocks,
        "memory_bits": rep["memory_bits"],
        "cycles_per_image": cycles,
        "latency_cycles": rep["performance"]["latency"],
        "bottleneck": rep["performance"]["bottleneck"],
        "clock_mhz": point.clock_mhz,
        "images_per_s": round(ips, 2) if ips else None,
        "folding": fit["folding"],
        "fit_tries": len(fit["tries"]),
        "layers": [
            {
                k: ly.get(k)
                for k in ("name", "op_type", "array", "PE", "SIMD", "cycles", "luts", "memory_bits")
            }  # fmt: skip
            for ly in rep["layers"]
        ],
    }


def _synth(point: Point, model: dict, opts: dict, folder: Path, out_dir: Path) -> dict:
    """``bitfab build`` of the point into ``folder``; the measured figures. Raises on failure."""
    from bitfab.boards import get_target
    from bitfab.flows.build import build

    target = get_target(point.board)
    clock = None if point.clock_mhz == target.default_clock_mhz else point.clock_mhz
    rep = build(
        model["path"],
        point.board,
        point.array,
        folder,
        clock_mhz=clock,
        verify_images=opts["verify_images"],
        margin=point_margin(point, opts),
        progress=False,
    )
    res = rep["resources"]
    cycles = rep["cycles_per_image"]["measured"] or rep["cycles_per_image"]["estimate"]
    return {
        "lut": res["LUT"]["used"],
        "ff": res["FF"]["used"],
        "bram": res["BRAM"]["used"],
        "dsp": res["DSP"]["used"],
        "fmax_mhz": rep["fmax_mhz"],
        "clock_mhz": rep["clock_mhz"],
        "timing_met": rep["timing_met"],
        "cycles_per_image": cycles,
        "images_per_s": rep["images_per_s"],
        "images_per_s_at_fmax": rep["images_per_s_at_fmax"],
        "verified_images": rep["verification"]["images"],
        "mismatches": rep["verification"]["mismatches"],
        "report": str((folder / "report.json").relative_to(out_dir)),
        "bitstream": str(Path(rep["bitstream"]["path"]).resolve().relative_to(out_dir.resolve())),
        "bitstream_sha256": rep["bitstream"]["sha256"],
        "build_seconds": rep["seconds"],
    }


def _rel_err(est: float | None, meas: float | None) -> float | None:
    """``(estimate - measured) / measured`` or None."""
    if est is None or not meas:
        return None
    return round((est - meas) / meas, 4)


def _flatten(rec: dict) -> dict:
    """The summary fields (synthesized figures where there are some, else the estimates)."""
    est, syn = rec.get("estimate"), rec.get("synth")
    src = syn if syn else est
    flat = {k: None for k in ("lut", "ff", "bram", "dsp", "fmax_mhz", "cycles_per_image",
                              "images_per_s", "images_per_s_per_lut")}  # fmt: skip
    if src:
        for k in ("lut", "ff", "bram", "dsp", "fmax_mhz", "cycles_per_image", "images_per_s"):
            flat[k] = src.get(k)
        if flat["images_per_s"] and flat["lut"]:
            flat["images_per_s_per_lut"] = round(flat["images_per_s"] / flat["lut"], 4)
    flat["clock_mhz"] = (src or {}).get("clock_mhz", rec["point"]["clock_mhz"])
    flat["source"] = "synth" if syn else ("estimate" if est else None)
    if est and syn:
        rec["estimate_error"] = {
            "lut": _rel_err(est["lut"], syn["lut"]),
            "bram": _rel_err(est["bram"], syn["bram"]),
            "cycles_per_image": _rel_err(est["cycles_per_image"], syn["cycles_per_image"]),
            "images_per_s": _rel_err(est["images_per_s"], syn["images_per_s"]),
        }
    return flat


def run_point(
    point: Point, model: dict, opts: dict, out_dir: str, synth: bool, use_cache: bool = True
) -> dict:
    """Estimate (and with ``synth`` build) ``point`` with the trained ``model`` (from
    :func:`train_model`); ``opts``: margin, verify_images. Returns the point's record; a failure
    (model, fit, build, timing) is ``status: failed`` with its ``reason`` and ``stage``."""
    t0 = time.perf_counter()
    out = Path(out_dir)
    folder = out / "points" / point.name
    rec: dict[str, Any] = {
        "name": point.name,
        "point": point.to_json(),
        "model_key": model.get("key"),
        "accuracy": model.get("accuracy"),
        "status": "ok",
        "reason": None,
        "stage": None,
        "estimate": None,
        "synth": None,
        "cached": False,
    }
    if "error" in model:
        rec.update(status="failed", stage="train", reason=model["error"])
        rec.update(_flatten(rec), seconds=round(time.perf_counter() - t0, 2))
        return rec

    def cached_or_run(what: str, key: str, work) -> dict:  # noqa: ANN001
        meta = folder / f"{what}.json"
        hit = None
        if use_cache and meta.is_file():
            try:
                stored = json.loads(meta.read_text())
            except (OSError, ValueError):
                stored = {}
            if stored.get("key") == key:
                hit = stored
        if hit is not None:
            rec["cached"] = True
            if hit.get("error"):
                raise _Stored(hit["error"])
            return hit["result"]
        try:
            result = work()
        except BitfabError as e:  # deterministic failures are cached too
            write_json_atomic(meta, {"key": key, "error": _reason(e)})
            raise
        write_json_atomic(meta, {"key": key, "result": result})
        return result

    stage = "estimate"
    try:
        rec["estimate"] = cached_or_run(
            "estimate",
            point_key(point, model, opts, False),
            lambda: _estimate(point, model, opts, folder / "estimate"),
        )
        if synth:
            stage = "synth"
            rec["synth"] = cached_or_run(
                "synth",
                point_key(point, model, opts, True),
                lambda: _synth(point, model, opts, folder / "build", out),
            )
            if not rec["synth"]["timing_met"]:
                s = rec["synth"]
                rec.update(
                    status="failed",
                    stage="timing",
                    reason=f"timing not met: post-route Fmax {s['fmax_mhz']} MHz < clock "
                    f"{s['clock_mhz']:g} MHz",
                )
    except Exception as e:  # noqa: BLE001 - a failing point is recorded, the sweep goes on
        rec.update(status="failed", stage=stage, reason=_reason(e))
    rec.update(_flatten(rec))
    rec["seconds"] = round(time.perf_counter() - t0, 2)
    return rec


class _Stored(BitfabError):
    """A failure read back from a point's cache."""
