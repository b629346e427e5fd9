"""An accelerator with SPRAM weights behind the flash boot loader.

:class:`FlashBoot` wires :class:`~bitfab.hw.shell.flash_loader.FlashLoader` into the
accelerator's ``wload`` port and holds the accelerator's input until the loader reports
``OK``: the images of a board with a missing, foreign, corrupted or short weight image are
never computed (no output word leaves; ``status`` says why). Ports: ``i``/``o`` (the
accelerator's streams), ``status`` (the loader's :class:`~bitfab.hw.shell.flash_loader.Status`),
``ready`` (weights loaded and good), the SPI pins ``sck``/``cs_n``/``mosi``/``miso``.

``instance=True`` instantiates the accelerator as the Verilog module ``accelerator`` (the
``accelerator.v`` that ``bitfab compile`` wrote, so that file is what gets verified) instead of
elaborating it here. ``host_load`` adds ``hbytes`` (in stream) and ``hstart`` (in) for the host
link's load command: a ``hstart`` pulse restarts the checker on the host's bytes and refills
SPRAM from word 0. ``flash_model=True`` (simulation) puts the behavioural SPI flash of
:mod:`bitfab.sim.spi_flash` (module ``bitfab_spi_flash``) on the pins instead of ports.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Instance, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bitfab.hw import weight_image
from bitfab.hw.shell.flash_loader import FlashLoader, ImageChecker, Status


class FlashBoot(wiring.Component):
    """Accelerator ``acc`` (with SPRAM units) booted from SPI flash at ``offset``."""

    def __init__(
        self,
        acc,  # noqa: ANN001 - bitfab Accelerator
        offset: int = weight_image.FLASH_OFFSET,
        *,
        sck_div: int = 2,
        wake_cycles: int = 64,
        instance: bool = False,
        flash_model: bool = False,
        host_load: bool = True,
    ) -> None:
        if not acc.loaded_units:
            raise ValueError("FlashBoot: the accelerator has no SPRAM weights to load")
        self.acc, self.instance, self.flash_model = acc, instance, flash_model
        #: the accelerator's compiled graph (the host link reads its formats)
        self.graph = acc.graph
        self.offset = offset
        words = len(acc.weight_load_words())
        header = weight_image.header(acc)
        self.loader = FlashLoader(
            header, words, offset, sck_div=sck_div, wake_cycles=wake_cycles, own_checker=True
        )
        #: the one image checker, fed by the flash at boot or by the host link's load command
        self.checker = ImageChecker(header, words)
        #: bytes of the weight image (what a host-link load request carries)
        self.image_bytes = self.checker.image_bytes
        sig = acc.signature.members
        ports = {
            "i": In(stream.Signature(sig["i"].signature.members["payload"].shape)),
            "o": Out(stream.Signature(sig["o"].signature.members["payload"].shape)),
            "status": Out(3),
            "ready": Out(1),
        }
        if host_load:  # weight-image bytes from the host link (load command), its start pulse
            ports.update(hbytes=In(stream.Signature(unsigned(8))), hstart=In(1))
        if not flash_model:
            ports.update(sck=Out(1), cs_n=Out(1, init=1), mosi=Out(1), miso=In(1))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.loader = ld = self.loader
        m.submodules.checker = chk = self.checker
        m.d.comb += self.status.eq(chk.status)
        # the checker's bytes: the flash's at boot, the host's from a load request on
        host = Signal()
        hstart = self.hstart if "hstart" in self.signature.members else Signal()
        hbytes = (
            self.hbytes
            if "hbytes" in self.signature.members
            else stream.Signature(unsigned(8)).flip().create()
        )
        with m.If(hstart):
            m.d.sync += host.eq(1)
        m.d.comb += [
            chk.start.eq(Mux(host, 0, ld.start) | hstart),
            chk.i.payload.eq(Mux(host, hbytes.payload, ld.bytes_o.payload)),
            chk.i.valid.eq(Mux(host, hbytes.valid, ld.bytes_o.valid)),
            ld.bytes_o.ready.eq(~host & chk.i.ready),
            hbytes.ready.eq(host & chk.i.ready),
        ]
        if self.flash_model:
            # simulation: the behavioural flash of bitfab.sim.spi_flash, image from a plusarg
            m.submodules.flash = Instance(
                "bitfab_spi_flash",
                p_BASE=self.offset,
                i_sck=ld.sck,
                i_cs_n=ld.cs_n,
                i_mosi=ld.mosi,
                o_miso=ld.miso,
            )
        else:
            m.d.comb += [
                self.sck.eq(ld.sck),
                self.cs_n.eq(ld.cs_n),
                self.mosi.eq(ld.mosi),
                ld.miso.eq(self.miso),
            ]
        ok = Signal()
        m.d.comb += [ok.eq(chk.status == Status.OK), self.ready.eq(ok)]
        a = self._accelerator_ports(m)
        m.d.comb += [
            a["wload_payload"].eq(chk.o.payload),
            a["wload_valid"].eq(chk.o.valid),
            chk.o.ready.eq(a["wload_ready"]),
            a["reload"].eq(hstart),  # new weights fill SPRAM from word 0
            # the input waits until the weights are in and good
            a["i_payload"].eq(self.i.payload),
            a["i_valid"].eq(self.i.valid & ok),
            self.i.ready.eq(a["i_ready"] & ok),
            self.o.payload.eq(a["o_payload"]),
            self.o.valid.eq(a["o_valid"]),
            a["o_ready"].eq(self.o.ready),
        ]
        return m

    def _accelerator_ports(self, m: Module) -> dict:
        acc = self.acc
        if not self.instance:
            m.submodules.accelerator = acc
            return {
                "wload_payload": acc.wload.payload,
                "wload_valid": acc.wload.valid,
                "wload_ready": acc.wload.ready,
                "reload": acc.reload,
                "i_payload": acc.i.payload,
                "i_valid": acc.i.valid,
                "i_ready": acc.i.ready,
                "o_payload": acc.o.payload,
                "o_valid": acc.o.valid,
                "o_ready": acc.o.ready,
            }
        sig = acc.signature.members
        p = {
            "wload_payload": Signal(16),
            "wload_valid": Signal(),
            "wload_ready": Signal(),
            "reload": Signal(),
            "i_payload": Signal(sig["i"].signature.members["payload"].shape),
            "i_valid": Signal(),
            "i_ready": Signal(),
            "o_payload": Signal(sig["o"].signature.members["payload"].shape),
            "o_valid": Signal(),
            "o_ready": Signal(),
            "loaded": Signal(),
        }
        m.submodules.accelerator = Instance(
            "accelerator",
            i_clk=ClockSignal(),
            i_rst=ResetSignal(),
            i_wload__payload=p["wload_payload"],
            i_wload__valid=p["wload_valid"],
            o_wload__ready=p["wload_ready"],
            i_reload=p["reload"],
            o_loaded=p["loaded"],
            i_i__payload=p["i_payload"],
            i_i__valid=p["i_valid"],
            o_i__ready=p["i_ready"],
            o_o__payload=p["o_payload"],
            o_o__valid=p["o_valid"],
            i_o__ready=p["o_ready"],
        )
        return p
