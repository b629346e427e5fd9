"""``bitfab dataflow``: QONNX file -> folded ``dataflow.onnx`` + ``dataflow.json``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from bitfab.dataflow.convert import STAGES, to_dataflow
from bitfab.dataflow.folding import (
    FoldingPlan,
    fold_for_lut_budget,
    fold_for_target_cycles,
    fold_given,
    fold_minimal,
)
from bitfab.dataflow.layers import hw_layers
from bitfab.dataflow.load import load_qonnx
from bitfab.dataflow.report import dataflow_report
from bitfab.dataflow.transforms import ApplyFolding
from bitfab.errors import BitfabError
from bitfab.staging import staged_output


def choose_plan(
    model: ModelWrapper,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    folding: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[FoldingPlan, dict]:
    """Pick the folding for a HW-layer graph; returns the plan and a description of the choice.

    At most one of ``target_cycles``, ``lut_budget``, ``folding`` may be given; none means
    PE = SIMD = 1 everywhere.
    """
    given = [x is not None for x in (target_cycles, lut_budget, folding)]
    if sum(given) > 1:
        raise BitfabError("give at most one of --target-cycles, --lut-budget, --folding")
    layers = hw_layers(model)
    if target_cycles is not None:
        return fold_for_target_cycles(layers, target_cycles), {
            "mode": "target_cycles",
            "target": target_cycles,
        }
    if lut_budget is not None:
        return fold_for_lut_budget(layers, lut_budget), {"mode": "lut_budget", "target": lut_budget}
    if folding is not None:
        return fold_given(layers, folding), {"mode": "given", "target": None}
    return fold_minimal(layers), {"mode": "minimal", "target": None}


def make_dataflow(
    model_path: str | os.PathLike[str],
    *,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    folding: Mapping[str, Mapping[str, int]] | None = None,
    progress: bool = False,
) -> tuple[ModelWrapper, dict]:
    """Convert and fold a QONNX file in memory; returns ``(dataflow model, report dict)``."""
    src = str(model_path)
    if not progress:
        model = to_dataflow(load_qonnx(model_path), src)
        plan, how = choose_plan(model, target_cycles, lut_budget, folding)
        model = model.transform(ApplyFolding(plan.fold))
        return model, dataflow_report(model, plan, src, how)

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]dataflow[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("load", total=len(STAGES) + 2)
        model = load_qonnx(model_path)
        bar.advance(task)

        def on_stage(i: int, label: str) -> None:
            bar.update(task, description=label, completed=i + 1)

        model = to_dataflow(model, src, on_stage)
        bar.update(task, description="folding", completed=len(STAGES) + 1)
        plan, how = choose_plan(model, target_cycles, lut_budget, folding)
        model = model.transform(ApplyFolding(plan.fold))
        bar.update(task, completed=len(STAGES) + 2)
    return model, dataflow_report(model, plan, src, how)


def build_dataflow(
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    folding: Mapping[str, Mapping[str, int]] | None = None,
    progress: bool = False,
) -> dict:
    """Write ``out_dir/dataflow.onnx`` and ``out_dir/dataflow.json``; returns the report dict.

    Everything is computed before anything is written; the folder appears all at once
    (:func:`bitfab.staging.staged_output`), and not at all on error.
    """
    model, report = make_dataflow(
        model_path,
        target_cycles=target_cycles,
        lut_budget=lut_budget,
        folding=folding,
        progress=progress,
    )
    with staged_output(out_dir) as tmp:
        model.save(str(Path(tmp) / "dataflow.onnx"))
        (Path(tmp) / "dataflow.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
