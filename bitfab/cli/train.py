"""``bitfab train``: quantization-aware training of a zoo model (stage: :mod:`bitfab.models.train`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import DATASETS, add_command, add_model_args, add_out, model_opts
from bitfab.errors import BitfabError

QUANTIZERS = ("finn", "stats", "lsq", "pact")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "train",
        help="QAT-train a zoo model and export QONNX",
        description="Quantization-aware training with Brevitas; writes DIR/model.onnx "
        "(QONNX; input float [1,1,28,28] = pixel/255), DIR/metrics.json (test accuracy, "
        "QONNX-vs-torch export check) and DIR/checkpoint.pt (each epoch, for --resume). "
        "Bit widths: 1 = bipolar, 2-8 = integer; a comma list sets them per layer "
        "(e.g. --wbits 2,4,4,2); --float (= --wbits float) trains the float model (no export), "
        "the checkpoint 'bitfab quantize' starts from. --quantizer picks the QAT quantizer "
        "family.",
        examples=[
            "bitfab train --model tfc --wbits 1 --abits 1 --in-bits 1 --epochs 5 --out runs/tfc",
            "bitfab train --model cnv-s --wbits 2,4,4,4,2 --abits 2 --quantizer lsq --out runs/c",
        ],
    )
    add_model_args(p)
    p.add_argument(
        "--float",
        action="store_true",
        help="train the float model (alias of --wbits float; abits/in_bits follow)",
    )
    p.add_argument(
        "--quantizer",
        default=None,
        choices=QUANTIZERS,
        help="QAT quantizer family: finn = constant scales, bipolar at 1 bit (FINN bnn_pynq, "
        "default); stats = scales from weight/activation statistics, fixed at export; "
        "lsq = learned step size with gradient scaling (LSQ); pact = learned activation "
        "clipping level (PACT). Only finn applies at 1 bit.",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=10,
        help="total epochs (with --resume: the new total; default 10)",
    )
    add_out(p, "folder", "output folder")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default 128)")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="Adam learning rate, cosine decay (default 0.03; float model 0.01)",
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/checkpoint.pt (its config and hyper-parameters)",
    )
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=DATASETS,
        help="training data (default fashion-mnist; digits = scikit-learn 8x8 digits "
        "upscaled and padded to 28x28)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="Fashion-MNIST IDX .gz folder (default $BITFAB_FASHION_MNIST or "
        "/usr/share/datasets/fashion-mnist)",
    )
    p.add_argument(
        "--limit", type=int, default=None, help="train on the first N training images only"
    )
    p.add_argument(
        "--check-images",
        type=int,
        default=None,
        help="test images for the QONNX-vs-torch export check (default all)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.models.config import make_config
    from bitfab.models.train import train

    opts = model_opts(args)
    if args.quantizer is not None:
        opts["quantizer"] = args.quantizer
    if args.float:
        if args.wbits is not None and str(args.wbits).strip().lower() not in ("float", "32"):
            raise BitfabError(f"--float and --wbits {args.wbits} disagree; give one of them")
        opts["wbits"] = "float"
        for key, flag in (
            ("abits", args.abits),
            ("in_bits", args.in_bits),
            ("quantizer", args.quantizer),
        ):
            if flag is None:  # a config file's bit widths and quantizer give way to --float
                opts.pop(key, None)
    cfg = None if args.resume and not opts else make_config(**opts)
    m = train(
        cfg,
        args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        resume=args.resume,
        data_dir=args.data_dir,
        dataset=args.dataset,
        limit=args.limit,
        check_images=args.check_images,
        progress=not args.quiet,
    )
    chk = m["export_check"]
    extra = (
        ""
        if chk is None
        else (
            f", QONNX export check {chk['argmax_agree']}/{chk['images']} "
            f"agree ({chk['disagree_at_tie']} differ at top-2 ties)"
        )
    )
    quant = f" ({m['quantizer']})" if m.get("quantizer") not in (None, "finn") else ""
    print(
        f"{m['model']} {m['precision']}{quant}: test accuracy {m['test_accuracy']:.2%} "
        f"({m['epochs']} epochs, {m['train_seconds']:.0f} s){extra} -> {args.out}"
    )
    return 0
