"""``bitfab dataflow``: QONNX -> folded FINN HW-layer graph (stage: :mod:`bitfab.dataflow.build`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command, add_folding_target, add_out, read_folding


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "dataflow",
        help="streamline QONNX into a folded FINN HW-layer graph",
        description="FINN conversion, streamlining and HW-layer conversion, then "
        "PE/SIMD folding; writes OUT/dataflow.onnx and OUT/dataflow.json. "
        "Without a folding option every layer gets PE=SIMD=1.",
        examples=[
            "bitfab dataflow runs/tfc/model.onnx --lut-budget 4000 --out runs/tfc/df",
            "bitfab dataflow runs/tfc/model.onnx --folding folding.json --out runs/tfc/df",
        ],
    )
    p.add_argument("model", help="QONNX model (e.g. DIR/model.onnx from 'bitfab train')")
    add_out(p, "folder", "output folder")
    add_folding_target(p, folding_file=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.dataflow.build import build_dataflow

    folding = read_folding(args.folding) if args.folding is not None else None
    rep = build_dataflow(
        args.model,
        args.out,
        target_cycles=args.target_cycles,
        lut_budget=args.lut_budget,
        folding=folding,
        progress=True,
    )
    met = "" if rep["folding"]["target_met"] else " (target NOT met: fastest folding used)"
    print(
        f"{len(rep['layers'])} HW layers ({', '.join(rep['op_types'])}); "
        f"{rep['cycles_per_image']} cycles/image, bottleneck {rep['bottleneck']}, "
        f"~{rep['lut_estimate']} LUT{met} -> {args.out}"
    )
    return 0
