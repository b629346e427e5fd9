"""The ``bitfab`` command line. It only parses arguments and calls the stage APIs.

Stage modules are imported inside the command functions so that ``bitfab --help`` is instant.
A :class:`bitfab.errors.BitfabError` is printed as one ``error:`` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bitfab.errors import BitfabError


# --- model selection, shared by train and flow -----------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser) -> None:
    """--model, --wbits, --abits, --in-bits, --dropout, --config (see bitfab.models.config)."""
    p.add_argument(
        "--model",
        default=None,
        help="zoo model: tfc, sfc, lfc (FINN MLPs), cnv-s (iCE40 UP5K CNN), cnv-m (ECP5 CNN); "
        "default tfc",
    )
    p.add_argument(
        "--wbits",
        default=None,
        help="weight bits 1-8, one number or one per weight layer; 32/float = float model "
        "(default 1)",
    )
    p.add_argument(
        "--abits",
        default=None,
        help="activation bits 1-8, one number or one per hidden activation (default = wbits)",
    )
    p.add_argument(
        "--in-bits",
        default=None,
        help="input bits: 1 = bipolar sign of pixel>=128, 2-8 = unsigned (8 = exact pixel); "
        "default 8; 1 = FINN's classic binarized TFC input",
    )
    p.add_argument("--dropout", type=float, default=None, help="dropout rate (default 0)")
    p.add_argument(
        "--config",
        default=None,
        help="config file with model, wbits, abits, in_bits, dropout (quantizer): TOML, or JSON "
        "(FILE.json: the 'config' dict of a metrics.json, as 'bitfab mixed' writes); flags "
        "override it",
    )


def _model_opts(args: argparse.Namespace) -> dict:
    """The model config keys given by --config and the flags (flags win); not yet validated."""
    from bitfab.models.config import load_config_file

    opts = load_config_file(args.config) if args.config else {}
    flags = {
        "model": args.model,
        "wbits": args.wbits,
        "abits": args.abits,
        "in_bits": args.in_bits,
        "dropout": args.dropout,
    }
    opts.update({k: v for k, v in flags.items() if v is not None})
    return opts


# --- train (owned by bitfab.models) -------------------------------------------------------------
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="QAT-train a zoo model and export QONNX",
        description="Quantization-aware training with Brevitas; writes DIR/model.onnx "
        "(QONNX; input float [1,1,28,28] = pixel/255), DIR/metrics.json (test accuracy, "
        "QONNX-vs-torch export check) and DIR/checkpoint.pt (each epoch, for --resume). "
        "Bit widths: 1 = bipolar, 2-8 = integer; a comma list sets them per layer "
        "(e.g. --wbits 2,4,4,2); --float (= --wbits float) trains the float model (no export), "
        "the checkpoint 'bitfab quantize' starts from. --quantizer picks the QAT quantizer "
        "family.",
    )
    _add_model_args(p)
    p.add_argument(
        "--float",
        action="store_true",
        help="train the float model (alias of --wbits float; abits/in_bits follow)",
    )
    p.add_argument(
        "--quantizer",
        default=None,
        choices=["finn", "stats", "lsq", "pact"],
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
    p.add_argument("--out", required=True, help="output folder")
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
        choices=["fashion-mnist", "digits"],
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
    p.set_defaults(func=_cmd_train)


def _cmd_train(args: argparse.Namespace) -> int:
    from bitfab.models.config import make_config
    from bitfab.models.train import train

    opts = _model_opts(args)
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


# --- dataflow (owned by bitfab.dataflow) --------------------------------------------------------
def _add_dataflow(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dataflow",
        help="streamline QONNX into a folded FINN HW-layer graph",
        description="FINN conversion, streamlining and HW-layer conversion, then "
        "PE/SIMD folding; writes OUT/dataflow.onnx and OUT/dataflow.json. "
        "Without a folding option every layer gets PE=SIMD=1.",
    )
    p.add_argument("model", help="QONNX model (e.g. DIR/model.onnx from 'bitfab train')")
    p.add_argument("--out", required=True, help="output folder")
    fold = p.add_mutually_exclusive_group()
    fold.add_argument(
        "--target-cycles",
        type=int,
        metavar="N",
        help="cheapest folding whose slowest layer needs <= N cycles per image",
    )
    fold.add_argument(
        "--lut-budget",
        type=int,
        metavar="N",
        help="fastest folding whose LUT estimate is <= N (see docs/dataflow.md)",
    )
    fold.add_argument(
        "--folding",
        metavar="JSON",
        help='folding file {"LAYER": {"PE": p, "SIMD": s, "parallel_window": 0|1}, ...}; '
        "checked against FINN's constraints (a depthwise sliding window's SIMD must equal "
        "the PE of the Pool it feeds)",
    )
    p.set_defaults(func=_cmd_dataflow)


def _cmd_dataflow(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from bitfab.dataflow.build import build_dataflow

    folding = None
    if args.folding is not None:
        try:
            folding = json.loads(Path(args.folding).read_text())
        except (OSError, ValueError) as e:
            raise BitfabError(f"--folding {args.folding}: cannot read JSON ({e})") from None
        if not isinstance(folding, dict):
            raise BitfabError(f"--folding {args.folding}: expected an object of layer names")
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


# --- compile / verify: the accelerator (owned by bitfab.hw.accelerator, bitfab.sim.verify) --------
def _add_compile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile",
        help="FINN dataflow graph -> streaming Amaranth accelerator (Verilog)",
        description="One streaming unit per HW layer of DATAFLOW (from 'bitfab dataflow'), wired "
        "in graph order with FIFOs; writes OUT/accelerator.v (one Verilog file, module "
        "'accelerator', memories initialised inside it), OUT/accelerator.json (per layer: array "
        "kind, PE, SIMD, memory bits, estimated cycles and LUTs; FIFO depths; cycles per image "
        "and latency estimates) and a copy of dataflow.onnx for 'bitfab verify'.",
    )
    p.add_argument("dataflow", help="DIR2/dataflow.onnx from 'bitfab dataflow'")
    p.add_argument(
        "--array",
        default="parallel",
        help="PE array of every MVAU: parallel, bitserial or bitfusion (default parallel)",
    )
    p.add_argument(
        "--config",
        default=None,
        metavar="TOML",
        help='per-layer arrays: top-level array = "kind" and a [layers] table '
        'MVAU_0 = "bitserial" (overrides --array)',
    )
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_cmd_compile)


def _cmd_compile(args: argparse.Namespace) -> int:
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


def _add_verify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="run an accelerator's RTL on test images against the golden model",
        description="Streams N Fashion-MNIST test images back to back through DIR/accelerator.v "
        "(from 'bitfab compile') and compares every output with the golden model (FINN's "
        "execution of DIR/dataflow.onnx); on a mismatch reports the first image and the first "
        "layer whose output differs. Reports measured cycles per image, latency and simulation "
        "speed against the estimate; writes DIR/verify.json.",
    )
    p.add_argument("dir", help="accelerator folder from 'bitfab compile'")
    p.add_argument(
        "--images", type=int, default=None, help="number of test images (default all 10,000)"
    )
    p.add_argument(
        "--backend",
        default="verilator",
        choices=["verilator", "icarus", "amaranth"],
        help="simulator (default verilator)",
    )
    p.add_argument(
        "--chunk", type=int, default=1000, help="images per simulator run (default 1000)"
    )
    p.add_argument("--jobs", type=int, default=1, help="simulator runs at once (default 1)")
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=["fashion-mnist", "digits"],
        help="test images (default fashion-mnist)",
    )
    p.add_argument(
        "--gate-level",
        choices=["ice40", "ecp5"],
        default=None,
        help="instead of the RTL, synthesize it with Yosys for this family and simulate the "
        "mapped netlist with the vendor cell models (default 32 images); writes "
        "DIR/gate_level.json",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_verify)


def _cmd_verify(args: argparse.Namespace) -> int:
    import contextlib

    from bitfab.sim.verify import verify

    with contextlib.ExitStack() as stack:
        progress = None
        if not args.quiet:
            from rich.progress import Progress

            bar = stack.enter_context(Progress(transient=True))
            task = bar.add_task(f"verify ({args.backend})", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

        if args.gate_level:
            from bitfab.sim.gate_level import gate_level_verify

            rep = gate_level_verify(
                args.dir,
                args.gate_level,
                args.images or 32,
                chunk=min(args.chunk, 100),
                dataset=args.dataset,
                progress=progress,
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
            )
    if args.gate_level:
        print(
            f"{rep['images']} images, {rep['family']} netlist ({rep['simulator']}): "
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
        f"{rep['images']} images, {rep['backend']}: "
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
        return 1
    return 0


# --- flow: the main job (owned by bitfab.flows.pipeline) -----------------------------------------------
def _add_flow(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "flow",
        help="the main job: train, streamline, check the golden model (and build a bitstream)",
        description="Train a zoo model (bitfab train), streamline it to a folded HW-layer graph "
        "(bitfab dataflow), and check that the dataflow golden model gives the QONNX model's class "
        "on the Fashion-MNIST test set; with --board, then 'bitfab build' for that board (fit, "
        "compile, RTL verification, bitstream) into OUT/build. Writes OUT/train, OUT/dataflow and "
        "OUT/report.json. A finished training with the same config and epochs in OUT/train is "
        "reused.",
    )
    p.add_argument("--out", required=True, help="run folder")
    _add_model_args(p)
    p.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    fold = p.add_mutually_exclusive_group()
    fold.add_argument(
        "--target-cycles",
        type=int,
        metavar="N",
        help="folding target: slowest layer <= N cycles per image",
    )
    fold.add_argument("--lut-budget", type=int, metavar="N", help="folding target: LUT estimate")
    p.add_argument(
        "--check-images",
        type=int,
        default=None,
        help="test images for the golden check (default: all 10,000)",
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
        choices=["parallel", "bitserial", "bitfusion"],
        help="PE array for --board (default parallel)",
    )
    p.add_argument(
        "--verify-images",
        type=int,
        default=200,
        help="with --board: test images verified in RTL before the bitstream (default 200)",
    )
    p.set_defaults(func=_cmd_flow)


def _cmd_flow(args: argparse.Namespace) -> int:
    from bitfab.flows.pipeline import run_flow
    from bitfab.models.config import make_config

    cfg = make_config(**_model_opts(args))
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
        f"{d['bottleneck']}); golden model agrees with QONNX on {g['images'] - g['real_mismatch_count']}"
        f"/{g['images']} images ({g['tie_mismatch_count']} float ties) -> {args.out}/report.json"
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
    return 0


# --- run: images through the host link of a board (owned by bitfab.host.run) -------------------
def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="classify test images on a board over its UART host link",
        description="Sends the first N Fashion-MNIST test images to a board programmed with the "
        "board top of accelerator DIR (or a simulated board: python -m bitfab.sim.board_sim "
        "--acc DIR prints a pty to use as --port), packed as 'bitfab verify' packs them, and "
        "prints the classes, the accuracy against the labels and the measured images per "
        "second. Protocol: docs/host_link.md. An error reply or a silent board is one error "
        "line and exit code 2.",
    )
    p.add_argument("--port", required=True, help="serial device (e.g. /dev/ttyUSB1, a pty)")
    p.add_argument("--acc", required=True, help="accelerator folder from 'bitfab compile'")
    p.add_argument("--images", type=int, default=100, help="number of test images (default 100)")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    p.add_argument("--window", type=int, default=4, help="requests in flight, 1-8 (default 4)")
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for a reply (default 5)"
    )
    p.add_argument(
        "--dataset",
        default="fashion-mnist",
        choices=["fashion-mnist", "digits"],
        help="test images (default fashion-mnist)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, no class list")
    p.set_defaults(func=_cmd_run)


def _cmd_run(args: argparse.Namespace) -> int:
    import contextlib

    from bitfab.host.run import run_images

    if not 1 <= args.window <= 8:
        raise BitfabError(f"--window {args.window}: must be 1..8 (the board holds 8 requests)")
    with contextlib.ExitStack() as stack:
        progress = None
        if not args.quiet:
            from rich.progress import Progress

            bar = stack.enter_context(Progress(transient=True))
            task = bar.add_task(f"run on {args.port}", total=args.images)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

        rep = run_images(
            args.port,
            args.acc,
            args.images,
            baud=args.baud,
            window=args.window,
            timeout_s=args.timeout,
            dataset=args.dataset,
            progress=progress,
        )
    if not args.quiet:
        print("classes: " + " ".join(str(c) for c in rep["classes"]))
    print(
        f"{rep['images']} images on {rep['port']}: accuracy {rep['accuracy']:.4f} "
        f"({rep['correct']}/{rep['images']}), {rep['images_per_s']} images/s "
        f"({rep['seconds']} s, {rep['baud']} baud, window {rep['window']})"
    )
    return 0


# --- main ---------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bitfab",
        description="Low-bit neural networks from Brevitas QAT through FINN dataflow to "
        "open-toolchain FPGA hardware.",
    )
    from bitfab import __version__

    parser.add_argument("--version", action="version", version=f"bitfab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_train(sub)
    _add_dataflow(sub)
    _add_flow(sub)
    _add_compile(sub)
    _add_verify(sub)
    _add_run(sub)
    from bitfab.flows.cli import add_boards, add_build, add_synth

    add_synth(sub)
    add_boards(sub)
    add_build(sub)
    from bitfab.flows.explore.cli import add_explore
    from bitfab.flows.mixed_cli import add_mixed
    from bitfab.models.quantize_cli import add_quantize

    add_quantize(sub)
    add_mixed(sub)
    add_explore(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BitfabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
