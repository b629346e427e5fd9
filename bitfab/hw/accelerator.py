"""The streaming accelerator: one unit per HW layer, wired in graph order with FIFOs.

:class:`Accelerator` takes the :class:`~bitfab.hw.compiler.CompiledGraph` of a dataflow graph
and FIFO depths (words, one per boundary between consecutive units; 0 = direct connection)
and chains ``i -> unit_0 -> FIFO -> unit_1 -> ... -> o``. Ports:

- ``i``: ``In(stream.Signature(unsigned(W_in)))``, the first layer's input words (FINN's
  graph input, e.g. one raw UINT8 pixel per lane, ``lanes x bits`` per word, lane 0 in the LSBs);
- ``o``: ``Out(stream.Signature(unsigned(W_out)))``, the last layer's output words (the class
  index from LabelSelect, or the raw output vector).

Images follow each other back to back on both streams.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw.compiler import CompiledGraph
from bitfab.hw.elaboratable import unused_ok
from bitfab.hw.fifo_sizing import fifo_depths as fifo_depths_for
from bitfab.hw.layers.stream_fifo import StreamFIFO
from bitfab.hw.perf import model_perf
from bitfab.hw.spram import SPRAM_WIDTH


class Accelerator(wiring.Component):
    """Streaming accelerator of ``graph``.

    ``fifo_depths``: one depth (words) per boundary between consecutive layers (length
    ``len(graph.layers) - 1``; default: :func:`bitfab.hw.fifo_sizing.fifo_depths`); 0 connects
    the two units directly. Attributes: ``units``, ``fifo_depths``, ``fifo_choices``, ``perf``
    (:class:`bitfab.hw.perf.ModelPerf`). ``array_options``: extra
    PE array keyword arguments for every MVAU (e.g. ``{"reg_every": 2}``).
    """

    def __init__(
        self,
        graph: CompiledGraph,
        fifo_depths: Sequence[int] | None = None,
        array_options: dict | None = None,
        spram_model: str = "ice40",
    ) -> None:
        self.graph = graph
        n = len(graph.layers)
        self.units = [spec.build(array_options, spram_model) for spec in graph.layers]
        #: units whose weights are loaded at run time (SPRAM), in load order
        self.loaded_units = [u for u in self.units if "wload" in u.signature.members]
        #: the FIFO sizing analysis (also when explicit depths are given: its rules are recorded)
        self.fifo_choices = fifo_depths_for(graph.layers, self.units)
        if fifo_depths is None:
            depths = [c.depth for c in self.fifo_choices]
        else:
            depths = [int(d) for d in fifo_depths]
        if len(depths) != n - 1 or any(d < 0 for d in depths):
            raise ValueError(f"fifo_depths: need {n - 1} depths >= 0, got {list(depths)}")
        self.fifo_depths = depths
        #: the performance model's estimate for this accelerator
        self.perf = model_perf(graph.layers, self.units, depths)
        self.fifos = [
            StreamFIFO(width=spec.fmt_out.width, depth=d) if d > 0 else None
            for spec, d in zip(graph.layers[:-1], depths, strict=True)
        ]
        for sub in [*self.units, *(f for f in self.fifos if f is not None)]:
            unused_ok(sub)  # elaborated with the accelerator (or not at all)
        ports = {
            "i": In(stream.Signature(unsigned(graph.input_fmt.width))),
            "o": Out(stream.Signature(unsigned(graph.output_fmt.width))),
        }
        if self.loaded_units:
            ports.update(
                wload=In(stream.Signature(unsigned(SPRAM_WIDTH))), loaded=Out(1), reload=In(1)
            )
        super().__init__(ports)

    def weight_load_words(self) -> list[int]:
        """The 16-bit words of ``wload``: each SPRAM unit's load words, in unit order."""
        return [w for u in self.loaded_units for w in u.weight_load_words()]

    def elaborate(self, platform):
        m = Module()
        if self.loaded_units:
            # the load stream fills the units one after the other: the first not yet loaded
            # takes the words; `loaded` when all are
            before = 1
            ready = 0
            for u in self.loaded_units:
                sel = before & ~u.loaded
                m.d.comb += [
                    u.wload.payload.eq(self.wload.payload),
                    u.wload.valid.eq(self.wload.valid & sel),
                    u.reload.eq(self.reload),
                ]
                ready = ready | (sel & u.wload.ready)
                before = before & u.loaded
            m.d.comb += [self.wload.ready.eq(ready), self.loaded.eq(before)]
        prev = self.i
        first = True
        for k, (spec, unit) in enumerate(zip(self.graph.layers, self.units, strict=True)):
            m.submodules[spec.name] = unit
            if first:
                wiring.connect(m, wiring.flipped(self.i), unit.i)
                first = False
            else:
                wiring.connect(m, prev, unit.i)
            prev = unit.o
            if k < len(self.fifos) and self.fifos[k] is not None:
                fifo = self.fifos[k]
                m.submodules[f"fifo_{spec.name}"] = fifo
                wiring.connect(m, prev, fifo.i)
                prev = fifo.o
        wiring.connect(m, prev, wiring.flipped(self.o))
        return m


