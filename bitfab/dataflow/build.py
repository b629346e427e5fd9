"""``bitfab dataflow``: QONNX file -> folded ``dataflow.onnx`` + ``dataflow.json``."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
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
from bitfab.dataflow.golden import SELF_CHECK_INPUTS, self_check
from bitfab.dataflow.layers import hw_layers
from bitfab.dataflow.load import load_qonnx, model_format
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


def checkable(model: ModelWrapper, check: int) -> bool:
    """Whether to run the self-check: asked for, and the input was not already a HW-layer
    graph (nothing converted, so nothing to check)."""
    return check > 0 and model_format(model.graph) != "hw"


def make_dataflow(
    model_path: str | os.PathLike[str],
    *,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    folding: Mapping[str, Mapping[str, int]] | None = None,
    progress: bool = False,
    input_mode: str = "auto",
    head: str = "auto",
    check: int = SELF_CHECK_INPUTS,
) -> tuple[ModelWrapper, dict]:
    """Convert and fold a QONNX file in memory; returns ``(dataflow model, report dict)``.

    ``input_mode`` / ``head``: see :func:`bitfab.dataflow.convert.to_dataflow`. ``check``:
    random inputs run through the QONNX model and the result, which must agree
    (:func:`bitfab.dataflow.golden.self_check`; 0 skips it).
    """
    src = str(model_path)
    if check < 0:
        raise BitfabError(f"--check {check}: must be 0 or more")
    with contextlib.ExitStack() as stack:
        step = _progress_steps(stack, len(STAGES) + 3) if progress else (lambda i, label: None)
        step(0, "load")
        qonnx = load_qonnx(model_path)
        model = to_dataflow(
            qonnx, src, lambda i, label: step(i + 1, label), input_mode=input_mode, head=head
        )
        step(len(STAGES) + 1, "folding")
        plan, how = choose_plan(model, target_cycles, lut_budget, folding)
        model = model.transform(ApplyFolding(plan.fold))
        checked = None
        if checkable(qonnx, check):
            step(len(STAGES) + 2, f"check on {check} random inputs")
            checked = self_check(qonnx, model, src, check)
        step(len(STAGES) + 3, "done")
    return model, dataflow_report(model, plan, src, how, checked)


def _progress_steps(stack: contextlib.ExitStack, total: int) -> Callable[[int, str], None]:
    """A transient rich progress bar (entered on ``stack``); returns ``step(done, label)``."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[bold]dataflow[/] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    bar = stack.enter_context(Progress(*columns, transient=True))
    task = bar.add_task("load", total=total)
    return lambda done, label: bar.update(task, description=label, completed=done)


def build_dataflow(
    model_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    folding: Mapping[str, Mapping[str, int]] | None = None,
    progress: bool = False,
    input_mode: str = "auto",
    head: str = "auto",
    check: int = SELF_CHECK_INPUTS,
) -> dict:
    """Write ``out_dir/dataflow.onnx`` and ``out_dir/dataflow.json``; returns the report dict
    (options as in :func:`make_dataflow`).

    Everything is computed before anything is written; the folder appears all at once
    (:func:`bitfab.staging.staged_output`), and not at all on error.
    """
    model, report = make_dataflow(
        model_path,
        target_cycles=target_cycles,
        lut_budget=lut_budget,
        folding=folding,
        progress=progress,
        input_mode=input_mode,
        head=head,
        check=check,
    )
    with staged_output(out_dir) as tmp:
        model.save(str(Path(tmp) / "dataflow.onnx"))
        (Path(tmp) / "dataflow.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
