"""Test cases for bitfab's PE arrays: an independent numpy reference and stream words.

:func:`ref_dot` computes the contract's value semantics with plain numpy integers (bipolar
operands as -1/+1), independently of the hardware code. :func:`make_case` draws random operands
for given structural parameters and returns a JSON-serialisable :class:`Case`: constructor
kwargs, setup constants (run-time precision), input words of stream ``i`` and expected words of
stream ``o``. The Amaranth tests (``tests/hw/arrays/test_*.py``) and the Verilator harness replay
the same cases (``bitfab.sim.rtl_runner.case_dict(case)``).

A case names its array by its registry kind (:data:`bitfab.hw.arrays.ARRAYS`: ``"parallel"``,
``"bitserial"``, ``"bitfusion"``); ``"bitparallel"``, the older name of the bit-parallel cases,
is still accepted (:data:`CASE_ALIASES`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from bitfab.hw import packing
from bitfab.hw.arrays import ARRAYS, array_class

#: older case array names -> registry kind
CASE_ALIASES = {"bitparallel": "parallel"}
KINDS = ("bipolar", "signed", "unsigned")
CONSTRUCTOR_KEYS = ("pe", "simd", "wbits", "abits", "wkind", "akind", "acc_width")


@dataclass
class Case:
    """One replayable PE array case (all fields JSON-serialisable).

    ``inputs["i"]``: one raw payload word per fold (``w`` | ``a`` << pe*simd*wbits |
    ``last`` << (pe*simd*wbits + simd*abits)); ``expected["o"]``: one raw word per dot product
    (lane ``p`` = row ``p``, ``acc_width``-bit two's complement). ``meta`` holds the fold
    structure and the ideal cycle count for throughput checks.
    """

    array: str
    kwargs: dict
    inputs: dict[str, list[int]]
    expected: dict[str, list[int]]
    setup: dict[str, int] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    name: str = ""

    def build(self):
        """Instantiate the PE array under test (from the registry)."""
        return array_class(case_kind(self.array))(**self.kwargs)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        return cls(**json.loads(text))


def case_kind(array: str) -> str:
    """The registry kind of a case's ``array`` name (an alias or a kind); ``ValueError`` else."""
    kind = CASE_ALIASES.get(array, array)
    if kind not in ARRAYS:
        raise ValueError(f"PE array case: unknown array {array!r}, expected one of {list(ARRAYS)}")
    return kind


# --------------------------------------------------------------------------------------------
# numpy reference
# --------------------------------------------------------------------------------------------


def value_range(kind: str, bits: int) -> tuple[int, int]:
    """(min, max) of a ``bits``-bit value of ``kind`` (bipolar: -1/+1)."""
    if kind == "bipolar":
        return -1, 1
    if kind == "signed":
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def rand_values(rng: np.random.Generator, kind: str, bits: int, shape) -> np.ndarray:
    """Uniform random values of a (kind, bits) type, extremes included."""
    if kind == "bipolar":
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=shape)
    lo, hi = value_range(kind, bits)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)


def ref_dot(W: np.ndarray, A: np.ndarray) -> np.ndarray:
    """The contract's result for one dot product: ``o[p] = sum_f sum_s W[f,p,s] * A[f,s]``.

    ``W``: int array [folds, pe, simd] of weight values; ``A``: [folds, simd] activation values
    (bipolar already as -1/+1). Exact (Python-int) arithmetic.
    """
    W = np.asarray(W, dtype=object)
    A = np.asarray(A, dtype=object)
    out = [0] * W.shape[1]
    for f in range(W.shape[0]):
        for p in range(W.shape[1]):
            out[p] += sum(int(W[f, p, s]) * int(A[f, s]) for s in range(W.shape[2]))
    return np.array(out, dtype=object)


def wrap(value: int, width: int) -> int:
    """Two's complement wrap of ``value`` to ``width`` bits (what a fixed accumulator holds)."""
    value &= (1 << width) - 1
    return value - (1 << width) if value >> (width - 1) else value


def default_acc_width(simd: int, wbits: int, abits: int, wkind: str, akind: str) -> int:
    """Independent restatement of the contract's default: one fold's range + 8 guard bits."""
    wl, wh = value_range(wkind, wbits)
    al, ah = value_range(akind, abits)
    prods = [wl * al, wl * ah, wh * al, wh * ah]
    lo, hi = simd * min(prods), simd * max(prods)
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n + 8


# --------------------------------------------------------------------------------------------
# case generation
# --------------------------------------------------------------------------------------------


