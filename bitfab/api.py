"""The Python API: the ``bitfab`` commands as functions, with the CLI's names and options.

``import bitfab`` gives these names lazily (:func:`bitfab.__getattr__`): importing bitfab stays
instant and each function imports its stage when called. Every function writes the same files
as its command and returns the same report (a dict, as the command's JSON file), raises
:class:`bitfab.errors.BitfabError` (one line naming the bad input and the fix) on bad input, and
shows no progress bar unless ``progress=True``::

    import bitfab

    m = bitfab.train("runs/tfc", model="tfc", wbits=1, abits=1, in_bits=1, epochs=1)
    df = bitfab.dataflow("runs/tfc/model.onnx", "runs/tfc/df", target_cycles=1000)
    acc = bitfab.compile("runs/tfc/df/dataflow.onnx", "runs/tfc/acc", array="bitserial")
    ok = bitfab.verify("runs/tfc/acc", images=100)["passed"]
    classes = bitfab.GoldenModel("runs/tfc/df/dataflow.onnx").classify(images)

``GoldenModel`` is :class:`bitfab.dataflow.golden.GoldenModel` itself. Stage modules stay the
reference for every option: :func:`bitfab.models.train.train`,
:func:`bitfab.models.ptq.quantize`, :func:`bitfab.dataflow.build.build_dataflow`,
:func:`bitfab.hw.accelerator.compile_accelerator`, :func:`bitfab.sim.verify.verify`,
:func:`bitfab.flows.build.build`, :func:`bitfab.flows.explore.sweep.run_sweep`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

PathLike = str | os.PathLike[str]

__all__ = [
    "build",
    "compile",
    "dataflow",
    "explore",
    "load_dataset",
    "quantize",
    "train",
    "verify",
]


def train(
    out: PathLike,
    *,
    model: str = "tfc",
    wbits: int | str | list[int] = 1,
    abits: int | str | list[int] | None = None,
    in_bits: int | None = None,
    quantizer: str | None = None,
    dropout: float | None = None,
    epochs: int = 10,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """``bitfab train``: QAT-train zoo ``model`` at ``wbits``/``abits`` (1-8 bits, one number
    or one per layer; ``wbits="float"`` for the float model) and export QONNX to
    ``out/model.onnx``. ``in_bits``: input bits (1 = bipolar sign of pixel >= 128, 2-8 =
    unsigned; default 8). ``options``: ``batch_size``, ``lr``, ``seed``, ``resume``,
    ``dataset`` ("fashion-mnist"/"digits"), ``data_dir``, ``limit`` (first N training images),
    ``check_images``. Returns ``out/metrics.json`` (test accuracy, export check)."""
    from bitfab.models.config import make_config
    from bitfab.models.train import train as _train

    given = {"abits": abits, "in_bits": in_bits, "quantizer": quantizer, "dropout": dropout}
    cfg = make_config(model=model, wbits=wbits, **{k: v for k, v in given.items() if v is not None})
    return _train(cfg, out, epochs=epochs, progress=progress, **options)


def quantize(
    checkpoint: PathLike,
    out: PathLike,
    *,
    wbits: int | str | list[int],
    abits: int | str | list[int] | None = None,
    method: str = "mse",
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """``bitfab quantize``: post-training quantization of a float checkpoint (``checkpoint.pt``
    of ``train(..., wbits="float")`` or its folder) with ``method`` (minmax, mse,
    bias-correction, equalize, gptq, adaround); writes ``out/model.onnx`` (QONNX). ``options``:
    ``calib`` (N images or "synthetic"), ``synthetic_images``, ``model``, ``dataset``,
    ``data_dir``, ``seed``, ``check_images``. Returns ``out/metrics.json``."""
    from bitfab.models.ptq import quantize as _quantize

    return _quantize(
        checkpoint, out, wbits=wbits, abits=abits, method=method, progress=progress, **options
    )


def dataflow(
    model: PathLike,
    out: PathLike,
    *,
    target_cycles: int | None = None,
    lut_budget: int | None = None,
    folding: Mapping[str, Mapping[str, int]] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``bitfab dataflow``: FINN streamlining of QONNX ``model`` into a folded HW-layer graph
    ``out/dataflow.onnx``. At most one of ``target_cycles`` (cheapest folding whose slowest
    layer needs at most that many cycles per image), ``lut_budget`` (fastest folding within that
    LUT estimate) or ``folding`` (``{"LAYER": {"PE": p, "SIMD": s}}``); none: PE = SIMD = 1.
    Returns ``out/dataflow.json``."""
    from bitfab.dataflow.build import build_dataflow

    return build_dataflow(
        model,
        out,
        target_cycles=target_cycles,
        lut_budget=lut_budget,
        folding=folding,
        progress=progress,
    )


