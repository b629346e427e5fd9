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
from bitfab.hw.fifo_sizing import fifo_depths as fifo_depths_for
from bitfab.hw.perf import model_perf
from bitfab.hw.stream_fifo import StreamFIFO


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
    ) -> None:
        self.graph = graph
        n = len(graph.layers)
        self.units = [spec.build(array_options) for spec in graph.layers]
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
        super().__init__(
            {
                "i": In(stream.Signature(unsigned(graph.input_fmt.width))),
                "o": Out(stream.Signature(unsigned(graph.output_fmt.width))),
            }
        )

    def elaborate(self, platform):
        m = Module()
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