def ideal_cycles_per_fold(array: str, kwargs: dict, wrt: int, art: int) -> int:
    """The contract's cycles per fold, restated independently of the hardware classes."""
    kind = case_kind(array)
    if kind == "parallel":
        return 1
    if kind == "bitserial":
        return wrt * art
    cw_max, ca_max = -(-kwargs["wbits"] // 2), -(-kwargs["abits"] // 2)
    bricks = kwargs.get("bricks") or kwargs["simd"] * cw_max * ca_max
    per_cycle = bricks // ((-(-wrt // 2)) * (-(-art // 2)))
    return -(-kwargs["simd"] // per_cycle)


def make_case(array: str, params: dict, rng: np.random.Generator) -> Case:
    """A random case for ``array`` ("parallel", "bitserial", "bitfusion"; or "bitparallel").

    ``params``: the constructor keys (``pe, simd, wbits, abits, wkind, akind``, optional
    ``acc_width``), optional extra constructor kwargs in ``params["extra"]`` (e.g.
    ``{"bricks": 6}``), optional run-time precision ``wbits_rt``/``abits_rt`` (defaults: the
    maxima; the values are drawn at that width and sit sign-extended in their lanes) and
    ``folds``: a list with the number of folds of each dot product (default ``[1, 2]``).
    """
    kwargs = {k: params[k] for k in CONSTRUCTOR_KEYS if params.get(k) is not None}
    kwargs.update(params.get("extra") or {})
    pe, simd = kwargs["pe"], kwargs["simd"]
    wbits, abits, wkind, akind = kwargs["wbits"], kwargs["abits"], kwargs["wkind"], kwargs["akind"]
    acc_width = kwargs.get("acc_width") or default_acc_width(simd, wbits, abits, wkind, akind)
    wrt = params.get("wbits_rt") or wbits
    art = params.get("abits_rt") or abits
    folds = list(params.get("folds") or [1, 2])

    words, expected = [], []
    for nf in folds:
        W = rand_values(rng, wkind, wrt, (nf, pe, simd))
        A = rand_values(rng, akind, art, (nf, simd))
        for f in range(nf):
            w = packing.pack(W[f].reshape(-1).tolist(), wbits, wkind)
            a = packing.pack(A[f].tolist(), abits, akind)
            last = int(f == nf - 1)
            words.append(w | a << (pe * simd * wbits) | last << (pe * simd * wbits + simd * abits))
        dot = [wrap(int(v), acc_width) for v in ref_dot(W, A)]
        expected.append(packing.pack(dot, acc_width, "signed"))

    setup = {}
    if case_kind(array) != "parallel":
        setup = {"wbits_rt": int(wrt), "abits_rt": int(art)}
    cpf = ideal_cycles_per_fold(array, kwargs, wrt, art)
    name = (
        f"{array}_pe{pe}_simd{simd}_w{wkind[0]}{wbits}r{wrt}_a{akind[0]}{abits}r{art}"
        f"_folds{'-'.join(map(str, folds))}"
    )
    return Case(
        array=array,
        kwargs=kwargs,
        inputs={"i": words},
        expected={"o": expected},
        setup=setup,
        meta={"folds": folds, "cycles_per_fold": cpf, "ideal_cycles": cpf * sum(folds)},
        name=name,
    )


def random_params(
    rng: np.random.Generator,
    *,
    max_pe: int = 3,
    max_simd: int = 5,
    widths=(1, 2, 3, 4, 5, 8),
    max_folds: int = 3,
    max_dots: int = 3,
) -> dict:
    """Random structural parameters: kinds, widths (bipolar = 1), run-time widths, folds."""
    wkind, akind = (str(rng.choice(KINDS)) for _ in range(2))
    wbits = 1 if wkind == "bipolar" else int(rng.choice(widths))
    abits = 1 if akind == "bipolar" else int(rng.choice(widths))
    return {
        "pe": int(rng.integers(1, max_pe + 1)),
        "simd": int(rng.integers(1, max_simd + 1)),
        "wbits": wbits,
        "abits": abits,
        "wkind": wkind,
        "akind": akind,
        "wbits_rt": int(rng.integers(1, wbits + 1)),
        "abits_rt": int(rng.integers(1, abits + 1)),
        "folds": [
            int(rng.integers(1, max_folds + 1)) for _ in range(rng.integers(1, max_dots + 1))
        ],
    }


def params_strategy(
    *,
    max_pe: int = 3,
    max_simd: int = 5,
    widths=(1, 2, 3, 4, 5, 8),
    max_folds: int = 3,
    max_dots: int = 3,
):
    """Hypothesis strategy for the ``params`` of :func:`make_case` (shrinks towards small)."""
    from hypothesis import strategies as st

    @st.composite
    def _params(draw):
        wkind = draw(st.sampled_from(KINDS))
        akind = draw(st.sampled_from(KINDS))
        wbits = 1 if wkind == "bipolar" else draw(st.sampled_from(widths))
        abits = 1 if akind == "bipolar" else draw(st.sampled_from(widths))
        return {
            "pe": draw(st.integers(1, max_pe)),
            "simd": draw(st.integers(1, max_simd)),
            "wbits": wbits,
            "abits": abits,
            "wkind": wkind,
            "akind": akind,
            "wbits_rt": draw(st.integers(1, wbits)),
            "abits_rt": draw(st.integers(1, abits)),
            "folds": draw(st.lists(st.integers(1, max_folds), min_size=1, max_size=max_dots)),
        }

    return _params()


def run_case(case: Case, *, seed: int = 0, gap: float = 0.0, stall: float = 0.0, dut=None):
    """Replay ``case`` in Amaranth's simulator (on ``dut``, default ``case.build()``); returns
    ``bitfab.sim.amaranth_stream.StreamRun``."""
    from bitfab.sim.amaranth_stream import run_streams

    return run_streams(
        case.build() if dut is None else dut,
        case.inputs,
        {"o": len(case.expected["o"])},
        seed=seed,
        gap=gap,
        stall=stall,
        setup=case.setup,
    )


def force_skid():
    """Context manager: every array built inside uses the output skid buffer (registered
    ``adv``), whatever its size (normally only pipelines over ``SKID_MIN_BITS`` bits do)."""
    from unittest import mock

    from bitfab.hw.arrays import common as pe_common

    return mock.patch.object(pe_common, "SKID_MIN_BITS", -1)
