"""``bitfab dataflow``: QONNX -> folded FINN HW-layer graph (stage: :mod:`bitfab.dataflow.build`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command, add_folding_target, add_out, read_folding

#: mirrors of bitfab.dataflow.convert.INPUT_MODES / HEAD_MODES and golden.SELF_CHECK_INPUTS
#: (kept here so that '--help' does not import FINN; tests/cli checks they agree)
INPUT_MODES = ("auto", "pixels", "codes")
HEAD_MODES = ("auto", "class", "values")
SELF_CHECK_INPUTS = 32


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "dataflow",
        help="streamline QONNX into a folded FINN HW-layer graph",
        description="FINN conversion, streamlining and HW-layer conversion, then "
        "PE/SIMD folding; writes OUT/dataflow.onnx and OUT/dataflow.json. "
        "Without a folding option every layer gets PE=SIMD=1. The accelerator's input is the "
        "raw uint8 pixel for a model that starts from an image (1 or 3 channels, or 784 "
        "values), else the integer code of the model's own input quantizer; its output is the "
        "class index for a classifier (raw logits, or a Softmax/ArgMax tail, absorbed) and the "
        "model's own values for a one-output or quantized-output model. Before writing, "
        "random inputs run through the QONNX model and the result, which must agree.",
        examples=[
            "bitfab dataflow runs/tfc/model.onnx --lut-budget 4000 --out runs/tfc/df",
            "bitfab dataflow ids_mlp.onnx --head values --out runs/ids/df",
        ],
    )
    p.add_argument("model", help="QONNX model (e.g. DIR/model.onnx from 'bitfab train')")
    add_out(p, "folder", "output folder")
    add_folding_target(p, folding_file=True)
    p.add_argument(
        "--input",
        dest="input_mode",
        choices=INPUT_MODES,
        default="auto",
        help="what the accelerator takes: 'pixels' (uint8, the model's input = pixel / 255), "
        "'codes' (the integer output of the model's input quantizer); default auto (pixels "
        "for an image-shaped input)",
    )
    p.add_argument(
        "--head",
        choices=HEAD_MODES,
        default="auto",
        help="what the accelerator returns: 'class' (the argmax index) or 'values' (the last "
        "layer's integers; the model's output = scale * value + bias, in dataflow.json); "
        "default auto (values for one output or a quantized output, else class)",
    )
    p.add_argument(
        "--check",
        type=int,
        default=SELF_CHECK_INPUTS,
        metavar="N",
        help=f"random inputs run through the QONNX model and the dataflow graph, which must "
        f"agree before anything is written (default {SELF_CHECK_INPUTS}; 0 skips it)",
    )
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
        input_mode=args.input_mode,
        head=args.head,
        check=args.check,
    )
    met = "" if rep["folding"]["target_met"] else " (target NOT met: fastest folding used)"
    print(
        f"{len(rep['layers'])} HW layers ({', '.join(rep['op_types'])}); "
        f"{rep['cycles_per_image']} cycles/image, bottleneck {rep['bottleneck']}, "
        f"~{rep['lut_estimate']} LUT{met} -> {args.out}"
    )
    print(f"input: {rep['input']['meaning']}")
    chk = rep["self_check"]
    checked = f" (agrees with the input model on {chk['inputs']} random inputs)" if chk else ""
    print(f"output: {rep['output']['meaning']}{checked}")
    return 0
