"""A weight memory in iCE40 UP5K SPRAM, filled at run time through a load stream.

The UP5K's four SB_SPRAM256KA blocks (16 bits x 16,384 words each, single-ported) hold
eight times the bits of its 30 block RAMs, but the bitstream cannot initialise them: their
content comes from a loader (:mod:`bitfab.hw.shell.flash_loader` at power-up, or the host
link's load command). :class:`SPRAMStore` is one layer's weight memory of ``width`` bits x
``depth`` words as a grid of ``ceil(width/16)`` columns x ``ceil(depth/16384)`` rows of
SPRAMs.

Load order (the weight image, :mod:`bitfab.hw.weight_image`): for word address ``a`` in
``0..depth-1``, for column ``c`` in ``0..columns-1``, one 16-bit load word = bits
``16c .. 16c+15`` of word ``a``. After the last word ``loaded`` rises and stays high until
``reload`` is pulsed (a new image follows).

Read port: ``raddr`` at a clock edge gives ``rdata`` after it (one cycle of latency, like a
read port of :class:`amaranth.lib.memory.Memory`); reads are meaningful once ``loaded`` is high.

``model="ice40"`` instantiates ``SB_SPRAM256KA`` (for synthesis, and for simulation with
Yosys's own cell model, :func:`bitfab.sim.cell_models.spram_model_verilog`); ``model="behavioural"`` uses an Amaranth
memory with the same single-port timing (for the Amaranth simulator).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

#: SB_SPRAM256KA geometry: data bits per word, words per block
SPRAM_WIDTH = 16
SPRAM_DEPTH = 16384
MODELS = ("ice40", "behavioural")


def spram_grid(width: int, depth: int, block_depth: int = SPRAM_DEPTH) -> tuple[int, int]:
    """(columns, rows) of SPRAM blocks for a ``width``-bit x ``depth``-word memory."""
    return -(-width // SPRAM_WIDTH), -(-depth // block_depth)


def spram_blocks(width: int, depth: int) -> int:
    """SPRAM blocks a ``width`` x ``depth`` memory needs."""
    cols, rows = spram_grid(width, depth)
    return cols * rows


def load_words(words: list[int], width: int) -> list[int]:
    """The 16-bit load words of memory content ``words`` (``width`` bits each), in load order."""
    cols, _ = spram_grid(width, len(words))
    mask = (1 << SPRAM_WIDTH) - 1
    return [(w >> (SPRAM_WIDTH * c)) & mask for w in words for c in range(cols)]


class SPRAMStore(wiring.Component):
    """``width``-bit x ``depth``-word memory in SPRAM, loaded through ``wload``.

    Ports: ``wload`` (in, 16-bit load words), ``loaded`` (out), ``reload`` (in, a one-cycle
    pulse restarts loading), ``raddr`` (in, ``range(depth)``), ``rdata`` (out, ``width`` bits).
    """

    def __init__(
        self, width: int, depth: int, model: str = "ice40", block_depth: int = SPRAM_DEPTH
    ) -> None:
        """``block_depth``: words per block; smaller than 16,384 only with the behavioural
        model (tests of the row logic at a small size)."""
        if width < 1 or depth < 1:
            raise ValueError(f"SPRAMStore: width and depth must be >= 1, got {width} x {depth}")
        if model not in MODELS:
            raise ValueError(f"SPRAMStore: model must be one of {MODELS}, got {model!r}")
        if block_depth != SPRAM_DEPTH and model != "behavioural":
            raise ValueError("SPRAMStore: block_depth other than 16384 needs the behavioural model")
        self.width, self.depth, self.model = width, depth, model
        self.block_depth = block_depth
        self.cols, self.rows = spram_grid(width, depth, block_depth)
        super().__init__(
            {
                "wload": In(stream.Signature(unsigned(SPRAM_WIDTH))),
                "loaded": Out(1),
                "reload": In(1),
                "raddr": In(range(max(2, depth))),
                "rdata": Out(width),
            }
        )

    @property
    def blocks(self) -> int:
        return self.cols * self.rows

    def _block(self, m: Module, name: str, addr, din, we):  # noqa: ANN001, ANN202
        dout = Signal(SPRAM_WIDTH, name=f"{name}_dout")
        if self.model == "ice40":
            m.submodules[name] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=addr,
                i_DATAIN=din,
                i_MASKWREN=Const(0b1111, 4),
                i_WREN=we,
                i_CHIPSELECT=Const(1, 1),
                i_CLOCK=ClockSignal("sync"),
                i_STANDBY=Const(0, 1),
                i_SLEEP=Const(0, 1),
                i_POWEROFF=Const(1, 1),
                o_DATAOUT=dout,
            )
        else:
            mem = Memory(shape=unsigned(SPRAM_WIDTH), depth=self.block_depth, init=[])
            m.submodules[name] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                wp.addr.eq(addr),
                wp.data.eq(din),
                wp.en.eq(we),
                rp.addr.eq(addr),
                rp.en.eq(~we),  # SPRAM: DATAOUT holds while a word is written
                dout.eq(rp.data),
            ]
        return dout

    def elaborate(self, platform):
        m = Module()
        cols, rows = self.cols, self.rows
        # load address: word a, column c
        la = Signal(range(max(2, self.depth)))
        lc = Signal(range(max(2, cols)))
        loaded = Signal()
        m.d.comb += [self.loaded.eq(loaded), self.wload.ready.eq(~loaded)]
        take = self.wload.valid & ~loaded
        with m.If(self.reload):
            m.d.sync += [la.eq(0), lc.eq(0), loaded.eq(0)]
        with m.Elif(take):
            with m.If(lc == cols - 1):
                m.d.sync += lc.eq(0)
                with m.If(la == self.depth - 1):
                    m.d.sync += [la.eq(0), loaded.eq(1)]
                with m.Else():
                    m.d.sync += la.eq(la + 1)
            with m.Else():
                m.d.sync += lc.eq(lc + 1)

        addr = Mux(loaded, self.raddr, la)
        bd = self.block_depth
        low = Signal(range(max(2, bd)))
        m.d.comb += low.eq(addr if rows == 1 else addr % bd)
        row = Signal(range(max(2, rows)))
        if rows > 1:
            m.d.comb += row.eq(addr // bd)
        row_q = Signal.like(row)  # the row of the word on rdata
        m.d.sync += row_q.eq(row)
        outs = []
        for r in range(rows):
            col_out = []
            for c in range(cols):
                we = take & (lc == c) & (row == r) if rows > 1 else take & (lc == c)
                col_out.append(self._block(m, f"spram_r{r}c{c}", low, self.wload.payload, we))
            outs.append(Cat(*col_out))
        data = outs[0]
        for r in range(1, rows):
            data = Mux(row_q == r, outs[r], data)
        m.d.comb += self.rdata.eq(data[: self.width])
        return m
