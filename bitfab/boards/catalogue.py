"""Catalogue of the FPGA boards and bare devices bitfab targets (iCE40 and ECP5, open toolchains).

Every entry is a :class:`Target`: the device facts the flows need (logic, memories, DSPs, user
I/O), the nextpnr command-line flags that select the device and package, and, for real boards,
the default clock and the amaranth-boards platform class. Bare devices (``"up5k"``,
``"ecp5-25f"``...) have no platform: they are for out-of-context runs, where only the die matters.

Device facts: Lattice data sheets (iCE40 UltraPlus DS1056, iCE40 LP/HX DS1040, ECP5 DS1044), as
collected in ``shared/ANCHORS.md``; I/O counts are the package's user I/O as nextpnr sees them.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field

from bitfab.errors import BitfabError

FAMILIES = ("ice40", "ecp5")


@dataclass(frozen=True)
class SerialLink:
    """The two UART pins of a board's host link (the board top's ``"uart"`` resource).

    Attributes:
        rx: the FPGA's receive pin (the host's TX goes here), as the board labels it: a
            package ball (``"M1"``) or, with ``conn``, a connector pin (``"0"``).
        tx: the FPGA's transmit pin (to the host's RX), same naming as ``rx``.
        conn: ``(connector, number)`` of amaranth-boards' platform that ``rx``/``tx`` are on,
            or ``None`` for package balls.
        added: ``True`` if amaranth-boards' platform has no ``"uart"`` and bitfab adds one on
            these pins (3.3 V LVCMOS, pull-up on ``rx``); ``False``: the platform's own port.
        where: one line for the user: what to plug in, and where.
    """

    rx: str
    tx: str
    conn: tuple[str, int] | None
    added: bool
    where: str


@dataclass(frozen=True)
class Target:
    """One FPGA target: a board (with an amaranth-boards platform) or a bare device.

    Attributes:
        name: catalogue key, lower case (``"icebreaker"``, ``"ulx3s-85f"``, ``"up5k"``).
        family: ``"ice40"`` or ``"ecp5"`` (selects ``synth_ice40``/``synth_ecp5`` and nextpnr).
        device: Lattice part name as amaranth-boards spells it (``"iCE40UP5K"``, ``"LFE5U-25F"``).
        package: package as nextpnr spells it (``"sg48"``, ``"CABGA381"``).
        nextpnr_flags: device/package flags for nextpnr (``("--up5k", "--package", "sg48")``).
        luts: 4-input LUTs (iCE40 logic cells; ECP5 LUT4s = 2 per slice).
        ffs: flip-flops (one per LUT on both families).
        bram_blocks: block RAMs (iCE40 EBR ``SB_RAM40_4K``; ECP5 ``DP16KD``).
        bram_bits: bits per block RAM (4096 on iCE40, 18432 on ECP5).
        dsps: hard multipliers (iCE40 ``SB_MAC16``; ECP5 ``MULT18X18D``).
        spram_blocks: iCE40 UltraPlus single-port RAMs (256 kbit each); 0 elsewhere.
        spram_bits: bits per SPRAM block.
        io: user I/O pins of the package.
        default_clock_mhz: the board's oscillator in MHz (for bare devices: a sane P&R target).
        platform: ``"module:Class"`` of the amaranth-boards platform, or ``None`` for a bare device.
        description: one line for listings.
        serial: the host link's UART pins (boards only; see :class:`SerialLink`).
        added_leds: package balls of LEDs bitfab adds as ``"led"`` resources (active low),
            numbered after the platform's own (OrangeCrab: its RGB LED's red, green, blue).
        platform_extras: attributes of the platform class holding resource lists bitfab adds
            (iCEBreaker: ``"break_off_pmod"``, the break-off PMOD's five LEDs and buttons).
        programmer: how the board is flashed, as its amaranth-boards platform's
            ``toolchain_program`` does it: ``(environment variable naming the tool, default
            tool, arguments)`` with ``{bitstream}`` in the arguments (boards only).
    """

    name: str
    family: str
    device: str
    package: str
    nextpnr_flags: tuple[str, ...]
    luts: int
    ffs: int
    bram_blocks: int
    bram_bits: int
    dsps: int
    spram_blocks: int
    spram_bits: int
    io: int
    default_clock_mhz: float
    platform: str | None
    description: str
    serial: SerialLink | None = None
    added_leds: tuple[str, ...] = field(default=())
    platform_extras: tuple[str, ...] = field(default=())
    programmer: tuple[str, str, tuple[str, ...]] | None = None

    def program_command(self, bitstream: str | os.PathLike[str]) -> list[str]:
        """The command that flashes ``bitstream`` onto this board (the tool from its environment
        variable, e.g. ``$ICEPROG``, else the default), or BitfabError for a bare device."""
        if self.programmer is None:
            raise BitfabError(f"target {self.name!r} has no programmer (a bare device)")
        env, tool, args = self.programmer
        return [os.environ.get(env) or tool, *(a.format(bitstream=bitstream) for a in args)]

    @property
    def is_board(self) -> bool:
        """True for a real board (has an amaranth-boards platform)."""
        return self.platform is not None

    @property
    def bram_total_bits(self) -> int:
        """All block RAM of the device in bits."""
        return self.bram_blocks * self.bram_bits

    def platform_class(self) -> type:
        """The amaranth-boards platform class (boards only), with bitfab's additions: the
        ``"uart"`` resource on :attr:`serial`'s pins when the platform has none, the
        :attr:`added_leds` and the :attr:`platform_extras` (a subclass; the amaranth-boards
        class itself when nothing is added)."""
        if self.platform is None:
            raise BitfabError(
                f"target {self.name!r} is a bare device without a board platform; "
                f"pick a board ({', '.join(BOARDS)}) to build a bitstream for real pins"
            )
        return _platform_class(self)


@functools.cache
def _platform_class(target: Target) -> type:
    from amaranth.build import Attrs
    from amaranth_boards.resources import LEDResources, UARTResource

    module, _, name = target.platform.partition(":")
    base = getattr(importlib.import_module(module), name)
    io = {"IO_STANDARD": "SB_LVCMOS"} if target.family == "ice40" else {"IO_TYPE": "LVCMOS33"}
    pull = {"PULLUP": 1} if target.family == "ice40" else {"PULLMODE": "UP"}
    extra = [r for attr in target.platform_extras for r in getattr(base, attr)]
    if target.serial is not None and target.serial.added:
        s = target.serial
        extra.append(UARTResource(0, rx=s.rx, tx=s.tx, conn=s.conn, attrs=Attrs(**io, **pull)))
    if target.added_leds:
        first = sum(1 for r in base.resources if r.name == "led")
        pins = {first + k: pin for k, pin in enumerate(target.added_leds)}
        extra.extend(LEDResources(pins=pins, invert=True, attrs=Attrs(**io)))
    if not extra:
        return base
    attrs = {"resources": [*base.resources, *extra], "__module__": __name__}
    return type(base.__name__, (base,), attrs)


def _ice40(
    name, device, package, flag, *, luts, bram, dsps, spram, io, clock, platform, desc, **extra
):
    return Target(
        name=name,
        family="ice40",
        device=device,
        package=package,
        nextpnr_flags=(flag, "--package", package),
        luts=luts,
        ffs=luts,
        bram_blocks=bram,
        bram_bits=4096,
        dsps=dsps,
        spram_blocks=spram,
        spram_bits=256 * 1024,
        io=io,
        default_clock_mhz=clock,
        platform=platform,
        description=desc,
        **extra,
    )


def _ecp5(name, size, package, *, speed, io, clock, platform, desc, **extra):
    luts, bram, dsps = {25: (24288, 56, 28), 45: (43848, 108, 72), 85: (83640, 208, 156)}[size]
    return Target(
        name=name,
        family="ecp5",
        device=f"LFE5U-{size}F",
        package=package,
        nextpnr_flags=(f"--{size}k", "--package", package, "--speed", str(speed)),
        luts=luts,
        ffs=luts,
        bram_blocks=bram,
        bram_bits=18432,
        dsps=dsps,
        spram_blocks=0,
        spram_bits=0,
        io=io,
        default_clock_mhz=clock,
        platform=platform,
        description=desc,
        **extra,
    )


_UP5K = dict(luts=5280, bram=30, dsps=8, spram=4)
_8K = dict(luts=7680, bram=32, dsps=0, spram=0)

#: Feather header pins 0/1 (Adafruit Feather's RX/TX positions).
_ORANGECRAB_SERIAL = SerialLink(
    "0",
    "1",
    ("io", 0),
    True,
    "3.3 V USB-serial adapter: TX to pin 0, RX to pin 1, GND",
)

#: Programmers as each amaranth-boards platform's ``toolchain_program`` runs them (checked against
#: it in tests/boards/test_program.py): (environment variable, default tool, arguments).
_ICEPROG = ("ICEPROG", "iceprog", ("{bitstream}",))
_FOMU_DFU = ("DFU_UTIL", "dfu-util", ("-D", "{bitstream}"))
_TINYPROG = ("TINYPROG", "tinyprog", ("-p", "{bitstream}"))
_ULX3S_LOADER = ("OPENFPGALOADER", "openFPGALoader", ("-b", "ulx3s", "-m", "{bitstream}"))
_ORANGECRAB_DFU = ("DFU_UTIL", "dfu-util", ("-a 0", "-D", "{bitstream}"))

#: Real boards, keyed by name.
BOARDS: dict[str, Target] = {
    t.name: t
    for t in (
        _ice40(
            "icebreaker",
            "iCE40UP5K",
            "sg48",
            "--up5k",
            **_UP5K,
            io=39,
            clock=12.0,
            platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
            programmer=_ICEPROG,
            desc="1BitSquared iCEBreaker, iCE40 UP5K",
            serial=SerialLink("6", "9", None, False, "on-board FTDI FT2232H, 2nd channel (USB)"),
            platform_extras=("break_off_pmod",),
        ),
        _ice40(
            "fomu",
            "iCE40UP5K",
            "uwg30",
            "--up5k",
            **_UP5K,
            io=21,
            clock=48.0,
            platform="amaranth_boards.fomu_pvt:FomuPVTPlatform",
            programmer=_FOMU_DFU,
            desc="Fomu PVT (USB stick), iCE40 UP5K",
            serial=SerialLink(
                "E4",
                "D5",
                None,
                True,
                "3.3 V USB-serial adapter: TX to pad 1, RX to pad 2, GND",
            ),
        ),
        _ice40(
            "tinyfpga-bx",
            "iCE40LP8K",
            "cm81",
            "--lp8k",
            **_8K,
            io=63,
            clock=16.0,
            platform="amaranth_boards.tinyfpga_bx:TinyFPGABXPlatform",
            programmer=_TINYPROG,
            desc="TinyFPGA BX, iCE40 LP8K (no DSP, no SPRAM)",
            serial=SerialLink(
                "1",
                "2",
                ("gpio", 0),
                True,
                "3.3 V USB-serial adapter: TX to pin 1, RX to pin 2, GND",
            ),
        ),
        _ecp5(
            "ulx3s-25f",
            25,
            "CABGA381",
            speed=6,
            io=197,
            clock=25.0,
            platform="amaranth_boards.ulx3s:ULX3S_25F_Platform",
            programmer=_ULX3S_LOADER,
            desc="Radiona ULX3S, ECP5 25F",
            serial=SerialLink("M1", "L4", None, False, "on-board FTDI FT231X (USB port US1)"),
        ),
        _ecp5(
            "ulx3s-45f",
            45,
            "CABGA381",
            speed=6,
            io=203,
            clock=25.0,
            platform="amaranth_boards.ulx3s:ULX3S_45F_Platform",
            programmer=_ULX3S_LOADER,
            desc="Radiona ULX3S, ECP5 45F",
            serial=SerialLink("M1", "L4", None, False, "on-board FTDI FT231X (USB port US1)"),
        ),
        _ecp5(
            "ulx3s-85f",
            85,
            "CABGA381",
            speed=6,
            io=205,
            clock=25.0,
            platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
            programmer=_ULX3S_LOADER,
            desc="Radiona ULX3S, ECP5 85F",
            serial=SerialLink("M1", "L4", None, False, "on-board FTDI FT231X (USB port US1)"),
        ),
        _ecp5(
            "orangecrab-25f",
            25,
            "CSFBGA285",
            speed=8,
            io=118,
            clock=48.0,
            platform="amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_25FPlatform",
            programmer=_ORANGECRAB_DFU,
            desc="OrangeCrab r0.2, ECP5 25F",
            serial=_ORANGECRAB_SERIAL,
            added_leds=("K4", "M3", "J3"),
        ),
        _ecp5(
            "orangecrab-85f",
            85,
            "CSFBGA285",
            speed=8,
            io=118,
            clock=48.0,
            platform="amaranth_boards.orangecrab_r0_2:OrangeCrabR0_2_85FPlatform",
            programmer=_ORANGECRAB_DFU,
            desc="OrangeCrab r0.2, ECP5 85F",
            serial=_ORANGECRAB_SERIAL,
            added_leds=("K4", "M3", "J3"),
        ),
    )
}

#: Bare devices for out-of-context runs (no pins, no platform), keyed by name.
DEVICES: dict[str, Target] = {
    t.name: t
    for t in (
        _ice40(
            "up5k",
            "iCE40UP5K",
            "sg48",
            "--up5k",
            **_UP5K,
            io=39,
            clock=48.0,
            platform=None,
            desc="bare iCE40 UP5K (sg48)",
        ),
        _ice40(
            "lp8k",
            "iCE40LP8K",
            "cm81",
            "--lp8k",
            **_8K,
            io=63,
            clock=48.0,
            platform=None,
            desc="bare iCE40 LP8K (cm81)",
        ),
        _ice40(
            "hx8k",
            "iCE40HX8K",
            "ct256",
            "--hx8k",
            **_8K,
            io=206,
            clock=48.0,
            platform=None,
            desc="bare iCE40 HX8K (ct256)",
        ),
        _ecp5(
            "ecp5-25f",
            25,
            "CABGA381",
            speed=6,
            io=197,
            clock=100.0,
            platform=None,
            desc="bare ECP5 LFE5U-25F (caBGA381, speed 6)",
        ),
        _ecp5(
            "ecp5-45f",
            45,
            "CABGA381",
            speed=6,
            io=203,
            clock=100.0,
            platform=None,
            desc="bare ECP5 LFE5U-45F (caBGA381, speed 6)",
        ),
        _ecp5(
            "ecp5-85f",
            85,
            "CABGA381",
            speed=6,
            io=205,
            clock=100.0,
            platform=None,
            desc="bare ECP5 LFE5U-85F (caBGA381, speed 6)",
        ),
    )
}


def target_names() -> list[str]:
    """All catalogue names: boards first, then bare devices."""
    return [*BOARDS, *DEVICES]


def get_target(name: str | Target) -> Target:
    """Look up a board or bare device by name (case-insensitive; ``_`` and ``-`` are the same).

    Raises:
        BitfabError: unknown name; the message lists the known boards and devices.
    """
    if isinstance(name, Target):
        return name
    key = str(name).strip().lower().replace("_", "-")
    found = BOARDS.get(key) or DEVICES.get(key)
    if found is None:
        raise BitfabError(
            f"unknown board or device {name!r}; known boards: {', '.join(BOARDS)}; "
            f"bare devices: {', '.join(DEVICES)}"
        )
    return found
