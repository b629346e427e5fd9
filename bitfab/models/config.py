"""Model configuration: which zoo model, and the bit width of every weight layer and activation.

A config comes from CLI flags or a TOML file (keys = the fields of :class:`ModelConfig`)::

    model = "tfc"
    wbits = [2, 4, 4, 2]     # one per weight layer (or one number for all)
    abits = [2, 4, 2]        # one per hidden activation (or one number for all)
    in_bits = 8              # input precision: 1 = bipolar sign of (x - 0.5), 2-8 = unsigned
    dropout = 0.0
    quantizer = "finn"       # QAT quantizer family: finn, stats, lsq, pact (bitfab.models.quant)

or from a JSON file holding the same keys (the ``"config"`` dict of a ``metrics.json``, which
``bitfab mixed`` writes; a whole ``metrics.json`` is accepted too), see :func:`load_config_file`.

``wbits = 32`` (or ``"float"``) selects the float model of the same architecture (accuracy bench
only; it is not exported for dataflow).
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bitfab.errors import BitfabError

FLOAT_BITS = 32
MIN_BITS, MAX_BITS = 1, 8
DEFAULT_QUANTIZER = "finn"  # bitfab.models.quant.DEFAULT_QUANTIZER (kept light: no brevitas import)


@dataclass(frozen=True)
class Arch:
    """Layer structure of a zoo model (all convs 3x3, stride 1, no padding, no bias).

    ``convs``: (out_channels, maxpool 2x2 after it) per conv layer; ``fcs``: hidden FC widths; the
    classifier (10 outputs) follows. Weight layers = convs + fcs + 1; activations = convs + fcs.
    """

    convs: tuple[tuple[int, bool], ...]
    fcs: tuple[int, ...]
    default_in_bits: int
    description: str

    @property
    def n_weight_layers(self) -> int:
        return len(self.convs) + len(self.fcs) + 1

    @property
    def n_acts(self) -> int:
        return len(self.convs) + len(self.fcs)


ARCHS: dict[str, Arch] = {
    "tfc": Arch((), (64, 64, 64), 8, "FINN TFC: MLP 784-64-64-64-10"),
    "sfc": Arch((), (256, 256, 256), 8, "FINN SFC: MLP 784-256-256-256-10"),
    "lfc": Arch((), (1024, 1024, 1024), 8, "FINN LFC: MLP 784-1024-1024-1024-10"),
    "cnv-s": Arch(
        ((16, True), (32, True), (64, False)),
        (),
        8,
        "small CNN for iCE40 UP5K: conv16-pool-conv32-pool-conv64-fc10 (29 k weights)",
    ),
    "cnv-m": Arch(
        ((32, False), (32, True), (64, False), (64, True)),
        (128,),
        8,
        "CNN for ECP5: conv32-conv32-pool-conv64-conv64-pool-fc128-fc10",
    ),
}


@dataclass(frozen=True)
class ModelConfig:
    """A validated model config. Bit widths are expanded to one entry per layer.

    ``wbits[i]``: bits of weight layer ``i`` (convs, hidden FCs, classifier, in order);
    ``abits[i]``: bits of the activation after weight layer ``i`` (all but the classifier);
    ``in_bits``: input precision. 1 = bipolar; 2-8 = signed weights, unsigned activations and
    input; 32 everywhere = float model. ``quantizer``: the QAT quantizer family
    (:data:`bitfab.models.quant.FAMILIES`; the float model keeps the default).
    """

    model: str
    wbits: tuple[int, ...]
    abits: tuple[int, ...]
    in_bits: int
    dropout: float = 0.0
    quantizer: str = DEFAULT_QUANTIZER

    @property
    def arch(self) -> Arch:
        return ARCHS[self.model]

    @property
    def is_float(self) -> bool:
        return self.wbits[0] == FLOAT_BITS

    @property
    def precision(self) -> str:
        """Short tag: ``float``, ``w1a1`` (uniform) or ``mixed``."""
        if self.is_float:
            return "float"
        if len(set(self.wbits)) == 1 and len(set(self.abits)) == 1:
            return f"w{self.wbits[0]}a{self.abits[0]}"
        return "mixed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``quantizer`` appears only when it is not the default ``finn`` (so
        configs written before the families existed still compare equal)."""
        d = asdict(self)
        d["wbits"] = list(self.wbits)
        d["abits"] = list(self.abits)
        if self.quantizer == DEFAULT_QUANTIZER:
            del d["quantizer"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return make_config(**d)


def _parse_bits(value: Any, name: str) -> int | list[int] | str:
    """Accept int, 'float', a list, or a CLI string like '2,4,4,2'."""
    if isinstance(value, str):
        s = value.strip().lower()
        if s == "float":
            return "float"
        parts = [p for p in s.replace(" ", "").split(",") if p]
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise BitfabError(
                f"{name}={value!r} is not a bit width: give an integer 1-8, a comma list, or 'float'"
            ) from None
        return nums[0] if len(nums) == 1 else nums
    return value


def _expand(value: Any, n: int, name: str, model: str) -> tuple[int, ...]:
    value = _parse_bits(value, name)
    if value == "float":
        return (FLOAT_BITS,) * n
    if isinstance(value, bool) or not isinstance(value, (int, list, tuple)):
        raise BitfabError(
            f"{name}={value!r} is not a bit width: give an integer 1-8 or a list of them"
        )
    if isinstance(value, int):
        vals = [value] * n
    else:
        vals = list(value)
        if len(vals) != n:
            raise BitfabError(
                f"{name} has {len(vals)} entries but model {model} needs {n} "
                f"(one per {'weight layer' if name == 'wbits' else 'hidden activation'}) or one number"
            )
    for i, v in enumerate(vals):
        where = name if isinstance(value, int) else f"{name}[{i}]"
        if isinstance(v, bool) or not isinstance(v, int):
            raise BitfabError(f"{where}={v!r} is not an integer bit width (valid range 1-8)")
        if v != FLOAT_BITS and not MIN_BITS <= v <= MAX_BITS:
            raise BitfabError(
                f"{where}={v} is out of range: valid bit widths are 1-8 (32/float for a float model)"
            )
    return tuple(vals)


def make_config(
    model: str = "tfc",
    wbits: Any = 1,
    abits: Any = None,
    in_bits: Any = None,
    dropout: float = 0.0,
    quantizer: str | None = None,
) -> ModelConfig:
    """Build and validate a :class:`ModelConfig`; every defect raises :class:`BitfabError`.

    ``abits`` defaults to ``wbits``' first value when that is a number, ``in_bits`` to the model's
    default (8 = the exact pixel; ``in_bits=1`` gives FINN's classic binarized TFC input). ``wbits=32``/``"float"`` makes the
    float model (then abits/in_bits must be 32/float or unset). ``quantizer``: QAT quantizer
    family (default ``finn``); ``stats``, ``lsq`` and ``pact`` need >= 2-bit weights and
    activations (the input quantizer is the same in every family).
    """
    if model not in ARCHS:
        raise BitfabError(f"unknown model {model!r}; choose one of {', '.join(ARCHS)}")
    arch = ARCHS[model]
    w = _expand(wbits, arch.n_weight_layers, "wbits", model)
    is_float = FLOAT_BITS in w
    if abits is None:
        abits = FLOAT_BITS if is_float else w[0]
    a = _expand(abits, arch.n_acts, "abits", model)
    if in_bits is None:
        in_bits = FLOAT_BITS if is_float else arch.default_in_bits
    ib = _expand(in_bits, 1, "in_bits", model)[0]
    if is_float or FLOAT_BITS in a or ib == FLOAT_BITS:
        if not (set(w) == {FLOAT_BITS} and set(a) == {FLOAT_BITS} and ib == FLOAT_BITS):
            raise BitfabError(
                "float model needs wbits, abits and in_bits all 32/float; "
                "mixed float and quantized layers are not supported"
            )
    try:
        dropout = float(dropout)
    except (TypeError, ValueError):
        raise BitfabError(f"dropout={dropout!r} must be a number in [0, 1)") from None
    if not 0.0 <= dropout < 1.0:
        raise BitfabError(f"dropout={dropout} is out of range: valid range is [0, 1)")
    q = _check_quantizer(quantizer, w, a, is_float)
    return ModelConfig(model=model, wbits=w, abits=a, in_bits=ib, dropout=dropout, quantizer=q)


#: families and the fewest bits they apply at (mirrors bitfab.models.quant.FAMILIES)
QUANTIZER_MIN_BITS = {"finn": 1, "stats": 2, "lsq": 2, "pact": 2}
_WHY_NOT_1BIT = {
    "stats": "a statistics-derived scale has nothing to set on a bipolar {-1, +1} tensor",
    "lsq": "LSQ learns the step between integer levels and a bipolar tensor has Qp = 0 steps",
    "pact": "PACT clips an unsigned ReLU range and 1-bit activations here are bipolar",
}


def _check_quantizer(quantizer: Any, w: tuple[int, ...], a: tuple[int, ...], is_float: bool) -> str:
    if quantizer is None:
        return DEFAULT_QUANTIZER
    if quantizer not in QUANTIZER_MIN_BITS:
        raise BitfabError(
            f"unknown quantizer {quantizer!r}; choose one of {', '.join(QUANTIZER_MIN_BITS)}"
        )
    if is_float:
        if quantizer != DEFAULT_QUANTIZER:
            raise BitfabError(
                f"quantizer {quantizer!r} does not apply to the float model; drop --quantizer"
            )
        return quantizer
    lo = QUANTIZER_MIN_BITS[quantizer]
    if min(w + a) < lo:
        which = "wbits" if min(w) < lo else "abits"
        raise BitfabError(
            f"quantizer {quantizer!r} does not apply at 1 bit ({which} has a 1): "
            f"{_WHY_NOT_1BIT[quantizer]}; use --quantizer finn for 1-bit layers or 2-8 bits"
        )
    return quantizer


CONFIG_KEYS = ("model", "wbits", "abits", "in_bits", "dropout", "quantizer")


def load_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file into a dict of :class:`ModelConfig` keys (not yet validated)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BitfabError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as e:
        raise BitfabError(f"{p}: invalid TOML ({e})") from None
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise BitfabError(
            f"{p}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(CONFIG_KEYS)}"
        )
    return data


def load_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON config (a ModelConfig dict, or a ``metrics.json`` whose ``"config"`` is one)
    into a dict of :class:`ModelConfig` keys (not yet validated)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise BitfabError(f"{p}: config file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BitfabError(f"{p}: unreadable config file ({type(e).__name__})") from None
    except json.JSONDecodeError as e:
        raise BitfabError(f"{p}: invalid JSON ({e.msg} at line {e.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]  # a whole metrics.json
    if not isinstance(data, dict):
        raise BitfabError(f"{p}: a config must be a JSON object with keys {', '.join(CONFIG_KEYS)}")
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise BitfabError(
            f"{p}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(CONFIG_KEYS)}"
        )
    return data


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config file: ``.json`` as JSON (:func:`load_json`), anything else as TOML."""
    if Path(path).suffix.lower() == ".json":
        return load_json(path)
    return load_toml(path)
