"""``bitfab boards``: the catalogue as a table that reads in an 80-column terminal.

Pins are read back from the platform class the flows build with
(:meth:`bitfab.boards.Target.platform_class`), so the listing shows the balls the bitstream
really uses: the host link's ``"uart"`` and the LEDs the board top drives (``"led"`` 0 up to
:data:`CLASS_LEDS` - 1).

The default view has one block per board (name, device, clock and resources on the first line,
serial pins and LEDs below); ``wide=True`` gives one table row per target with every column.
"""

from __future__ import annotations

from bitfab.boards.catalogue import BOARDS, DEVICES, Target

#: LEDs the board top uses at most for the class display (LED k = bit k of the last class).
CLASS_LEDS = 8


def _balls(platform, resource, sub: str | None = None) -> list[str]:
    ios = resource.ios
    if sub is not None:
        ios = next(s for s in ios if getattr(s, "name", None) == sub).ios
    pins = next(p for p in ios if hasattr(p, "map_names"))
    return pins.map_names(platform._conn_pins, resource)


def serial_balls(target: Target) -> tuple[str, str]:
    """Package balls ``(rx, tx)`` of the board's host-link UART (as the build requests it)."""
    platform = target.platform_class()()
    res = platform.resources[("uart", 0)]
    return _balls(platform, res, "rx")[0], _balls(platform, res, "tx")[0]


def led_balls(target: Target) -> list[str]:
    """Package balls of the LEDs showing the class (LED k = bit k), in bit order."""
    platform = target.platform_class()()
    out = []
    for k in range(CLASS_LEDS):
        if ("led", k) not in platform.resources:
            break
        out.extend(_balls(platform, platform.resources[("led", k)]))
    return out


def serial_text(target: Target) -> str:
    """``rx 6, tx 9`` (balls), with connector pin names when they differ."""
    s = target.serial
    rx, tx = serial_balls(target)
    if s.conn is None:
        return f"rx {rx}, tx {tx}"
    conn = f"{s.conn[0]}{s.conn[1]}"
    return f"rx {conn} pin {s.rx} ({rx}), tx {conn} pin {s.tx} ({tx})"


def _resources(t: Target) -> str:
    parts = [f"{t.luts} LUT4", f"{t.bram_blocks} x {t.bram_bits // 1024}k BRAM"]
    if t.dsps:
        parts.append(f"{t.dsps} DSP")
    if t.spram_blocks:
        parts.append(f"{t.spram_blocks} SPRAM")
    return ", ".join(parts)


def boards_renderable(wide: bool = False):
    """A rich renderable: the narrow per-board listing, or the wide table (``wide``)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if wide:
        t = Table(title="bitfab targets")
        for col in ("name", "family", "device", "package", "LUT4", "BRAM", "DSP", "SPRAM",
                    "I/O", "clock MHz", "serial rx/tx", "LEDs", "description"):  # fmt: skip
            t.add_column(col, no_wrap=col in ("name", "device"))
        for tgt in [*BOARDS.values(), *DEVICES.values()]:
            board = tgt.is_board
            t.add_row(
                tgt.name,
                tgt.family,
                tgt.device,
                tgt.package,
                str(tgt.luts),
                f"{tgt.bram_blocks} x {tgt.bram_bits // 1024}k",
                str(tgt.dsps),
                str(tgt.spram_blocks),
                str(tgt.io),
                f"{tgt.default_clock_mhz:g}",
                "/".join(serial_balls(tgt)) if board else "-",
                " ".join(led_balls(tgt)) if board else "-",
                tgt.description,
            )
        return t
    lines: list = [Text("boards (serial: the host link's UART; LEDs: class bits 0, 1, ...)")]
    for t in BOARDS.values():
        lines.append(
            Text.assemble(
                (f"{t.name:<15}", "bold"),
                f"{t.device} {t.package}, {t.default_clock_mhz:g} MHz, {_resources(t)}",
            )
        )
        lines.append(Text(f"{'':15}serial: {serial_text(t)}"))
        lines.append(Text(f"{'':15}        {t.serial.where}", style="dim"))
        leds = led_balls(t)
        lines.append(Text(f"{'':15}LEDs: {len(leds)} ({' '.join(leds) or 'none'})"))
    lines.append(Text(""))
    lines.append(Text("bare devices (out-of-context runs: 'bitfab synth --target')"))
    for t in DEVICES.values():
        lines.append(
            Text.assemble((f"{t.name:<15}", "bold"), f"{t.device} {t.package}, {_resources(t)}")
        )
    lines.append(Text("all columns: bitfab boards --wide", style="dim"))
    return Group(*lines)


def print_boards(wide: bool = False, console=None) -> None:  # noqa: ANN001 - rich Console
    """Print the catalogue (``bitfab boards [--wide]``)."""
    from rich.console import Console

    (console or Console()).print(boards_renderable(wide))
