"""``bitfab quantize``: post-training quantization of a float zoo checkpoint
(stage: :mod:`bitfab.models.ptq`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import DATASETS, add_command, add_out


def register(sub: argparse._SubParsersAction) -> None:
    from bitfab.models.ptq_methods import DEFAULT_CALIB, METHODS

    p = add_command(
        sub,
        "quantize",
        help="post-training quantization of a float checkpoint to QONNX",
        description="Quantizes the float model in FLOAT_CHECKPOINT (DIR/checkpoint.pt of "
        "'bitfab train --wbits float', or DIR) to --wbits/--abits with calibration images and "
        "writes OUT/model.onnx (QONNX, same quantizers as 'bitfab train', ready for "
        "'bitfab dataflow') and OUT/metrics.json (test accuracy on the full test split, float "
        "accuracy, QONNX-vs-torch export check). Methods: minmax, mse (MSE-searched clips), "
        "bias-correction, equalize (cross-layer equalization), gptq, adaround (the last two "
        "need 2+ bit weights). Activations need 2+ bits.",
        examples=[
            "bitfab quantize runs/float/checkpoint.pt --wbits 4 --abits 4 --method gptq --out runs/q4",
            "bitfab quantize runs/float --wbits 2,4,4,2 --abits 4 --calib synthetic --out runs/zq",
        ],
    )
    p.add_argument("checkpoint", metavar="FLOAT_CHECKPOINT", help="float checkpoint.pt or its DIR")
    p.add_argument(
        "--wbits",
        required=True,
        help="weight bits 1-8, one number or one per weight layer (e.g. 2,4,4,2)",
    )
    p.add_argument(
        "--abits",
        default=None,
        help="activation bits 2-8, one number or one per hidden activation (default = wbits)",
    )
    p.add_argument("--method", default="mse", choices=METHODS, help="PTQ method (default mse)")
    p.add_argument(
        "--calib",
        default=str(DEFAULT_CALIB),
        metavar="N|synthetic",
        help=f"calibration set: N random training images (default {DEFAULT_CALIB}) or "
        "'synthetic' (ZeroQ: images optimized to match the BatchNorm statistics; no data read)",
    )
    p.add_argument(
        "--synthetic-images",
        type=int,
        default=None,
        help="images in the synthetic set (with --calib synthetic; default 256)",
    )
    p.add_argument(
        "--model", default=None, help="expected zoo model (error if the checkpoint holds another)"
    )
    add_out(p, "folder", "output folder")
    p.add_argument(
        "--dataset", default="fashion-mnist", choices=DATASETS,
        help="calibration and test data (default fashion-mnist)",
    )  # fmt: skip
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX .gz folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--check-images",
        type=int,
        default=None,
        help="test images for the QONNX-vs-torch export check (default all)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.models.ptq import quantize

    m = quantize(
        args.checkpoint,
        args.out,
        wbits=args.wbits,
        abits=args.abits,
        method=args.method,
        calib=args.calib,
        synthetic_images=args.synthetic_images,
        model=args.model,
        dataset=args.dataset,
        data_dir=args.data_dir,
        seed=args.seed,
        check_images=args.check_images,
        progress=not args.quiet,
    )
    chk = m["export_check"]
    print(
        f"{m['model']} {m['precision']} {m['method']} ({m['calibration']['kind']} calibration, "
        f"{m['calibration']['images']} images): test accuracy {m['test_accuracy']:.2%} "
        f"(float {m['float_accuracy']:.2%}), QONNX export check {chk['argmax_agree']}/"
        f"{chk['images']} agree -> {args.out}"
    )
    return 0
