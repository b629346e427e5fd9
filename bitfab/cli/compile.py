"""``bitfab compile``: dataflow graph -> streaming Amaranth accelerator
(stage: :mod:`bitfab.hw.accelerator`)."""

from __future__ import annotations

import argparse

from bitfab.cli.common import add_command, add_out, array_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "compile",
        help="FINN dataflow graph -> streaming Amaranth accelerator (Verilog)",
        description="One streaming unit per HW layer of DATAFLOW (from 'bitfab dataflow'), wired "
        "in graph order with FIFOs; writes OUT/accelerator.v (one Verilog file, module "
        "'accelerator', memories initialised inside it), OUT/accelerator.json (per layer: array "
        "kind, PE, SIMD, memory bits, estimated cycles and LUTs; FIFO depths; cycles per image "
        "and latency estimates) and a copy of dataflow.onnx for 'bitfab verify'.",
        examples=[
            "bitfab compile runs/tfc/df/dataflow.onnx --array bitserial --out runs/tfc/acc",
            "bitfab compile runs/c/df/dataflow.onnx --config arrays.toml --out runs/c/acc",
        ],
    )
    p.add_argument("dataflow", help="DIR2/dataflow.onnx from 'bitfab dataflow'")
    p.add_argument(
        "--array",
        default="parallel",
        type=array_flag,
        help="PE array of every MVAU: parallel, bitserial or bitfusion (default parallel)",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="TOML",
        help='per-layer arrays: top-level array = "kind" and a [layers] table '
        'MVAU_0 = "bitserial" (overrides --array)',
    )
    add_out(p, "folder", "output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bitfab.hw.accelerator import compile_accelerator

    rep = compile_accelerator(args.dataflow, args.out, args.array, args.config)
    perf = rep["performance"]
    print(
        f"{len(rep['layers'])} units ({', '.join(rep['arrays']) or 'no MVAU'}), "
        f"{len(rep['fifos'])} FIFOs; estimated {perf['cycles_per_image']} cycles/image "
        f"(bottleneck {perf['bottleneck']}), latency {perf['latency']} cycles, "
        f"~{rep['luts']} LUT, {rep['memory_bits']} memory bits -> {args.out}"
    )
    return 0
