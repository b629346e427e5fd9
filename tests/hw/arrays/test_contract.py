"""The PE array contract, owned by :class:`bitfab.hw.arrays.base.PEArray`, checked once for all
three arrays of the registry (:data:`bitfab.hw.arrays.ARRAYS`): the registry itself, the
constructor (signature, validation, attributes), the ports, and the values against the numpy
reference (Amaranth simulator) for every operand-kind combination and with the output skid
buffer under stalls."""

from __future__ import annotations

import importlib
import inspect
import itertools

import numpy as np
import pytest
from amaranth.hdl import Fragment, signed
from amaranth.lib import data
from amaranth.lib.wiring import In, Out
from hypothesis import given, settings
from hypothesis import strategies as st

from bitfab.hw.arrays import ARRAYS, PEArray, array_class
from bitfab.hw.arrays.common import ArrayParams
from bitfab.hw.elaboratable import unused_ok
from bitfab.kinds import ARRAY_KINDS
from tests.hw.arrays.pe_cases import (
    KINDS,
    default_acc_width,
    force_skid,
    make_case,
    params_strategy,
    run_case,
)

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")

# Per array: (SIMD, weight bits, activation bits) for the non-bipolar operands of the kind test.
KIND_SHAPES = {"parallel": (5, 4, 3), "bitserial": (5, 3, 2), "bitfusion": (4, 5, 4)}
KIND_NAMES = list(ARRAYS)
# Keyword-only options beyond the contract's ``reg_every``, per array.
EXTRA_OPTIONS = {"parallel": {"dsp": False}, "bitserial": {}, "bitfusion": {"bricks": None}}
CONTRACT_ARGS = ("pe", "simd", "wbits", "abits", "wkind", "akind", "acc_width")
BASE = dict(pe=2, simd=4, wbits=4, abits=4, wkind="signed", akind="unsigned")


# -- registry ----------------------------------------------------------------------------------
def test_registry_covers_every_kind():
    assert tuple(ARRAYS) == ARRAY_KINDS == tuple(KIND_SHAPES) == tuple(EXTRA_OPTIONS)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_registry_class_is_a_pe_array_of_its_kind(kind):
    cls = array_class(kind)
    mod, name = ARRAYS[kind]
    assert cls is getattr(importlib.import_module(mod), name)
    assert issubclass(cls, PEArray) and cls is not PEArray
    assert cls.kind == kind
    assert cls.label != PEArray.label and cls.label.endswith(" array")
    # the class owns elaborate and the performance model; the contract is inherited
    for attr in ("elaborate", "cycles_per_fold", "latency"):
        assert getattr(cls, attr) is not getattr(PEArray, attr), attr


def test_registry_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="array must be one of"):
        array_class("bitparallel")


def test_pe_array_itself_cannot_be_elaborated():
    arr = PEArray(**BASE)
    unused_ok(arr)
    assert arr.kind == "" and not arr.runtime_precision
    assert set(arr.signature.members) == {"i", "o"}
    with pytest.raises(NotImplementedError):
        arr.elaborate(None)
    with pytest.raises(NotImplementedError):
        Fragment.get(arr, None)
    with pytest.raises(NotImplementedError):
        arr.cycles_per_fold()
    with pytest.raises(NotImplementedError):
        _ = arr.latency


