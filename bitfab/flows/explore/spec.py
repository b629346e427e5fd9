"""The sweep: which points a design-space exploration runs, from flags or a TOML file.

A point is one (model, weight bits, activation bits, PE array kind, board). The sweep is the
cross product of the lists; without ``abits`` the activation bits follow the weight bits
(W1A1, W2A2, ...), with it every (wbits, abits) pair is a point. Everything is validated here,
before any work: an unknown model, array kind or board, a bit width outside 1-8, or an empty
list is one :class:`BitfabError`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bitfab.errors import BitfabError

#: Keys a sweep TOML file may hold (lists may be given as TOML arrays or "a,b" strings).
TOML_KEYS = (
    "model", "wbits", "abits", "array", "board", "epochs", "seed", "limit", "dataset",
    "synth", "synth_pareto", "synth_max", "verify_images", "margin", "clock_mhz", "in_bits",
    "max_luts",
)  # fmt: skip

#: Design clock (MHz) of a family when the sweep gives none: the board's oscillator, except
#: ECP5 boards at 50 MHz through the PLL (the board top on the ULX3S's bare 25 MHz oscillator
#: fails in Amaranth: docs/boards.md), as bench/boards.py builds them.
FAMILY_CLOCK_MHZ = {"ecp5": 50.0}


@dataclass(frozen=True)
class TrainSpec:
    """How the models of a sweep are trained (all points share it). ``limit``: first N
    training images only (None: all 60,000); ``dataset``: fashion-mnist or digits."""

    epochs: int = 1
    seed: int = 0
    limit: int | None = None
    dataset: str = "fashion-mnist"


@dataclass(frozen=True)
class Point:
    """One design point. ``wbits``/``abits``: uniform bit widths 1-8; ``clock_mhz``: the
    design clock images/s is computed at (and the build runs at, with synthesis)."""

    model: str
    wbits: int
    abits: int
    array: str
    board: str
    clock_mhz: float
    in_bits: int | None = None

    @property
    def precision(self) -> str:
        return f"w{self.wbits}a{self.abits}"

    @property
    def name(self) -> str:
        """Readable, file-name-safe id, unique within a sweep."""
        ib = "" if self.in_bits is None else f"-i{self.in_bits}"
        return f"{self.model}-{self.precision}{ib}-{self.array}-{self.board}"

    def model_config(self) -> dict[str, Any]:
        """Keys for :func:`bitfab.models.config.make_config`."""
        cfg: dict[str, Any] = {"model": self.model, "wbits": self.wbits, "abits": self.abits}
        if self.in_bits is not None:
            cfg["in_bits"] = self.in_bits
        return cfg

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "name": self.name}


@dataclass(frozen=True)
class SweepSpec:
    """A whole sweep: the lists, training, and per-point options.

    ``synth``: synthesize every point (``bitfab build``: fit, compile, RTL verification of
    ``verify_images`` images, Yosys + nextpnr); ``synth_pareto``: after the estimates,
    synthesize the Pareto points only (at most ``synth_max`` of them, the smallest first);
    ``margin``: fraction of the board the design may fill; ``clock_mhz``: design clock for
    every board (None: :data:`FAMILY_CLOCK_MHZ` or the board's oscillator); ``max_luts``: at
    most this many logic cells per design (board top included) on any board, a cap on top of
    ``margin`` (big boards otherwise fit huge, slow-to-compile unrolled designs).
    """

    models: tuple[str, ...]
    wbits: tuple[int, ...]
    abits: tuple[int, ...] | None
    arrays: tuple[str, ...]
    boards: tuple[str, ...]
    train: TrainSpec = field(default_factory=TrainSpec)
    synth: bool = False
    synth_pareto: bool = False
    synth_max: int = 4
    verify_images: int = 100
    margin: float = 0.8
    clock_mhz: float | None = None
    in_bits: int | None = None
    max_luts: int | None = None

    def points(self) -> list[Point]:
        """Every point, in a stable order (model, wbits, abits, board, array)."""
        from bitfab.boards import get_target

        pairs = (
            [(w, w) for w in self.wbits]
            if self.abits is None
            else [(w, a) for w in self.wbits for a in self.abits]
        )
        out = []
        for m in self.models:
            for w, a in pairs:
                for b in self.boards:
                    t = get_target(b)
                    clock = self.clock_mhz or FAMILY_CLOCK_MHZ.get(t.family, t.default_clock_mhz)
                    for arr in self.arrays:
                        out.append(Point(m, w, a, arr, b, float(clock), self.in_bits))
        return out

    def with_(self, **kw: Any) -> SweepSpec:
        return replace(self, **kw)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["points"] = len(self.points())
        return d


def _split(value: Any, name: str) -> list[str]:
    """A list from a TOML array, a comma string or a single value; never empty."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    out = [str(v).strip() for v in items if str(v).strip()]
    if not out:
        raise BitfabError(f"--{name.replace('_', '-')}: empty list; give at least one value")
    return out


def _bits(value: Any, name: str) -> tuple[int, ...]:
    vals = []
    for s in _split(value, name):
        try:
            v = int(s)
        except ValueError:
            raise BitfabError(f"--{name} {s!r}: not a bit width; give integers 1-8") from None
        if not 1 <= v <= 8:
            raise BitfabError(f"--{name} {v}: out of range; bit widths are 1-8")
        vals.append(v)
    return tuple(dict.fromkeys(vals))


def _positive_int(value: Any, name: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BitfabError(f"--{name.replace('_', '-')} {value!r}: must be a positive integer")
    return value


def make_spec(opts: dict[str, Any]) -> SweepSpec:
    """Validate sweep options (flag names as in :data:`TOML_KEYS`) into a :class:`SweepSpec`.

    Raises :class:`BitfabError` (one line naming the option and the fix) on an unknown model,
    array or board, a bad bit width, an empty list or a bad number."""
    from bitfab.boards import BOARDS, get_target
    from bitfab.kinds import ARRAY_KINDS, array_kind
    from bitfab.models.config import ARCHS

    models = _split(opts.get("model", "tfc"), "model")
    for m in models:
        if m not in ARCHS:
            raise BitfabError(f"--model {m!r}: unknown model; choose from {', '.join(ARCHS)}")
    arrays = []
    for a in _split(opts.get("array", "parallel"), "array"):
        try:
            arrays.append(array_kind(a))
        except BitfabError:
            raise BitfabError(
                f"--array {a!r}: unknown PE array kind; choose from {', '.join(ARRAY_KINDS)}"
            ) from None
    boards = []
    for b in _split(opts.get("board", "icebreaker"), "board"):
        try:
            t = get_target(b)
        except BitfabError:
            t = None
        if t is None or not t.is_board:
            raise BitfabError(
                f"--board {b!r}: unknown board (bare devices have no board top); choose from "
                f"{', '.join(BOARDS)}"
            )
        boards.append(t.name)
    wbits = _bits(opts.get("wbits", "1"), "wbits")
    abits = None if opts.get("abits") is None else _bits(opts["abits"], "abits")
    epochs = _positive_int(opts.get("epochs", 1), "epochs")
    seed = opts.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BitfabError(f"--seed {seed!r}: must be a non-negative integer")
    limit = _positive_int(opts.get("limit"), "limit", allow_none=True)
    dataset = opts.get("dataset", "fashion-mnist")
    if dataset not in ("fashion-mnist", "digits"):
        raise BitfabError(f"--dataset {dataset!r}: choose fashion-mnist or digits")
    margin = opts.get("margin", 0.8)
    if not isinstance(margin, (int, float)) or not 0 < margin <= 1:
        raise BitfabError(f"--margin {margin!r}: must be in (0, 1], e.g. 0.8")
    clock = opts.get("clock_mhz")
    if clock is not None and (not isinstance(clock, (int, float)) or clock <= 0):
        raise BitfabError(f"--clock-mhz {clock!r}: must be a positive frequency in MHz")
    max_luts = _positive_int(opts.get("max_luts"), "max_luts", allow_none=True)
    in_bits = opts.get("in_bits")
    if in_bits is not None:
        in_bits = _bits(in_bits, "in_bits")[0]
    spec = SweepSpec(
        models=tuple(dict.fromkeys(models)),
        wbits=wbits,
        abits=abits,
        arrays=tuple(dict.fromkeys(arrays)),
        boards=tuple(dict.fromkeys(boards)),
        train=TrainSpec(epochs=epochs, seed=seed, limit=limit, dataset=dataset),
        synth=bool(opts.get("synth", False)),
        synth_pareto=bool(opts.get("synth_pareto", False)),
        synth_max=_positive_int(opts.get("synth_max", 4), "synth_max"),
        verify_images=_positive_int(opts.get("verify_images", 100), "verify_images"),
        margin=float(margin),
        clock_mhz=None if clock is None else float(clock),
        in_bits=in_bits,
        max_luts=max_luts,
    )
    if not spec.points():
        raise BitfabError("empty sweep: give at least one model, bit width, array and board")
    return spec


def load_sweep_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a sweep TOML file (keys of :data:`TOML_KEYS`; a top-level table or ``[sweep]``)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise BitfabError(f"--sweep {p}: file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise BitfabError(f"--sweep {p}: invalid TOML ({e})") from None
    if isinstance(data.get("sweep"), dict):
        data = data["sweep"]
    unknown = sorted(set(data) - set(TOML_KEYS))
    if unknown:
        raise BitfabError(
            f"--sweep {p}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(TOML_KEYS)}"
        )
    return data
