"""The main job: train a zoo model, streamline it to a dataflow graph, check the golden model.

``run_flow`` chains the stage APIs (models -> dataflow) into one reproducible run folder::

    OUT/train/      model.onnx, metrics.json, checkpoint.pt   (bitfab train)
    OUT/dataflow/   dataflow.onnx, dataflow.json               (bitfab dataflow)
    OUT/build/      with ``board``: bitfab build (fit, compile, RTL verification, bitstream)
    OUT/report.json accuracy, export check, HW layers, folding, golden-vs-QONNX agreement, and
                    with ``board`` the build report (resources, Fmax, images/s, bitstream sha256)
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bitfab.errors import BitfabError


def _reuse_training(train_dir: Path, cfg: Any, epochs: int) -> dict[str, Any] | None:
    """The metrics of a finished training in ``train_dir`` with this config and epochs, else None."""
    metrics = train_dir / "metrics.json"
    if not (metrics.is_file() and (train_dir / "model.onnx").is_file()):
        return None
    m = json.loads(metrics.read_text())
    if m.get("config") == cfg.to_dict() and m.get("epochs") == epochs:
        return m
    raise BitfabError(
        f"{train_dir}: holds a different training ({m.get('model')} {m.get('precision')}, "
        f"{m.get('epochs')} epochs); use another --out or --fresh"
    )


def run_flow(
    cfg: Any,
    out_dir: str | os.PathLike[str],
    *,
    epochs: int = 5,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    check_images: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    fresh: bool = False,
    progress: bool = True,
    board: str | None = None,
    array: str = "parallel",
    verify_images: int = 200,
) -> dict[str, Any]:
    """Run train -> dataflow -> golden check for ``cfg`` (a :class:`bitfab.models.config.ModelConfig`).

    A finished training with the same config and epochs in ``OUT/train`` is reused (``fresh``
    deletes it first). ``check_images``: how many Fashion-MNIST test images the golden model is
    compared on (default: all 10,000). With ``board``, the trained model then goes through
    :func:`bitfab.flows.build.build` for that board and PE ``array`` into ``OUT/build`` (its own
    folding, fitted to the board; ``verify_images`` test images in RTL against the golden model)
    and the build report joins this one. Returns the report (also written to ``OUT/report.json``).
    """
    import shutil

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from bitfab.dataflow.build import build_dataflow
    from bitfab.dataflow.golden import check_agreement
    from bitfab.models.data import load_dataset
    from bitfab.models.train import train

    if cfg.is_float:
        raise BitfabError(
            f"flow: {cfg.model} in float has no QONNX export to streamline; give --wbits/--abits 1-8"
        )
    if board is not None:  # fail before training, not after it
        from bitfab.boards import get_target

        if not get_target(board).is_board:
            raise BitfabError(
                f"--board {board}: a bare device has no pins for the board top; "
                "give a board from 'bitfab boards'"
            )
    out = Path(out_dir)
    train_dir, df_dir = out / "train", out / "dataflow"
    if fresh and train_dir.exists():
        shutil.rmtree(train_dir)
    t0 = time.perf_counter()
    metrics = _reuse_training(train_dir, cfg, epochs)
    if metrics is None:
        metrics = train(cfg, train_dir, epochs=epochs, data_dir=data_dir, progress=progress)
    elif progress:
        print(f"reusing the training in {train_dir} ({metrics['test_accuracy']:.2%})")
    t1 = time.perf_counter()
    df = build_dataflow(
        train_dir / "model.onnx",
        df_dir,
        target_cycles=target_cycles,
        lut_budget=lut_budget,
        progress=progress,
    )
    t2 = time.perf_counter()
    images, _ = load_dataset("fashion-mnist", "test", data_dir)
    if check_images is not None:
        if check_images < 1:
            raise BitfabError(f"--check-images {check_images}: must be at least 1")
        images = images[:check_images]
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
    ) as bar:
        task = bar.add_task("golden vs QONNX", total=2 * len(images))
        agreement = check_agreement(
            train_dir / "model.onnx",
            df_dir / "dataflow.onnx",
            images,
            progress=lambda k: bar.advance(task, k),
        )
    t3 = time.perf_counter()
    report = {
        "model": metrics["model"],
        "precision": metrics["precision"],
        "config": metrics["config"],
        "epochs": metrics["epochs"],
        "test_accuracy": metrics["test_accuracy"],
        "export_check": metrics.get("export_check"),
        "dataflow": {
            "layers": len(df["layers"]),
            "op_types": df["op_types"],
            "cycles_per_image": df["cycles_per_image"],
            "bottleneck": df["bottleneck"],
            "lut_estimate": df["lut_estimate"],
        },
        "golden_agreement": agreement.summary(),
        "golden_agrees": agreement.agree,
        "seconds": {
            "train": round(t1 - t0, 1),
            "dataflow": round(t2 - t1, 1),
            "golden_check": round(t3 - t2, 1),
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if not agreement.agree:
        bad = agreement.real_mismatches
        raise BitfabError(
            f"{df_dir / 'dataflow.onnx'}: golden model disagrees with the QONNX model on "
            f"{len(bad)} of {len(images)} images (first: image {bad[0]}); see {out / 'report.json'}"
        )
    if board is not None:
        from bitfab.flows.build import build

        t4 = time.perf_counter()
        report["build"] = build(
            train_dir / "model.onnx",
            board,
            array,
            out / "build",
            verify_images=verify_images,
            progress=progress,
        )
        report["seconds"]["build"] = round(time.perf_counter() - t4, 1)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
