"""``bitfab verify``: an accelerator's RTL against the golden model on test images
(stages: :mod:`bitfab.sim.verify`, :mod:`bitfab.sim.gate_level`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bitfab.cli.common import DATASETS, add_command, add_own_inputs, progress_callback
from bitfab.errors import BitfabError

BACKENDS = ("verilator", "icarus", "amaranth")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "verify",
        help="run an accelerator's RTL on test images against the golden model",
        description="Streams N Fashion-MNIST test images back to back through DIR/accelerator.v "
        "(from 'bitfab compile') and compares every output with the golden model (FINN's "
        "execution of DIR/dataflow.onnx); on a mismatch reports the first image and the first "
        "layer whose output differs. Reports measured cycles per image, latency and simulation "
        "speed against the estimate; writes DIR/verify.json. A model whose input is not a "
        "28 x 28 image is verified on --random N inputs (uniform over its input quantizer's "
        "grid, so every bit pattern the hardware can see is exercised) or on --inputs FILE "
        "(your own inputs, as the QONNX model takes them); the golden model and the RTL see "
        "the same integers.",
        examples=[
            "bitfab verify runs/tfc/acc --images 1000 --jobs 2 --junit results.xml",
            "bitfab verify runs/ids/acc --random 1000 --seed 1",
        ],
    )
    p.add_argument("dir", help="accelerator folder from 'bitfab compile'")
    p.add_argument(
        "--images", type=int, default=None, help="number of test images (default all 10,000)"
    )
    p.add_argument(
        "--backend", default="verilator", choices=BACKENDS, help="simulator (default verilator)"
    )
    p.add_argument(
        "--chunk", type=int, default=1000, help="images per simulator run (default 1000)"
    )
    p.add_argument("--jobs", type=int, default=1, help="simulator runs at once (default 1)")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=DATASETS,
        help="test images (default fashion-mnist)",
    )
    add_own_inputs(p, "verify on")
    p.add_argument(
        "--gate-level",
        choices=["ice40", "ecp5"],
        default=None,
        help="instead of the RTL, synthesize it with Yosys for this family and simulate the "
        "mapped netlist with the vendor cell models (default 32 images); writes "
        "DIR/gate_level.json",
    )
    p.add_argument(
        "--waves",
        metavar="DIR",
        default=None,
        help="on a mismatch, simulate the first mismatching image again with signal tracing "
        "into DIR (Verilator: VCD, Icarus: FST) and print the GTKWave command",
    )
    p.add_argument(
        "--junit",
        metavar="FILE",
        default=None,
        help="also write the result as a JUnit XML test case to FILE (added to the cases "
        "already there), for CI dashboards",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _what(rep: dict) -> str:
    src = (rep.get("inputs") or {}).get("source", "dataset")
    return {"dataset": "images", "random": "random inputs", "file": "inputs"}[src]


def run(args: argparse.Namespace) -> int:
    from bitfab.sim.verify import verify

    if args.junit and Path(args.junit).is_dir():
        raise BitfabError(f"--junit {args.junit}: is a folder; give an .xml file name")
    for flag, value in (("--images", args.images), ("--chunk", args.chunk), ("--jobs", args.jobs)):
        if value is not None and value < 1:
            raise BitfabError(f"{flag} {value}: must be at least 1")
    with progress_callback(f"verify ({args.backend})", quiet=args.quiet) as progress:
        if args.gate_level:
            from bitfab.sim.gate_level import gate_level_verify

            rep = gate_level_verify(
                args.dir,
                args.gate_level,
                args.images or (None if args.inputs else 32),
                chunk=min(args.chunk, 100),
                dataset=args.dataset,
                progress=progress,
                inputs=args.inputs,
                random=args.random,
                seed=args.input_seed,
            )
        else:
            rep = verify(
                args.dir,
                args.images,
                args.backend,
                chunk=args.chunk,
                jobs=args.jobs,
                dataset=args.dataset,
                progress=progress,
                waves=args.waves,
                inputs=args.inputs,
                random=args.random,
                seed=args.input_seed,
                stage=(lambda text: progress(0, None, label=text)) if progress else None,
            )
    if args.junit:
        from bitfab.sim.junit import write_junit

        write_junit(args.junit, {**rep, "accelerator": args.dir})
    if args.gate_level:
        print(
            f"{rep['images']} {_what(rep)}, {rep['family']} netlist ({rep['simulator']}): "
            f"{'all outputs match' if rep['passed'] else 'MISMATCH'}; "
            f"{rep['cycles_per_image']} cycles/image (RTL {rep['rtl_cycles_per_image']}, "
            f"equal: {rep['cycles_equal']}), {rep['wall_s']} s -> {args.dir}/gate_level.json"
        )
        if not rep["passed"]:
            fm = rep["first_mismatch"]
            print(f"first mismatch: image {fm['image']}: {fm['message']}", file=sys.stderr)
            return 1
        return 0
    est = rep["estimate"]
    print(
        f"{rep['images']} {_what(rep)}, {rep['backend']}: "
        f"{'all outputs match' if rep['passed'] else 'MISMATCH'}; "
        f"{rep['cycles_per_image']} cycles/image (estimate {est['cycles_per_image']}, "
        f"x{rep['ratio_cycles_per_image']}), latency {rep['latency']} (estimate "
        f"{est['latency']}), {rep['cycles_per_s']} cycles/s, {rep['wall_s']} s -> "
        f"{args.dir}/verify.json"
    )
    if not rep["passed"]:
        fm = rep["first_mismatch"]
        print(
            f"first mismatch: image {fm['image']}: {fm['message']}; {fm.get('detail', '')}",
            file=sys.stderr,
        )
        if fm.get("waves"):
            print(f"waves of image {fm['image']}: gtkwave {fm['waves']}", file=sys.stderr)
        return 1
    return 0
