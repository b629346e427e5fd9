"""Free-running stream harness in Verilog: stimulus and checking inside the simulator.

For long runs (whole accelerators on thousands of images) Python per word is the bottleneck.
:func:`harness_verilog` wraps a design's top module in a SystemVerilog testbench module
``bitfab_tb`` that, per input stream, plays words from a memory loaded with ``$readmemh`` and,
per output stream, compares every received word with an expected-words memory, recording the
first mismatch. Random valid gaps and ready stalls come from per-stream xorshift generators
(probabilities and seeds are run-time plusargs). Python (``bitfab.sim.cocotb_fast_tb``) only
starts the clock, applies setup constants and reset, and waits for ``done``.

Timing matches :func:`bitfab.sim.cocotb_streams.run_streams`: valid/ready are combinational
from registered state, so without gaps and stalls both count the same clock cycles.

Plusargs (all per stream ``<s>``, the stream's attribute name): ``+bitfab_file_<s>=PATH`` (hex
words, one per line), ``+bitfab_n_<s>=N`` (word count), ``+bitfab_thr_<s>=T`` (gap/stall
threshold: probability * 65536), ``+bitfab_seed_<s>=S`` (nonzero 32-bit).
"""

from __future__ import annotations

from bitfab.sim.verilog import PortMap, StreamPort

TB_TOP = "bitfab_tb"


def _check(sp: StreamPort) -> None:
    if sp.payload is None or sp.valid is None or sp.ready is None:
        raise ValueError(
            f"stream {sp.attr!r}: the free-running harness needs a flat payload and both "
            "valid and ready; use the cocotb stream drivers for this design"
        )


def _rng(name: str) -> str:
    return f"""
  reg [31:0] rng_{name};
  reg [31:0] seed_{name};
  reg [31:0] thr_{name};
  wire ok_{name} = rng_{name}[15:0] >= thr_{name}[16:0];
  always @(posedge clk) begin
    if (rst) rng_{name} <= seed_{name};
    else begin : step_{name}
      reg [31:0] x;
      x = rng_{name};
      x = x ^ (x << 13);
      x = x ^ (x >> 17);
      x = x ^ (x << 5);
      rng_{name} <= x;
    end
  end"""