def compile(  # noqa: A001 - the command's name
    dataflow: PathLike,
    out: PathLike,
    *,
    array: str = "parallel",
    config: PathLike | None = None,
) -> dict[str, Any]:
    """``bitfab compile``: the streaming Amaranth accelerator of ``dataflow`` (``dataflow.onnx``)
    with PE array ``array`` ("parallel", "bitserial" or "bitfusion") in every MVAU, or per layer
    from the TOML ``config``; writes ``out/accelerator.v``. Returns ``out/accelerator.json``
    (per-layer cycles, LUT estimate, memory bits)."""
    from bitfab.hw.accelerator import compile_accelerator

    return compile_accelerator(dataflow, out, array, config)


def verify(
    acc: PathLike,
    images: int | None = None,
    *,
    backend: str = "verilator",
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """``bitfab verify``: stream ``images`` test images (default all 10,000) through the RTL of
    accelerator folder ``acc`` with ``backend`` ("verilator", "icarus", "amaranth") and compare
    every output with the golden model. ``options``: ``chunk``, ``jobs``, ``dataset``. Returns
    ``acc/verify.json``; ``["passed"]`` is False on a mismatch (``["first_mismatch"]`` names the
    image and the first layer that differs)."""
    from bitfab.sim.verify import verify as _verify

    if not progress:
        return _verify(acc, images, backend, **options)
    from bitfab.progress import progress_bar

    with progress_bar(None, f"verify ({backend})", images) as update:
        return _verify(acc, images, backend, progress=update, **options)


def build(
    model: PathLike,
    out: PathLike,
    *,
    board: str,
    array: str = "parallel",
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """``bitfab build``: QONNX ``model`` -> verified bitstream for ``board`` (a catalogue name,
    ``bitfab boards``) in ``out``: dataflow with the folding that fits, compile, RTL
    verification, board top, Yosys + nextpnr. ``options``: ``clock_mhz``, ``verify_images``
    (200), ``seed``, ``margin`` (0.8), ``folding``. Returns ``out/report.json``; a model that
    does not fit raises BitfabError naming the resource and a board that fits."""
    from bitfab.flows.build import build as _build

    return _build(model, board, array, out, progress=progress, **options)


def explore(
    out: PathLike, *, jobs: int = 1, progress: bool = False, **sweep: Any
) -> dict[str, Any]:
    """``bitfab explore``: a design-space sweep into ``out`` (``results.json``, ``results.csv``,
    ``report.html``). ``sweep`` takes the flag names of ``bitfab explore`` (``model``, ``wbits``,
    ``abits``, ``array``, ``board``, ``epochs``, ``limit``, ``dataset``, ``synth``,
    ``synth_pareto``, ...; lists or comma strings). Returns the sweep summary (counts, Pareto
    points per board)."""
    from bitfab.flows.explore.spec import make_spec
    from bitfab.flows.explore.sweep import run_sweep

    spec = make_spec(dict(sweep))
    if not progress:
        return run_sweep(spec, out, jobs=jobs)
    from bitfab.progress import progress_bar

    with progress_bar(None, "explore", None) as update:
        return run_sweep(spec, out, jobs=jobs, progress=lambda _phase, d, t: update(d, t))


def load_dataset(
    name: str = "fashion-mnist", split: str = "test", data_dir: PathLike | None = None
):  # noqa: ANN201
    """``(images, labels)`` of ``split`` ("train"/"test") of ``name`` ("fashion-mnist",
    "digits"): uint8 pixels ``[N, 1, 28, 28]``, int64 labels ``[N]``
    (:func:`bitfab.models.data.load_dataset`)."""
    from bitfab.models.data import load_dataset as _load_dataset

    return _load_dataset(name, split, data_dir)
