"""``bitfab verify``: an accelerator's RTL against the golden model on Fashion-MNIST test images.

The accelerator folder written by ``bitfab compile`` holds ``accelerator.v``, ``accelerator.json``
and a copy of ``dataflow.onnx`` (the golden model, FINN's Python execution of the graph).
:func:`verify` streams N test images back to back through the RTL and compares every output
word with the golden model:

- ``verilator`` / ``icarus``: ``accelerator.v`` inside the free-running Verilog harness
  (:mod:`bitfab.sim.accel_run`; stimulus and checking inside the simulator). Images run in
  chunks (one simulator process each, sharing one build): first a one-image chunk, whose
  cycle count is the measured latency, then chunks of ``chunk`` images. The measured cycles
  per image is ``sum(chunk cycles - latency) / sum(chunk images - 1)``, the steady-state
  initiation interval; the progress bar advances per chunk; ``jobs`` chunks run at once.
- ``amaranth``: the rebuilt component in Amaranth's Python simulator (slow: for a few images).

On a mismatch it reports the first image whose output differs and localises the fault: every
layer is re-simulated alone (Amaranth simulator) on that image's golden input tensor of the
layer, and the first layer whose output stream differs from its golden output tensor is named
(or, if every layer is right alone, the wiring between them). Results go to
``DIR/verify.json``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bitfab.errors import BitfabError

BACKENDS = ("verilator", "icarus", "amaranth")
ProgressFn = Callable[[int, int], None]  # (images done, images total)


def load_test_images(n: int | None, dataset: str = "fashion-mnist") -> np.ndarray:
    """The first ``n`` (default all) test images, uint8 ``[n, 28, 28]``."""
    from bitfab.models.data import load_dataset

    images, _ = load_dataset(dataset, "test")
    total = len(images)
    if n is None:
        n = total
    if not 1 <= n <= total:
        raise BitfabError(f"--images {n}: must be 1..{total} (the test set has {total} images)")
    return images[:n].reshape(n, 28, 28)


def verification_inputs(
    dataflow: Path,
    images: int | None = None,
    dataset: str = "fashion-mnist",
    inputs: str | os.PathLike[str] | None = None,
    random: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict]:
    """The inputs to verify on, as the hardware's integers ``[N, values]``, and a record of
    where they came from (kept in ``verify.json``).

    ``inputs``: a ``.npy``/``.npz`` file of float inputs as the QONNX model takes them
    (quantized like the model's input quantizer; the first ``images`` if given). ``random``:
    that many inputs drawn uniformly from the input grid (``seed``). Neither: the first
    ``images`` test images of ``dataset``, for a model whose input is a 28 x 28 image.
    """
    from qonnx.core.modelwrapper import ModelWrapper

    from bitfab.dataflow.inputs import elements, input_record, random_inputs, read_inputs_file

    if inputs is not None and random is not None:
        raise BitfabError("give at most one of --inputs and --random")
    if not dataflow.is_file():
        raise BitfabError(f"{dataflow}: no such file (the golden model's dataflow graph)")
    rec = input_record(ModelWrapper(str(dataflow)))
    if inputs is not None:
        x = read_inputs_file(inputs, rec)
        if images is not None:
            if images > len(x):
                raise BitfabError(f"--images {images}: --inputs {inputs} holds {len(x)} inputs")
            x = x[:images]
        return x, {"source": "file", "path": str(inputs), "count": len(x)}
    if random is not None:
        if random < 1:
            raise BitfabError(f"--random {random}: must be at least 1")
        x = random_inputs(rec, random, seed).reshape(random, -1)
        return x, {"source": "random", "count": random, "seed": seed, "grid": rec["dtype"]}
    if rec["encoding"] != "pixels" or elements(rec) != 784:
        shape = "x".join(str(d) for d in rec["shape"][1:])
        raise BitfabError(
            f"{dataflow.parent}: the model's input is {shape} {rec['dtype']} "
            f"({rec['encoding']}), not a 28 x 28 image, so there is no test set for it; give "
            "--random N (inputs over the whole input grid) or --inputs FILE.npy (your own)"
        )
    x = load_test_images(images, dataset).reshape(-1, 784)
    return x, {"source": "dataset", "dataset": dataset, "count": len(x)}


@dataclass
class Golden:
    """Golden input and output stream words of a batch of images."""

    in_words: list[int]
    out_words: list[int]
    in_per_image: int
    out_per_image: int
    seconds: float


def golden_streams(acc, dataflow: Path, images: np.ndarray, batch: int = 500) -> Golden:  # noqa: ANN001
    """Input words (the first layer's stream) and expected output words (the last layer's
    stream) of ``images`` from the golden model of ``dataflow``."""
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.hw.compiler import tensor_words

    g = acc.graph
    t0 = time.perf_counter()
    gm = GoldenModel(dataflow)
    from bitfab.dataflow.inputs import to_graph_order

    # the inputs are in the model's order; the stream is in the graph input's (e.g. NHWC)
    in_words = tensor_words(to_graph_order(gm.input_rec, images), g.input_fmt)
    if g.output_meaning == "class index":
        out = gm.classify(images, batch=batch).reshape(len(images), 1)
    else:
        parts = []
        for s in range(0, len(images), batch):
            _, t = gm.layer_tensors(images[s : s + batch])
            parts.append(np.asarray(t[g.layers[-1].golden_name]).reshape(len(t["input"]), -1))
        out = np.concatenate(parts)
    out_words = tensor_words(out, g.output_fmt)
    return Golden(
        in_words,
        out_words,
        g.input_fmt.words,
        g.output_fmt.words,
        time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------------------------
# fault localisation
# --------------------------------------------------------------------------------------------


def image_waves(  # noqa: ANN001
    acc_dir: Path, acc, gold, img: int, backend: str, out: Path, cycles: int,
    flash_image: bytes = b"",
) -> Path:  # fmt: skip
    """Simulate image ``img`` alone through ``acc_dir/accelerator.v`` in the free-running harness
    with signal tracing, into ``out``; returns the waveform file. An accelerator with SPRAM
    weights boots from ``flash_image`` first."""
    from bitfab.hw.accelerator import TOP
    from bitfab.sim.accel_run import ChunkRunner, accel_design

    ipi, opi = gold.in_per_image, gold.out_per_image
    plusargs: list[str] = []
    if acc.loaded_units:  # the booted design, as verified (boot included in the waves)
        from bitfab.sim.boot import boot_design, flash_plusargs

        design, boot = boot_design((acc_dir / "accelerator.v").read_text(), acc)
        out.mkdir(parents=True, exist_ok=True)
        plusargs = flash_plusargs(flash_image, out)
        cycles += boot.loader.boot_cycles()
    else:
        design = accel_design((acc_dir / "accelerator.v").read_text(), acc, TOP)
    runner = ChunkRunner(design, ipi, opi, backend, engine="cocotb", waves=True, plusargs=plusargs)
    out.mkdir(parents=True, exist_ok=True)
    runner.run_chunk(
        gold.in_words[img * ipi : (img + 1) * ipi],
        gold.out_words[img * opi : (img + 1) * opi],
        name=f"image {img} (waves)",
        max_cycles=4 * cycles + 10**5,
        keep_dir=out,
    )
    found = sorted(
        [*out.glob("*.vcd"), *out.glob("*.fst")], key=lambda p: p.stat().st_mtime, reverse=True
    )
    if not found:
        raise BitfabError(f"--waves {out}: the simulator wrote no waveform (log: {out}/sim.log)")
    return found[0]


def localise(acc, dataflow: Path, image: np.ndarray, verilog: Path | None = None) -> dict:  # noqa: ANN001
    """Re-simulate each layer alone on ``image``'s golden tensors; the first layer whose output
    stream differs. Returns ``{"layer": name or None, "detail": one line}``.

    The layers re-simulated are bitfab's Amaranth units, not the Verilog under test: when they
    all match, ``verilog`` (the ``accelerator.v`` that failed) is compared with what bitfab
    generates for the same graph, and a difference (a hand edit, another bitfab version) is
    named as the likely fault instead of the wiring."""
    from bitfab.dataflow.golden import GoldenModel
    from bitfab.hw.compiler import tensor_words
    from bitfab.sim.amaranth_stream import run_streams

    _, tens = GoldenModel(dataflow).layer_tensors(np.asarray(image).reshape(1, -1))
    prev = tens["input"]
    for spec in acc.graph.layers:
        unit = spec.build()
        x = tensor_words(prev.reshape(1, -1), spec.fmt_in)
        y_t = tens[spec.golden_name] if spec.golden_name else prev  # converters keep elements
        y = tensor_words(np.asarray(y_t).reshape(1, -1), spec.fmt_out)
        try:
            r = run_streams(
                unit, {"i": x}, {"o": len(y)}, max_cycles=50 * (len(x) + len(y)) + 10**5
            )
            got = r.outputs["o"]
        except TimeoutError as e:
            return {"layer": spec.name, "detail": f"{spec.name} ({spec.op_type}): {e}"}
        if got != y:
            k = next(i for i, (a, b) in enumerate(zip(got, y, strict=True)) if a != b)
            return {
                "layer": spec.name,
                "detail": f"{spec.name} ({spec.op_type}) alone: output word {k} of {len(y)}: "
                f"expected {y[k]}, got {got[k]}",
            }
        prev = np.asarray(y_t)
    if verilog is not None and verilog.is_file():
        from bitfab.hw.accelerator import TOP
        from bitfab.hw.emit import verilog_text

        if verilog.read_text() != verilog_text(acc, TOP):
            return {
                "layer": None,
                "detail": f"every layer of bitfab's Amaranth source matches its golden tensors, "
                f"but {verilog.name} differs from what bitfab generates for this graph (edited "
                "by hand, or written by another bitfab version): the fault is in those "
                "differences; recompile with 'bitfab compile' to compare",
            }
    return {
        "layer": None,
        "detail": "every layer alone matches its golden tensors (and accelerator.v is what "
        "bitfab generates for this graph): the fault is in the wiring or FIFOs between layers",
    }


# --------------------------------------------------------------------------------------------
# verify
# --------------------------------------------------------------------------------------------


def weight_image_of(acc_dir: Path, flash_image: str | os.PathLike[str] | None) -> bytes:
    """The weight image to put in the simulated flash: ``flash_image`` or the accelerator's
    ``weights.bin``."""
    from bitfab.hw.accelerator import WEIGHTS_FILE

    path = Path(flash_image) if flash_image is not None else Path(acc_dir) / WEIGHTS_FILE
    try:
        return path.read_bytes()
    except OSError as e:
        raise BitfabError(
            f"{path}: weight image not readable ({e.strerror}); the accelerator keeps its "
            "weights in SPRAM, rerun 'bitfab compile' to write weights.bin"
        ) from None


def image_chunks(n: int, size: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` image ranges: image 0 alone, then runs of ``size`` up to ``n``."""
    out = [(0, 1)]
    s = 1
    while s < n:
        e = min(n, s + size)
        out.append((s, e))
        s = e
    return out


def verify(
    acc_dir: str | os.PathLike[str],
    images: int | None = None,
    backend: str = "verilator",
    *,
    chunk: int = 1000,
    jobs: int = 1,
    gap: float = 0.0,
    stall: float = 0.0,
    dataset: str = "fashion-mnist",
    progress: ProgressFn | None = None,
    localise_faults: bool = True,
    write: bool = True,
    golden: str | os.PathLike[str] | None = None,
    engine: str = "native",
    waves: str | os.PathLike[str] | None = None,
    stage: Callable[[str], None] | None = None,
    inputs: str | os.PathLike[str] | None = None,
    random: int | None = None,
    seed: int = 0,
    flash_image: str | os.PathLike[str] | None = None,
) -> dict:
    """Run the accelerator in ``acc_dir`` on the first ``images`` test images (default all),
    or on the inputs of the file ``inputs``, or on ``random`` random inputs (``seed``; see
    :func:`verification_inputs`), and compare with the golden model. Returns (and writes to ``acc_dir/verify.json``) a report:
    ``passed``, ``images``, ``mismatches`` (chunks with a mismatch), ``first_mismatch``
    (image, word, layer, detail), measured ``cycles_per_image``/``latency`` vs the estimate
    (``estimate``), ``ratio`` measured/estimated, simulation ``cycles_per_s``, wall times.
    ``golden``: the dataflow graph of the golden model (default ``acc_dir/dataflow.onnx``).
    ``engine``: with Verilator, ``"native"`` (a C++ clock loop, the fast default) or
    ``"cocotb"`` (the clock driven from cocotb, for comparison). ``waves``: a folder; on a
    mismatch the first mismatching image is simulated again alone, from the same
    ``accelerator.v`` and free-running harness, with signal tracing (Verilator: VCD; Icarus:
    FST), and ``first_mismatch["waves"]`` names the file. ``stage(text)``: told what is
    running (the simulator build, which can take a minute, then the simulation).

    An accelerator with SPRAM weights is simulated booting from the behavioural SPI flash
    (:mod:`bitfab.sim.boot`) with ``flash_image`` (default: its ``weights.bin``) in it; the
    report's ``boot`` gives the loader's cycles and the cycle counts exclude them."""
    from bitfab.hw.accelerator import TOP, WEIGHTS_FILE, load_accelerator

    if backend not in BACKENDS:
        raise BitfabError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    d = Path(acc_dir)
    t_all = time.perf_counter()
    acc, report = load_accelerator(d)
    golden_path = Path(golden) if golden is not None else d / "dataflow.onnx"
    imgs, source = verification_inputs(golden_path, images, dataset, inputs, random, seed)
    n = len(imgs)
    gold = golden_streams(acc, golden_path, imgs)
    ipi, opi = gold.in_per_image, gold.out_per_image
    chunk = max(2, int(chunk))
    spans = image_chunks(n, chunk)
    est = acc.perf
    results: dict[int, tuple] = {}
    done = [0]
    t_sim = time.perf_counter()
    build_s = 0.0
    boot_cycles = 0
    if backend == "amaranth" and acc.loaded_units:
        raise BitfabError(
            f"{d}: weights in SPRAM (SB_SPRAM256KA) need a Verilog simulator; use "
            "--backend verilator"
        )
    if backend == "amaranth":
        from bitfab.sim.amaranth_stream import run_streams

        for k, (s, e) in enumerate(spans):
            t0, c0 = time.perf_counter(), time.process_time()
            r = run_streams(
                acc,
                {"i": gold.in_words[s * ipi : e * ipi]},
                {"o": (e - s) * opi},
                gap=gap,
                stall=stall,
                seed=k,
                max_cycles=(e - s + 4) * 4 * est.ii + 4 * est.latency + 10**4,
            )
            exp = gold.out_words[s * opi : e * opi]
            got = r.outputs["o"]
            diff = [i for i, (a, b) in enumerate(zip(got, exp, strict=True)) if a != b]
            bad = diff[0] if diff else None
            msg = "" if bad is None else f"word {bad}: expected {exp[bad]}, got {got[bad]}"
            dt = time.perf_counter() - t0
            results[k] = (bad is None, msg, r.cycles, dt, bad, time.process_time() - c0, len(diff))
            done[0] += e - s
            if progress:
                progress(done[0], n)
    else:
        from bitfab.sim.accel_run import ChunkRunner, accel_design

        plusargs: list[str] = []
        if acc.loaded_units:  # SPRAM weights: every run boots from the flash image
            from bitfab.sim.boot import boot_design, flash_plusargs

            design, boot = boot_design((d / "accelerator.v").read_text(), acc)
            image = weight_image_of(d, flash_image)
            flash_dir = tempfile.TemporaryDirectory(prefix="bitfab-flash-")
            plusargs = flash_plusargs(image, Path(flash_dir.name))
            boot_cycles = boot.loader.boot_cycles()
        else:
            design = accel_design((d / "accelerator.v").read_text(), acc, TOP)
        big = max(e - s for s, e in spans)
        if stage:
            stage(f"compiling accelerator.v with {backend} (cached after the first time)")
        runner = ChunkRunner(
            design, big * ipi, big * opi, backend, engine=engine, plusargs=plusargs
        )
        build_s = runner.build_s
        if stage:
            stage(f"simulating {n} images ({backend})")

        def job(k: int) -> tuple:
            s, e = spans[k]
            r = runner.run_chunk(
                gold.in_words[s * ipi : e * ipi],
                gold.out_words[s * opi : e * opi],
                name=f"images {s}-{e - 1}",
                gap=gap,
                stall=stall,
                seed=k + 1,
                max_cycles=(e - s + 4) * 4 * est.ii + 4 * est.latency + 10**5 + 2 * boot_cycles,
            )
            return r.passed, r.message, r.cycles, r.tb_s, r.bad_word, r.cpu_s, r.bad_words

        t_sim = time.perf_counter()
        with ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
            futs = {pool.submit(job, k): k for k in range(len(spans))}
            for f in futs:
                k = futs[f]
                results[k] = f.result()
                s, e = spans[k]
                done[0] += e - s
                if progress:
                    progress(done[0], n)
    sim_wall = time.perf_counter() - t_sim
    lat = results[0][2]
    steady = [(results[k][2] - lat, e - s - 1) for k, (s, e) in enumerate(spans) if e - s > 1]
    ii = sum(c for c, _ in steady) / max(1, sum(m for _, m in steady)) if steady else float(lat)
    total_cycles = sum(r[2] for r in results.values())
    tb_s = sum(r[3] for r in results.values())
    cpu_s = sum(r[5] for r in results.values())
    failing = [k for k in range(len(spans)) if not results[k][0]]
    counts = [results[k][6] for k in range(len(spans))]
    bad_words = None if any(c is None for c in counts) else sum(counts)
    first = None
    if failing:
        k = failing[0]
        s, _ = spans[k]
        bad = results[k][4]
        img = s + (bad // opi if bad is not None else 0)
        first = {"image": img, "word": bad, "message": results[k][1]}
        if acc.loaded_units:
            from bitfab.hw.weight_image import check_image

            why = check_image(image, acc)
            if why:
                first["message"] += f" (the boot loader refuses the weight image: {why})"
        if localise_faults:
            first.update(localise(acc, golden_path, imgs[img], d / "accelerator.v"))
        if waves is not None and backend != "amaranth":
            first["waves"] = str(
                image_waves(
                    d,
                    acc,
                    gold,
                    img,
                    backend,
                    Path(waves),
                    est.ii + 4 * est.latency,
                    image if acc.loaded_units else b"",
                )  # fmt: skip
            )
    rep = {
        "accelerator": str(d),
        "backend": backend,
        "engine": engine if backend == "verilator" else ("cocotb" if backend == "icarus" else None),
        "images": n,
        "inputs": source,
        "passed": not failing,
        "mismatching_chunks": len(failing),
        # output words that differ (for a class-index output: images); None if not counted
        "mismatching_words": bad_words,
        "first_mismatch": first,
        "cycles_per_image": round(ii, 2),
        "latency": lat - boot_cycles,
        "estimate": {"cycles_per_image": est.ii, "latency": est.latency},
        "ratio_cycles_per_image": round(ii / est.ii, 4) if est.ii else None,
        "ratio_latency": round((lat - boot_cycles) / est.latency, 4) if est.latency else None,
        "total_cycles": total_cycles,
        "cycles_per_s": round(total_cycles / tb_s, 1) if tb_s > 0 else None,
        # per CPU second of the simulator processes (start-up included): independent of the
        # machine's load when chunks run one at a time (jobs=1)
        "cycles_per_cpu_s": round(total_cycles / cpu_s, 1) if cpu_s > 0 else None,
        "sim_wall_s": round(sim_wall, 2),
        "build_s": round(build_s, 2),
        "golden_s": round(gold.seconds, 2),
        "wall_s": round(time.perf_counter() - t_all, 2),
        "chunks": len(spans),
        "jobs": int(jobs),
        "gap": gap,
        "stall": stall,
        "arrays": report.get("arrays"),
        "boot": (
            {
                "flash_image": str(Path(flash_image) if flash_image else d / WEIGHTS_FILE),
                "loader_cycles": boot_cycles,
            }
            if acc.loaded_units
            else None
        ),  # fmt: skip
    }
    if write:
        (d / "verify.json").write_text(json.dumps(rep, indent=2) + "\n")
    return rep
