"""Board top: an accelerator behind the UART host link, with a PLL and LEDs, for real boards.

:class:`BoardTop` is an Amaranth ``Elaboratable`` for an amaranth-boards platform (build it
with :func:`bitfab.fpga.bitstream.build_board_bitstream`). It requests the platform's ``"uart"``
resource (the FTDI serial port on iCEBreaker and ULX3S; on OrangeCrab, Fomu and TinyFPGA BX
the pins the catalogue adds, :attr:`bitfab.boards.Target.serial`) and its ``"led"`` resources, puts a
:class:`bitfab.hw.shell.host_link.HostLink` around the accelerator, and drives the design from:

- the board oscillator, when ``clock_mhz`` is ``None`` or equal to it (on ECP5 the board top
  makes its own ``sync`` domain from the oscillator pin with a power-on reset: the platform's
  default ``sync`` is reset-less, relying on GSR, and the PE arrays read ``ResetSignal()``);
- otherwise a PLL: iCE40 ``SB_PLL40_PAD`` where the oscillator sits on a PLL pad (iCEBreaker)
  or ``SB_PLL40_CORE`` from the clock net (other iCE40 boards), ECP5 ``EHXPLLL``; the divider
  settings are searched like ``icepll``/``ecppll`` do and the achieved frequency (which may
  differ slightly from the request) is in :attr:`BoardTop.clock_hz`. Reset is held until the
  PLL locks.

LEDs show the class of the last good reply in binary (LED ``k`` = bit ``k``, as many LEDs as
the platform has, up to 8; on iCEBreaker the catalogue's platform adds the break-off PMOD's five
LEDs to the two on the board, so LEDs 0-6 show classes up to 127; on OrangeCrab the RGB LED's
red, green and blue are LEDs 0-2). The UART divisor is computed from the achieved clock and ``baud``.
"""

from __future__ import annotations

from amaranth.hdl import (
    ClockDomain,
    ClockSignal,
    Const,
    Elaboratable,
    Instance,
    Module,
    Mux,
    Signal,
)
from amaranth.lib.cdc import ResetSynchronizer

from bitfab.boards import Target, get_target
from bitfab.boards.listing import CLASS_LEDS
from bitfab.errors import BitfabError
from bitfab.hw.shell.flash_boot import FlashBoot
from bitfab.hw.shell.flash_loader import Status
from bitfab.hw.shell.host_link import HostLink
from bitfab.hw.shell.uart import divisor_for
from bitfab.hw.weight_image import FLASH_OFFSET

#: iCE40 boards whose oscillator pin is a PLL pad (SB_PLL40_PAD); others use SB_PLL40_CORE.
ICE40_PLL_PAD_BOARDS = frozenset({"icebreaker"})
#: LEDs used at most for the class display
MAX_LEDS = CLASS_LEDS


def ice40_pll(f_in_mhz: float, f_out_mhz: float) -> dict:
    """iCE40 PLL settings (``FEEDBACK_PATH="SIMPLE"``) closest to ``f_out_mhz``, as icepll
    searches them: PFD 10-133 MHz, VCO 533-1066 MHz, ``f_out = f_in (DIVF+1) / ((DIVR+1)
    2^DIVQ)``. Returns ``{"DIVR", "DIVF", "DIVQ", "FILTER_RANGE", "f_out_mhz"}``."""
    best = None
    for divr in range(16):
        pfd = f_in_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                out = vco / 2**divq
                if best is None or abs(out - f_out_mhz) < abs(best[0] - f_out_mhz):
                    best = (out, divr, divf, divq, pfd)
    if best is None:
        raise BitfabError(f"no iCE40 PLL setting from {f_in_mhz} MHz; pick another clock")
    out, divr, divf, divq, pfd = best
    filt = next(i for i, lim in enumerate((17, 26, 44, 66, 101, 1e9), start=1) if pfd < lim)
    return {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filt, "f_out_mhz": out}