# --------------------------------------------------------------------------------------------
# bitfab compile: dataflow.onnx -> DIR/accelerator.v + DIR/accelerator.json
# --------------------------------------------------------------------------------------------

#: Verilog module name of the accelerator top.
TOP = "accelerator"


def fmt_json(fmt) -> dict:  # noqa: ANN001 - StreamFormat
    return {
        "kind": fmt.kind,
        "bits": fmt.bits,
        "lanes": fmt.lanes,
        "elements": fmt.elements,
        "width": fmt.width,
        "words_per_image": fmt.words,
        "dw_window": list(fmt.dw_window) if fmt.dw_window else None,
    }


def accelerator_report(acc: Accelerator) -> dict:
    """The content of ``accelerator.json``: per layer array kind, PE, SIMD, memory bits,
    estimated cycles and LUTs; FIFO depths and the rule that chose them; the model estimate."""
    from bitfab.hw.perf import lut_estimate, memory_bits

    g = acc.graph
    layers = []
    for spec, unit, lp in zip(g.layers, acc.units, acc.perf.layers, strict=True):
        a = spec.attrs
        layers.append(
            {
                "name": spec.name,
                "op_type": spec.op_type,
                "inserted": spec.inserted,
                "array": spec.array,
                "PE": a.get("PE"),
                "SIMD": a.get("SIMD"),
                "memory_bits": memory_bits(spec, unit),
                "cycles": lp.cycles,
                "finn_cycles": lp.finn_cycles,
                "cycles_per_fold": lp.per_fold,
                "luts": lut_estimate(spec, unit),
                "input": fmt_json(spec.fmt_in),
                "output": fmt_json(spec.fmt_out),
            }
        )
    fifos = [
        {
            "after": c.after,
            "depth": d,
            "width": c.width,
            "memory_bits": d * c.width,
            "luts": 10 + c.width if d else 0,
            "rule": c.rule if d == c.depth else "given explicitly",
        }
        for c, d in zip(acc.fifo_choices, acc.fifo_depths, strict=True)
    ]
    return {
        "version": 1,
        "top": TOP,
        "source": g.source,
        "arrays": sorted({ly.array for ly in g.layers if ly.array}),
        "input": fmt_json(g.input_fmt),
        "output": {**fmt_json(g.output_fmt), "meaning": g.output_meaning},
        "layers": layers,
        "fifos": fifos,
        "fifo_sizing": "analysis (bitfab.hw.fifo_sizing); checked in RTL simulation by "
        "'bitfab verify' (measured vs estimated cycles per image)",
        "performance": acc.perf.to_json(),
        "memory_bits": sum(ly["memory_bits"] for ly in layers)
        + sum(f["memory_bits"] for f in fifos),
        "luts": sum(ly["luts"] for ly in layers) + sum(f["luts"] for f in fifos),
    }


