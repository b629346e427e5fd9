"""``bitfab flow``: the main job - train, streamline, golden check, optionally a bitstream
(stage: :mod:`bitfab.flows.pipeline`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import (
    add_command,
    add_folding_target,
    add_model_args,
    add_out,
    array_flag,
    model_opts,
)


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "flow",
        help="the main job: train, streamline, check the golden model (and build a bitstream)",
        description="Train a zoo model (bitfab train), streamline it to a folded HW-layer graph "
        "(bitfab dataflow), and check that the dataflow golden model gives the QONNX model's class "
        "on the Fashion-MNIST test set; with --board, then 'bitfab build' for that board (fit, "
        "compile, RTL verification, bitstream) into OUT/build. Writes OUT/train, OUT/dataflow and "
        "OUT/report.json. A finished training with the same config and epochs in OUT/train is "
        "reused.",
        examples=[
            "bitfab flow --model tfc --wbits 1 --epochs 5 --target-cycles 1000 --out runs/tfc",
            "bitfab flow --model tfc --wbits 2 --board icebreaker --out runs/tfc_w2",
        ],
    )
    add_out(p, "folder", "run folder")
    add_model_args(p)
    p.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    add_folding_target(p, folding_file=False)
    p.add_argument(
        "--golden-images",
        "--check-images",
        dest="check_images",
        type=int,
        default=None,
        help="test images on which the dataflow golden model is checked against the QONNX "
        "model (default: all 10,000; --check-images is the older name, which in 'bitfab train' "
        "means the export check)",
    )
    p.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    p.add_argument("--fresh", action="store_true", help="retrain even if OUT/train is finished")
    p.add_argument(
        "--board",
        default=None,
        help="then build a verified bitstream for this board (bitfab build; e.g. icebreaker)",
    )
    p.add_argument(
        "--array",
        default="parallel",
        type=array_flag,
        help="PE array for --board: parallel, bitserial or bitfusion (default parallel)",
    )
    p.add_argument(
        "--verify-images",
        type=int,
        default=200,
        help="with --board: test images verified in RTL before the bitstream (default 200)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.flows.pipeline import run_flow
    from bitfab.models.config import make_config

    cfg = make_config(**model_opts(args))
    r = run_flow(
        cfg,
        args.out,
        epochs=args.epochs,
        target_cycles=args.target_cycles,
        lut_budget=args.lut_budget,
        check_images=args.check_images,
        data_dir=args.data_dir,
        fresh=args.fresh,
        board=args.board,
        array=args.array,
        verify_images=args.verify_images,
    )
    g, d = r["golden_agreement"], r["dataflow"]
    print(
        f"{r['model']} {r['precision']}: test accuracy {r['test_accuracy']:.2%}; "
        f"{d['layers']} HW layers, {d['cycles_per_image']} cycles/image (bottleneck "
        f"{d['bottleneck']}); golden model agrees with QONNX on "
        f"{g['images'] - g['real_mismatch_count']}/{g['images']} images "
        f"({g['tie_mismatch_count']} float ties) -> {args.out}/report.json"
    )
    b = r.get("build")
    if b:
        v, lut = b["verification"], b["resources"]["LUT"]
        print(
            f"{b['board']} ({b['array']}): RTL matches the golden model on "
            f"{v['images'] - v['mismatches']}/{v['images']} images; {lut['used']}/{lut['available']} "
            f"LUTs, {b['resources']['BRAM']['used']} BRAM, Fmax {b['fmax_mhz']} MHz at "
            f"{b['clock_mhz']} MHz, {b['cycles_per_image']['measured']} cycles/image = "
            f"{b['images_per_s']} images/s; bitstream {b['bitstream']['path']} "
            f"(sha256 {b['bitstream']['sha256'][:16]}...)"
        )
        import shlex

        if b.get("program"):
            print("flash it: " + " ".join(shlex.quote(a) for a in b["program"]))
        w = b.get("weight_image")
        if w:
            print(
                f"weights in SPRAM ({', '.join(b['fit'].get('weight_stores') or {})}, "
                f"{w['bytes']} bytes, loaded from flash at power-up): "
                + " ".join(shlex.quote(a) for a in w["program"])
                + " (or: bitfab program BUILD_DIR; new weights for this architecture: "
                "bitfab run --load-weights, no new bitstream)"
            )
    return 0