# -- constructor -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_constructor_signature(kind):
    """Positional contract arguments, then keyword-only options (callers rely on both)."""
    params = inspect.signature(array_class(kind)).parameters
    assert tuple(params)[: len(CONTRACT_ARGS)] == CONTRACT_ARGS
    for name in CONTRACT_ARGS:
        assert params[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, name
    assert params["acc_width"].default is None
    options = {"reg_every": 1, **EXTRA_OPTIONS[kind]}
    assert set(params) == {*CONTRACT_ARGS, *options}
    for name, default in options.items():
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        assert params[name].default == default, name


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize("acc_width", [None, 20])
def test_attributes_and_ports(kind, acc_width):
    cls = array_class(kind)
    if acc_width is None:
        arr = cls(2, 3, 4, 2, "signed", "unsigned")
    else:
        arr = cls(2, 3, 4, 2, "signed", "unsigned", acc_width)  # positional, as the MVAU does
    unused_ok(arr)
    acc = acc_width or default_acc_width(3, 4, 2, "signed", "unsigned")
    assert arr.params == ArrayParams(2, 3, 4, 2, "signed", "unsigned", acc)
    got = [getattr(arr, name) for name in CONTRACT_ARGS]
    assert got == [2, 3, 4, 2, "signed", "unsigned", acc]
    assert arr.reg_every == 1
    members = arr.signature.members
    assert members["i"].flow is In and members["o"].flow is Out
    i_layout = members["i"].signature.members["payload"].shape
    assert i_layout == data.StructLayout({"w": 2 * 3 * 4, "a": 3 * 2, "last": 1})
    assert members["o"].signature.members["payload"].shape == data.ArrayLayout(signed(acc), 2)
    assert ("wbits_rt" in members) == ("abits_rt" in members) == cls.runtime_precision
    assert cls.runtime_precision == (kind != "parallel")
    if cls.runtime_precision:
        assert members["wbits_rt"].shape.stop == 5 and members["wbits_rt"].init == 4
        assert members["abits_rt"].shape.stop == 3 and members["abits_rt"].init == 2
    assert isinstance(arr.latency, int) and arr.latency >= 3
    assert arr.cycles_per_fold() == arr.cycles_per_fold(4, 2) >= 1


@pytest.mark.parametrize("kind", [k for k in KIND_NAMES if array_class(k).runtime_precision])
def test_runtime_precision_above_the_maximum_raises(kind):
    arr = array_class(kind)(2, 4, 4, 2, "signed", "unsigned")
    unused_ok(arr)
    assert arr.precision() == (4, 2) and arr.precision(3, None) == (3, 2)
    for wrt, art in [(5, 2), (4, 3), (0, 1), (1, 0)]:
        with pytest.raises(ValueError, match="run-time precision"):
            arr.cycles_per_fold(wrt, art)


@pytest.mark.parametrize("kind", KIND_NAMES)
@pytest.mark.parametrize(
    "kwargs,word",
    [
        (dict(pe=0), "pe"),
        (dict(pe=True), "pe"),
        (dict(simd=0), "simd"),
        (dict(simd=-1), "simd"),
        (dict(wbits=0), "wbits"),
        (dict(wbits=9), "wbits"),
        (dict(abits=0), "abits"),
        (dict(abits=12), "abits"),
        (dict(wkind="ternary"), "wkind"),
        (dict(wkind="float"), "wkind"),
        (dict(akind="int"), "akind"),
        (dict(akind="bipolar", abits=2), "abits"),
        (dict(wkind="bipolar", wbits=2), "wbits"),
        (dict(wkind="bipolar", wbits=4), "wbits"),
        (dict(acc_width=3), "acc_width"),
        (dict(acc_width=4), "acc_width"),
        (dict(acc_width=5), "acc_width"),
        (dict(acc_width=65), "acc_width"),
        (dict(reg_every=-1), "reg_every"),
        (dict(reg_every=1.5), "reg_every"),
    ],
)
def test_bad_parameters_raise(kind, kwargs, word):
    with pytest.raises(ValueError, match=word):
        array_class(kind)(**{**BASE, **kwargs})


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_acc_width_error_names_the_array(kind):
    cls = array_class(kind)
    with pytest.raises(ValueError, match=f"for this {cls.label}"):
        cls(**BASE, acc_width=4)


# -- values ------------------------------------------------------------------------------------
@pytest.mark.parametrize("array", KIND_NAMES)
@pytest.mark.parametrize("wkind,akind", list(itertools.product(KINDS, KINDS)))
def test_every_kind_combination(array, wkind, akind):
    simd, wb, ab = KIND_SHAPES[array]
    wbits = 1 if wkind == "bipolar" else wb
    abits = 1 if akind == "bipolar" else ab
    params = dict(pe=2, simd=simd, wbits=wbits, abits=abits, wkind=wkind, akind=akind)
    case = make_case(array, {**params, "folds": [1, 3, 2]}, np.random.default_rng(7))
    run = run_case(case, seed=1, gap=0.3, stall=0.3)
    assert run.outputs["o"] == case.expected["o"], case.name


@pytest.mark.parametrize("array", KIND_NAMES)
@settings(max_examples=15, deadline=None)
@given(params=params_strategy(widths=(1, 2, 4, 8), max_simd=4), seed=st.integers(0, 2**32 - 1))
def test_random_cases_with_skid_buffer(array, params, seed):
    """Random cases with the registered-``adv`` output skid buffer (used by large arrays)."""
    rng = np.random.default_rng(seed)
    case = make_case(array, params, rng)
    with force_skid():
        dut = case.build()
        run = run_case(
            case, seed=seed, gap=rng.uniform(0, 0.5), stall=rng.uniform(0.2, 0.7), dut=dut
        )
    assert run.outputs["o"] == case.expected["o"], case.name


def test_legacy_case_name_builds_the_parallel_array():
    """``"bitparallel"`` (the tests/sim configurations' name) is the registry's ``"parallel"``."""
    params = dict(pe=1, simd=2, wbits=2, abits=2, wkind="signed", akind="unsigned")
    case = make_case("bitparallel", params, np.random.default_rng(0))
    dut = case.build()
    assert dut.kind == "parallel" and case.setup == {} and case.meta["cycles_per_fold"] == 1
    assert run_case(case, dut=dut).outputs["o"] == case.expected["o"]