def ecp5_pll(f_in_mhz: float, f_out_mhz: float) -> dict:
    """ECP5 ``EHXPLLL`` settings (feedback from CLKOP) closest to ``f_out_mhz``, as ecppll
    searches them: PFD 3.125-400 MHz, VCO 400-800 MHz, ``f_out = f_in CLKFB_DIV / CLKI_DIV``,
    ``f_vco = f_out CLKOP_DIV``. Returns ``{"CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "f_out_mhz"}``."""
    best = None
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if not 3.125 <= pfd <= 400:
            continue
        for clkfb in range(1, 81):
            out = pfd * clkfb
            if not 3.125 <= out <= 400:
                continue
            for clkop in range(1, 129):
                vco = out * clkop
                if 400 <= vco <= 800:
                    if best is None or abs(out - f_out_mhz) < abs(best[0] - f_out_mhz):
                        best = (out, clki, clkfb, clkop)
                    break
    if best is None:
        raise BitfabError(f"no ECP5 PLL setting from {f_in_mhz} MHz; pick another clock")
    out, clki, clkfb, clkop = best
    return {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop, "f_out_mhz": out}


class BoardTop(Elaboratable):
    """``accelerator`` behind a UART host link on ``target`` (a catalogue name or Target).

    ``clock_mhz``: the design clock (default: the board oscillator); ``baud``: UART rate;
    ``timeout_ms``: host link inter-byte timeout. Attributes: ``clock_hz`` (achieved),
    ``pll`` (settings dict or ``None``), ``divisor``, ``note`` (one line: how the clock is made).
    """

    def __init__(
        self,
        accelerator,
        target: str | Target,
        *,
        clock_mhz: float | None = None,
        baud: int = 115200,
        timeout_ms: float = 20.0,
        flash_offset: int = FLASH_OFFSET,
    ) -> None:
        """``flash_offset``: byte address of the weight image in the board's SPI flash (an
        accelerator with SPRAM weights boots from it, :mod:`bitfab.hw.shell.flash_loader`)."""
        self.target = get_target(target)
        if not self.target.is_board:
            raise BitfabError(
                f"target {self.target.name!r} is a bare device: the board top needs a board "
                "with a UART (e.g. icebreaker)"
            )
        osc = float(self.target.default_clock_mhz)
        self.pll = None
        if clock_mhz is None or abs(float(clock_mhz) - osc) < 1e-6:
            f = osc
            self.note = f"clock: the {osc:g} MHz oscillator"
        elif self.target.family == "ice40":
            self.pll = ice40_pll(osc, float(clock_mhz))
            self.pll["primitive"] = (
                "SB_PLL40_PAD" if self.target.name in ICE40_PLL_PAD_BOARDS else "SB_PLL40_CORE"
            )
            f = self.pll["f_out_mhz"]
        elif self.target.family == "ecp5":
            self.pll = ecp5_pll(osc, float(clock_mhz))
            self.pll["primitive"] = "EHXPLLL"
            f = self.pll["f_out_mhz"]
        else:  # pragma: no cover - every catalogue family has a PLL
            f = osc
            self.note = f"clock: no PLL on {self.target.family}; the {osc:g} MHz oscillator"
        if self.pll is not None:
            self.note = (
                f"clock: {self.pll['primitive']} {osc:g} -> {f:.4g} MHz "
                f"(requested {float(clock_mhz):g} MHz)"
            )
        self.clock_hz = f * 1e6
        self.baud = int(baud)
        self.divisor = divisor_for(self.clock_hz, self.baud)
        #: the boot loader around an accelerator with SPRAM weights (None without)
        self.boot = None
        self.flash_offset = int(flash_offset)
        if getattr(accelerator, "loaded_units", None):
            if self.target.spram_blocks == 0:
                raise BitfabError(
                    f"board {self.target.name}: the accelerator keeps weights in SPRAM, which "
                    f"{self.target.device} does not have; recompile it without a memory plan"
                )
            self.boot = FlashBoot(accelerator, self.flash_offset)
        self.link = HostLink(
            self.boot if self.boot is not None else accelerator,
            divisor=self.divisor,
            timeout=max(640 * self.divisor, int(self.clock_hz * timeout_ms / 1000)),
        )

    def _clock(self, m: Module, platform) -> None:
        osc_name = platform.default_clk
        if self.pll is None and self.target.family == "ecp5":
            # Amaranth's ECP5 platform would make a reset-less "sync" (GSR resets the flops),
            # which the PE arrays' ResetSignal() (bitfab/hw/arrays/common.py) refuses: make "sync", from
            # the oscillator pin, with a two-flop power-on reset (its flops start set).
            m.domains.sync = ClockDomain("sync")
            m.d.comb += ClockSignal("sync").eq(platform.request(osc_name, dir="i").i)
            m.submodules.rst_sync = ResetSynchronizer(Const(0), domain="sync")
            return
        if self.pll is None:
            return  # the platform makes "sync" (with a reset) from its default clock
        p = self.pll
        m.domains.sync = ClockDomain("sync")
        lock = Signal()
        clk = Signal()
        if p["primitive"] == "EHXPLLL":
            osc = platform.request(osc_name, dir="i").i
            m.submodules.pll = Instance(
                "EHXPLLL",
                p_PLLRST_ENA="DISABLED",
                p_INTFB_WAKE="DISABLED",
                p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED",
                p_OUTDIVIDER_MUXA="DIVA",
                p_CLKOP_ENABLE="ENABLED",
                p_CLKOP_DIV=p["CLKOP_DIV"],
                p_CLKOP_CPHASE=p["CLKOP_DIV"] - 1,
                p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="CLKOP",
                p_CLKFB_DIV=p["CLKFB_DIV"],
                p_CLKI_DIV=p["CLKI_DIV"],
                i_CLKI=osc,
                i_CLKFB=clk,
                i_RST=0,
                i_STDBY=0,
                i_PHASESEL0=0,
                i_PHASESEL1=0,
                i_PHASEDIR=1,
                i_PHASESTEP=1,
                i_PHASELOADREG=1,
                i_PLLWAKESYNC=0,
                i_ENCLKOP=0,
                o_CLKOP=clk,
                o_LOCK=lock,
            )
        else:
            common = dict(
                p_FEEDBACK_PATH="SIMPLE",
                p_DIVR=p["DIVR"],
                p_DIVF=p["DIVF"],
                p_DIVQ=p["DIVQ"],
                p_FILTER_RANGE=p["FILTER_RANGE"],
                i_RESETB=1,
                i_BYPASS=0,
                o_PLLOUTGLOBAL=clk,
                o_LOCK=lock,
            )
            if p["primitive"] == "SB_PLL40_PAD":
                pad = platform.request(osc_name, dir="-")
                m.submodules.pll = Instance("SB_PLL40_PAD", i_PACKAGEPIN=pad.io, **common)
            else:
                osc = platform.request(osc_name, dir="i").i
                m.submodules.pll = Instance("SB_PLL40_CORE", i_REFERENCECLK=osc, **common)
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.rst_sync = ResetSynchronizer(~lock, domain="sync")
        platform.add_clock_constraint(clk, self.clock_hz)

    def elaborate(self, platform):
        m = Module()
        if platform is None:
            raise BitfabError("BoardTop needs an amaranth-boards platform (build it for a board)")
        self._clock(m, platform)
        try:
            uart = platform.request("uart", 0)
        except Exception:  # amaranth.build.ResourceError
            raise BitfabError(
                f"board {self.target.name}: its platform has no 'uart' resource; build with "
                "the catalogue's platform (bitfab.boards.get_target(name).platform_class())"
            ) from None
        m.submodules.link = link = self.link
        m.d.comb += [link.rx.eq(uart.rx.i), uart.tx.o.eq(link.tx)]
        leds = []
        for k in range(MAX_LEDS):
            try:
                leds.append(platform.request("led", k))
            except Exception:  # no more LEDs
                break
        shown = link.last_class
        if self.boot is not None:
            # weights from the SPI configuration flash (the board's own flash resource)
            flash = platform.request("spi_flash_1x", 0)
            b = self.boot
            m.d.comb += [
                flash.cs.o.eq(~b.cs_n),  # PinsN: cs.o = 1 selects the flash
                flash.clk.o.eq(b.sck),
                flash.copi.o.eq(b.mosi),
                b.miso.eq(flash.cipo.i),
            ]
            if hasattr(flash, "wp"):
                m.d.comb += [flash.wp.o.eq(0), flash.hold.o.eq(0)]  # PinsN: released
            # a refused weight image: the LEDs show the loader's status code until reset
            err = (b.status != Status.BUSY) & (b.status != Status.OK)
            shown = Mux(err, b.status, link.last_class)
        for k, led in enumerate(leds):
            m.d.comb += led.o.eq(shown[k])
        return m