def compile_accelerator(
    dataflow,  # noqa: ANN001 - path to dataflow.onnx
    out_dir,  # noqa: ANN001
    array: str = "parallel",
    config=None,  # noqa: ANN001 - TOML path or None
    weight_stores: dict | None = None,
) -> dict:
    """``bitfab compile``: write ``out_dir/accelerator.v`` (one Verilog file, module
    ``accelerator``, memories initialised inside it), ``out_dir/accelerator.json`` and a copy
    of ``dataflow.onnx`` (the golden model of ``bitfab verify``). Returns the report."""
    import json
    import shutil
    from pathlib import Path

    from bitfab.hw.compiler import compile_graph, load_array_config
    from bitfab.hw.emit import verilog_text
    from bitfab.staging import staged_output

    per_layer: dict[str, str] = {}
    if config is not None:
        default, per_layer = load_array_config(config)
        if default is not None:
            array = default
    graph = compile_graph(dataflow, array, per_layer, weight_stores)
    acc = Accelerator(graph)
    report = accelerator_report(acc)
    report["per_layer_arrays"] = {ly.name: ly.array for ly in graph.layers if ly.array}
    report["weight_stores"] = {ly.name: ly.weight_store for ly in graph.layers if ly.array}
    text = verilog_text(acc, TOP)
    with staged_output(out_dir) as tmp:
        (tmp / "accelerator.v").write_text(text)
        if acc.loaded_units:
            from bitfab.hw import weight_image

            data = weight_image.image_bytes(acc)
            (tmp / WEIGHTS_FILE).write_bytes(data)
            report["weight_image"] = {
                "file": WEIGHTS_FILE,
                "bytes": len(data),
                "design_id": f"{weight_image.design_id(acc):08x}",
                "layout": [list(x) for x in weight_image.layout(acc)],
                "flash_offset": weight_image.FLASH_OFFSET,
            }
        shutil.copyfile(Path(dataflow), tmp / "dataflow.onnx")
        report["source"] = str(dataflow)
        (tmp / "accelerator.json").write_text(json.dumps(report, indent=2) + "\n")
    for stale in STALE_AFTER_COMPILE:  # results of the design this one replaces
        if not (stale == WEIGHTS_FILE and acc.loaded_units):
            (Path(out_dir) / stale).unlink(missing_ok=True)
    return report


#: files other commands write into an accelerator folder about the design in it (removed when
#: ``bitfab compile`` writes a new design there, so none describes another design)
STALE_AFTER_COMPILE = ("verify.json", "gate_level.json", "weights.bin")

#: the weight image of an accelerator with SPRAM weights (bitfab.hw.weight_image), beside
#: accelerator.v
WEIGHTS_FILE = "weights.bin"


def load_accelerator(out_dir) -> tuple[Accelerator, dict]:  # noqa: ANN001
    """Rebuild the Accelerator that ``bitfab compile`` wrote into ``out_dir`` (same layers,
    arrays and FIFO depths, from its ``dataflow.onnx`` copy and ``accelerator.json``)."""
    import json
    from pathlib import Path

    from bitfab.errors import BitfabError
    from bitfab.hw.compiler import compile_graph

    d = Path(out_dir)
    redo = "rerun 'bitfab compile DATAFLOW --out DIR'"
    if not d.is_dir():
        raise BitfabError(f"{d}: no such folder; pass the folder 'bitfab compile' wrote")
    meta = d / "accelerator.json"
    if not meta.is_file():
        raise BitfabError(f"{d}: accelerator.json missing, not a 'bitfab compile' output; {redo}")
    if not (d / "dataflow.onnx").is_file():
        raise BitfabError(
            f"{d}: dataflow.onnx missing (bitfab compile copies it beside accelerator.json); {redo}"
        )
    try:
        report = json.loads(meta.read_text())
    except (OSError, ValueError) as e:
        raise BitfabError(f"{meta}: not readable JSON ({e}); the file is corrupt, {redo}") from None
    fifos = report.get("fifos") if isinstance(report, dict) else None
    arrays = report.get("per_layer_arrays", {}) if isinstance(report, dict) else None
    if (
        not isinstance(fifos, list)
        or not all(isinstance(f, dict) and isinstance(f.get("depth"), int) for f in fifos)
        or not isinstance(arrays, dict)
    ):
        raise BitfabError(
            f"{meta}: no 'fifos' list with depths or no 'per_layer_arrays' table; the file is "
            f"corrupt or from another tool, {redo}"
        )
    default = next(iter(arrays.values()), "parallel")
    stores = report.get("weight_stores", {})
    if not isinstance(stores, dict):
        raise BitfabError(f"{meta}: 'weight_stores' is not a table; the file is corrupt, {redo}")
    graph = compile_graph(d / "dataflow.onnx", default, arrays, stores)
    try:
        acc = Accelerator(graph, [f["depth"] for f in fifos])
    except (ValueError, IndexError) as e:
        raise BitfabError(
            f"{meta}: does not describe {d / 'dataflow.onnx'} ({e}); {redo}"
        ) from None
    unused_ok(acc)  # a description of the Verilog on disk; maybe never elaborated
    return acc, report
