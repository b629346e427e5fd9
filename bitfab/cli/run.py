"""``bitfab run``: test images through a board's UART host link (stage: :mod:`bitfab.host.run`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import DATASETS, add_command, add_own_inputs, progress_callback
from bitfab.errors import BitfabError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "run",
        help="classify test images on a board over its UART host link",
        description="Sends the first N Fashion-MNIST test images to a board programmed with the "
        "board top of accelerator DIR (or a simulated board: 'bitfab board-sim --acc DIR' "
        "prints a pty to use as --port), packed as 'bitfab verify' packs them, and "
        "prints the classes, the accuracy against the labels and the measured images per "
        "second. Protocol: docs/host_link.md. An error reply or a silent board is one error "
        "line and exit code 2.",
        examples=[
            "bitfab run --port /dev/ttyUSB1 --acc runs/tfc/build/compile --images 1000",
            "bitfab run --port /dev/pts/3 --acc runs/tfc/acc --images 200 --window 8",
        ],
    )
    p.add_argument("--port", required=True, help="serial device (e.g. /dev/ttyUSB1, a pty)")
    p.add_argument("--acc", required=True, help="accelerator folder from 'bitfab compile'")
    p.add_argument("--images", type=int, default=None, help="number of test images (default 100)")
    add_own_inputs(p, "run")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    p.add_argument("--window", type=int, default=4, help="requests in flight, 1-8 (default 4)")
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for a reply (default 5)"
    )
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=DATASETS,
        help="test images (default fashion-mnist)",
    )
    p.add_argument(
        "--load-weights",
        action="store_true",
        help="first send the accelerator's weights.bin over the link (boards with SPRAM "
        "weights: new weights for the same architecture, no new bitstream)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no class list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.host.run import run_images

    if args.images is not None and args.images < 1:
        raise BitfabError(f"--images {args.images}: must be at least 1")
    own = args.inputs is not None or args.random is not None
    images = args.images if args.images is not None or own else 100
    if args.timeout <= 0:
        raise BitfabError(f"--timeout {args.timeout}: must be positive seconds")
    if not 1 <= args.window <= 8:
        raise BitfabError(f"--window {args.window}: must be 1..8 (the board holds 8 requests)")
    total = args.random or images
    with progress_callback(f"run on {args.port}", quiet=args.quiet, total=total) as progress:
        rep = run_images(
            args.port,
            args.acc,
            images,
            baud=args.baud,
            window=args.window,
            timeout_s=args.timeout,
            dataset=args.dataset,
            progress=progress,
            inputs=args.inputs,
            random=args.random,
            seed=args.input_seed,
            load_weights=args.load_weights,
        )
    if not args.quiet:
        if "classes" in rep:
            print("classes: " + " ".join(str(c) for c in rep["classes"]))
        else:
            print("outputs: " + " ".join(str(o) for o in rep["outputs"][:50]))
    if "accuracy" in rep:
        result = f"accuracy {rep['accuracy']:.4f} ({rep['correct']}/{rep['images']})"
    else:
        result = f"{rep['golden_matches']}/{rep['images']} outputs equal the golden model's"
    src = rep["inputs"]["source"]
    print(
        f"{rep['images']} {'images' if src == 'dataset' else 'inputs'} on {rep['port']}: "
        f"{result}, {rep['images_per_s']} images/s "
        f"({rep['seconds']} s, {rep['baud']} baud, window {rep['window']}"
        + (
            f"; the board overran, so requests went {rep['window_used']} at a time"
            if rep["window_used"] != rep["window"]
            else ""
        )
        + ")"
    )
    return 0
