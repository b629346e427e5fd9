"""A behavioural SPI NOR flash for RTL simulation of the boot loader.

``bitfab_spi_flash`` answers what :class:`bitfab.hw.shell.flash_loader.FlashLoader` sends, as
a W25Q-style flash does (iCEBreaker: W25Q128JV): ``0xAB`` (release from power-down; no reply
needed) and ``0x03`` (READ: 24-bit address, then one byte after another for as long as CS# is
low, MSB first), SPI mode 0 (MOSI sampled on the rising SCK edge, MISO changed on the falling
edge). Parameter ``BASE``: the flash address of the first byte of the loaded file; addresses
outside the file read ``0xFF`` (erased flash). The file: plusarg ``+bitfab_flash=PATH``, hex
bytes one per line (:func:`write_flash_file`); without it the flash is erased.
"""

from __future__ import annotations

from pathlib import Path

#: bytes the model holds from BASE on (1 MiB; a weight image must fit)
SIZE_LOG2 = 20

FLASH_MODEL = f"""
module bitfab_spi_flash #(parameter BASE = 0) (
  input wire sck, input wire cs_n, input wire mosi, output reg miso
);
  localparam SIZE = 1 << {SIZE_LOG2};
  reg [7:0] mem [0:SIZE-1];
  reg [8*512-1:0] path;
  integer k;
  initial begin
    for (k = 0; k < SIZE; k = k + 1) mem[k] = 8'hff;
    if ($value$plusargs("bitfab_flash=%s", path)) $readmemh(path, mem);
    miso = 1'b1;
  end
  reg [6:0] sh;       // bits of the byte being received
  reg [2:0] nbit;     // bits received of the current byte
  reg [31:0] nbyte;   // bytes received since CS# fell
  reg [7:0] cmd;
  reg [23:0] addr;
  wire [7:0] rx = {{sh, mosi}};
  always @(posedge sck or posedge cs_n) begin
    if (cs_n) begin
      nbit <= 3'd0;
      nbyte <= 32'd0;
    end else begin
      sh <= rx[6:0];
      nbit <= nbit + 3'd1;
      if (nbit == 3'd7) begin
        nbyte <= nbyte + 32'd1;
        if (nbyte == 32'd0) cmd <= rx;
        else if (nbyte <= 32'd3) addr <= {{addr[15:0], rx}};
      end
    end
  end
  // READ data: byte (nbyte - 4) after the address, bit 7 - nbit, set after each falling edge
  wire [31:0] at = {{8'd0, addr}} + nbyte - 32'd4 - BASE;
  wire [7:0] cur = (at < SIZE) ? mem[at[{SIZE_LOG2 - 1}:0]] : 8'hff;
  always @(negedge sck or posedge cs_n) begin
    if (cs_n) miso <= 1'b1;
    else if (cmd == 8'h03 && nbyte >= 32'd4) miso <= cur[3'd7 - nbit];
  end
endmodule
"""


def write_flash_file(image: bytes, path: str | Path) -> Path:
    """Write ``image`` as the model's ``$readmemh`` file (one hex byte per line)."""
    if len(image) > 1 << SIZE_LOG2:
        raise ValueError(f"image of {len(image)} bytes exceeds the model's {1 << SIZE_LOG2}")
    p = Path(path)
    p.write_text("\n".join(f"{b:02x}" for b in image) + "\n")
    return p