def harness_verilog(ports: PortMap, depths: dict[str, int], dut_top: str = "top") -> str:
    """SystemVerilog text of module ``bitfab_tb`` around ``dut_top``.

    ``depths`` gives each stream's memory depth in words (build-time; the word counts are
    run-time plusargs and must not exceed it). Ports of ``bitfab_tb``: ``clk``, ``rst`` and
    the design's plain inputs (same names); status: ``done``, ``cycles`` (edges since reset
    released), per output stream ``err_<s>``, ``err_idx_<s>``, ``err_got_<s>``, ``count_<s>``,
    ``last_<s>`` (cycle of its last transfer), ``nerr_<s>`` (mismatching words), per input stream
    ``sent_<s>``.
    """
    if ports.clk is None:
        raise ValueError("the design has no clock (no sync domain)")
    ins = [sp for sp in ports.streams.values() if sp.direction == "in"]
    outs = [sp for sp in ports.streams.values() if sp.direction == "out"]
    for sp in ins + outs:
        _check(sp)
    plain_in = [p for p in ports.plain.values() if p.direction == "in"]
    io = ["input wire clk", "input wire rst"]
    io += [f"input wire [{p.width - 1}:0] {p.name}" for p in plain_in]
    io += ["output wire done", "output reg [31:0] cycles"]
    body: list[str] = []
    conns = [f".{ports.clk}(clk)"]
    if ports.rst is not None:
        conns.append(f".{ports.rst}(rst)")
    conns += [f".{p.name}({p.name})" for p in plain_in]
    conns += [f".{p.name}()" for p in ports.plain.values() if p.direction == "out"]
    done_terms = []
    for sp in ins:
        s, w, d = sp.attr, sp.width, depths[sp.attr]
        io.append(f"output reg [31:0] sent_{s}")
        body.append(f"""
  // ---- source {s}: {w}-bit words from mem_{s}
  reg [{w - 1}:0] mem_{s} [0:{d - 1}];
  reg [31:0] n_{s};
  reg hold_{s};
  wire rdy_{s};
  wire v_{s} = !rst && (sent_{s} < n_{s}) && (hold_{s} || ok_{s});
  wire [{w - 1}:0] pay_{s} = mem_{s}[sent_{s}[{max(1, (d - 1).bit_length()) - 1}:0]];
  always @(posedge clk) begin
    if (rst) begin sent_{s} <= 0; hold_{s} <= 0; end
    else if (v_{s} && rdy_{s}) begin sent_{s} <= sent_{s} + 1; hold_{s} <= 0; end
    else if (v_{s}) hold_{s} <= 1;
  end{_rng(s)}""")
        conns += [f".{sp.payload}(pay_{s})", f".{sp.valid}(v_{s})", f".{sp.ready}(rdy_{s})"]
    for sp in outs:
        s, w, d = sp.attr, sp.width, depths[sp.attr]
        io += [
            f"output reg [31:0] count_{s}",
            f"output reg err_{s}",
            f"output reg [31:0] err_idx_{s}",
            f"output reg [31:0] nerr_{s}",
            f"output reg [{w - 1}:0] err_got_{s}",
            f"output reg [31:0] last_{s}",
        ]
        body.append(f"""
  // ---- sink {s}: {w}-bit words checked against exp_{s}
  reg [{w - 1}:0] exp_{s} [0:{d - 1}];
  reg [31:0] n_{s};
  wire [{w - 1}:0] pay_{s};
  wire v_{s};
  wire rdy_{s} = !rst && (count_{s} < n_{s}) && ok_{s};
  always @(posedge clk) begin
    if (rst) begin
      count_{s} <= 0; err_{s} <= 0; err_idx_{s} <= 0; err_got_{s} <= 0; last_{s} <= 0; nerr_{s} <= 0;
    end else if (v_{s} && rdy_{s}) begin
      if (pay_{s} != exp_{s}[count_{s}[{max(1, (d - 1).bit_length()) - 1}:0]]) begin
        nerr_{s} <= nerr_{s} + 1;
        if (!err_{s}) begin err_{s} <= 1; err_idx_{s} <= count_{s}; err_got_{s} <= pay_{s}; end
      end
      count_{s} <= count_{s} + 1;
      last_{s} <= cycles + 1;
    end
  end{_rng(s)}""")
        conns += [f".{sp.payload}(pay_{s})", f".{sp.valid}(v_{s})", f".{sp.ready}(rdy_{s})"]
        done_terms.append(f"(count_{s} >= n_{s})")
    init = []
    for sp in ins + outs:
        s = sp.attr
        mem = f"mem_{s}" if sp.direction == "in" else f"exp_{s}"
        init.append(f"""
    n_{s} = 0; seed_{s} = 32'h1234567; thr_{s} = 0;
    if ($value$plusargs("bitfab_n_{s}=%d", n_{s})) begin end
    if ($value$plusargs("bitfab_seed_{s}=%d", seed_{s})) begin end
    if ($value$plusargs("bitfab_thr_{s}=%d", thr_{s})) begin end
    if (seed_{s} == 0) seed_{s} = 32'h1234567;
    if ($value$plusargs("bitfab_file_{s}=%s", fname)) $readmemh(fname, {mem});""")
    return f"""
// bitfab free-running stream harness around {dut_top} (generated by bitfab.sim.fast_harness)
module {TB_TOP}(
  {("," + chr(10) + "  ").join(io)}
);
  assign done = !rst && {" && ".join(done_terms) or "1'b1"};
  always @(posedge clk) begin
    if (rst) cycles <= 0;
    else cycles <= cycles + 1;
  end
{"".join(body)}

  {dut_top} dut(
    {("," + chr(10) + "    ").join(conns)}
  );

  string fname;
  initial begin{"".join(init)}
  end
endmodule
"""
