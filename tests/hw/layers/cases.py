"""Replayable test cases for bitfab's FINN-style streaming layers.

A :class:`Case` is JSON-serialisable: the layer (its FINN op type), constructor kwargs, setup
constants, input words per stream port and expected output words per port. The Amaranth tests
(``tests/hw/layers/test_*.py``) and the Verilator harness (``tests/sim``) replay the same cases
(``bitfab.sim.rtl_runner.case_dict(case)``).

Cases name their layer by its key in :data:`bitfab.hw.compiler.COMPONENTS`, the one registry
of HW layer classes (FINN op types: ``MVAU``, ``ConvolutionInputGenerator``, ...); the bitfab
class names that differ from the op type (``SlidingWindow``, ``StreamFIFO``) are accepted too
(:data:`CASE_ALIASES`). The case maker of a layer lives next to its independent numpy reference
in the module mirroring the package: layer ``bitfab.hw.layers.<name>`` -> maker
``tests.hw.layers.<name>_cases.case_<name>``, found by :func:`make_case`.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from dataclasses import dataclass, field

import numpy as np

from bitfab.hw import packing
from bitfab.hw.compiler import COMPONENTS

#: bitfab layer class names that differ from their FINN op type -> the op type
#: (``SlidingWindow`` -> ``ConvolutionInputGenerator``, ``StreamFIFO`` -> ``StreamingFIFO``)
CASE_ALIASES = {cls: op for op, (_, cls) in COMPONENTS.items() if cls != op}


def op_type(component: str) -> str:
    """The FINN op type (:data:`bitfab.hw.compiler.COMPONENTS` key) of ``component``, an op
    type or a bitfab layer class name; ``ValueError`` for anything else."""
    op = CASE_ALIASES.get(component, component)
    if op not in COMPONENTS:
        raise ValueError(f"no bitfab layer {component!r} (FINN op types: {', '.join(COMPONENTS)})")
    return op


def component_class(component: str) -> type:
    """The bitfab layer class of ``component`` (FINN op type or class name)."""
    mod, cls = COMPONENTS[op_type(component)]
    return getattr(importlib.import_module(mod), cls)


@dataclass
class Case:
    """One replayable test case for a streaming layer (all fields JSON-serialisable)."""

    component: str  # FINN op type (or a CASE_ALIASES name)
    params: dict  # constructor keyword arguments
    inputs: dict[str, list[int]]  # stream port name -> payload words, in order
    expected: dict[str, list[int]]  # stream port name -> expected payload words
    setup: dict[str, int] = field(default_factory=dict)  # constant input signals
    note: str = ""

    def build(self):
        """Instantiate the component under test."""
        return component_class(self.component)(**self.params)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Case:
        return cls(**json.loads(text))


# --------------------------------------------------------------------------------------------
# value helpers
# --------------------------------------------------------------------------------------------


def words_of(values: np.ndarray, lanes: int, bits: int, kind: str) -> list[int]:
    """Pack a flat sequence of values (in stream order) into words of ``lanes`` lanes."""
    flat = np.asarray(values).reshape(-1, lanes)
    return [packing.pack(row, bits, kind) for row in flat.tolist()]


def to_list(a) -> list:
    """A (nested) Python list of ``a``, for JSON-serialisable constructor kwargs."""
    return np.asarray(a).tolist()


# --------------------------------------------------------------------------------------------
# making and running cases
# --------------------------------------------------------------------------------------------


def case_maker(component: str):
    """The case maker of ``component``: ``case_<name>`` of ``tests.hw.layers.<name>_cases``,
    where ``bitfab.hw.layers.<name>`` holds the layer (imported on demand, so the per-layer
    modules can import this one)."""
    op = op_type(component)
    name = COMPONENTS[op][0].rpartition(".")[2]
    module = f"{__package__}.{name}_cases"
    try:
        cases = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise ValueError(f"no case maker for {component!r} ({module} does not exist)") from None
    return getattr(cases, f"case_{name}")


def make_case(component: str, params: dict, rng: np.random.Generator) -> Case:
    """Random case for ``component`` with structural ``params`` (see each ``case_*``)."""
    return case_maker(component)(params, rng)


def run_case(case: Case, *, seed: int = 0, gap: float = 0.3, stall: float = 0.3, dut=None, **kw):
    """Simulate ``case`` (on ``dut``, default ``case.build()``) in Amaranth's simulator with
    random input gaps and output stalls; return the :class:`~bitfab.sim.amaranth_stream.StreamRun`."""
    from bitfab.sim.amaranth_stream import run_streams

    dut = case.build() if dut is None else dut
    return run_streams(
        dut,
        case.inputs,
        {k: len(v) for k, v in case.expected.items()},
        seed=seed,
        gap=gap,
        stall=stall,
        setup=case.setup,
        **kw,
    )
