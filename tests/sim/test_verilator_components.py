"""Every bitfab hardware component, as Verilog in Verilator, bit-exact against numpy.

The cases come from the hardware tests' own generators (``tests/hw/arrays/pe_cases.py``,
``tests/hw/layers/*_cases.py``: independent numpy references of the contract and of FINN's
semantics). A Verilator build costs ~10-20 s, so each test below is ONE build (one structural
configuration) that replays many seeded random cases in one simulation: several run-time
precisions for the bit-serial and bit-fusion arrays, many input vectors for the layers, and
every case under several (valid gap, ready stall) probabilities on both sides of the streams.
Together the configurations cover 1, 2, 4 and 8-bit weights and activations of every kind
(signed, unsigned, bipolar).
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from bitfab.sim.rtl_runner import case_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (for the hw package)
from hw.arrays import pe_cases  # noqa: E402

from tests.hw.layers import cases as layer_cases  # noqa: E402

pytestmark = pytest.mark.verilator

#: (valid gap, ready stall) probabilities each case is replayed with
STALLS = [(0.0, 0.0), (0.3, 0.3), (0.6, 0.1), (0.1, 0.6)]


def _replay(case, name: str, seed: int, stalls=STALLS) -> list[dict]:
    return [
        case_dict(case, name=f"{name}/gap{g}/stall{s}", gap=g, stall=s, seed=seed * 16 + j)
        for j, (g, s) in enumerate(stalls)
    ]


def _check(rtl_run, component, cases: list[dict]):
    res = rtl_run(component, cases)
    assert res.passed, f"{res.message} (simulator log: {res.log})"
    assert len(res.cases) == len(cases)
    return res


# --------------------------------------------------------------------------------------------
# PE arrays: one build per structural configuration, many run-time precisions and data cases
# --------------------------------------------------------------------------------------------

# (array, constructor params, run-time precisions (wbits_rt, abits_rt) replayed on that build)
PE_CONFIGS = [
    ("bitparallel", dict(pe=2, simd=3, wbits=8, abits=8, wkind="signed", akind="unsigned"), None),
    ("bitparallel", dict(pe=3, simd=4, wbits=1, abits=1, wkind="bipolar", akind="bipolar"), None),
    ("bitparallel", dict(pe=2, simd=2, wbits=2, abits=4, wkind="unsigned", akind="signed"), None),
    (
        "bitserial",
        dict(pe=2, simd=3, wbits=8, abits=8, wkind="signed", akind="unsigned"),
        [(8, 8), (4, 4), (2, 2), (1, 1), (8, 1), (1, 8), (2, 4)],
    ),
    (
        "bitserial",
        dict(pe=3, simd=2, wbits=1, abits=4, wkind="bipolar", akind="signed"),
        [(1, 4), (1, 2), (1, 1)],
    ),
    (
        "bitserial",
        dict(pe=1, simd=4, wbits=4, abits=1, wkind="unsigned", akind="bipolar"),
        [(4, 1), (2, 1), (1, 1)],
    ),
    (
        "bitfusion",
        dict(pe=2, simd=3, wbits=8, abits=8, wkind="signed", akind="signed"),
        [(8, 8), (4, 4), (2, 2), (1, 1), (8, 2), (2, 8), (4, 1)],
    ),
    (
        "bitfusion",
        dict(pe=2, simd=4, wbits=4, abits=2, wkind="unsigned", akind="unsigned"),
        [(4, 2), (2, 2), (1, 1), (3, 1)],
    ),
    (
        "bitfusion",
        dict(pe=3, simd=2, wbits=1, abits=1, wkind="bipolar", akind="bipolar"),
        [(1, 1)],
    ),
]


def _pe_id(cfg) -> str:
    array, p, _ = cfg
    return (
        f"{array}-pe{p['pe']}s{p['simd']}-w{p['wkind'][0]}{p['wbits']}-a{p['akind'][0]}{p['abits']}"
    )


@pytest.mark.parametrize("cfg", PE_CONFIGS, ids=_pe_id)
def test_pe_array(rtl_run, cfg):
    array, params, precisions = cfg
    rng = np.random.default_rng(zlib.crc32(_pe_id(cfg).encode()))
    cases, component = [], None
    for k, (wrt, art) in enumerate(precisions or [(params["wbits"], params["abits"])]):
        folds = [int(f) for f in rng.integers(1, 5, size=12)]
        case = pe_cases.make_case(
            array, {**params, "wbits_rt": wrt, "abits_rt": art, "folds": folds}, rng
        )
        if component is None:
            component = case.build()
        cases += _replay(case, f"{case.name}", k)
    _check(rtl_run, component, cases)


# --------------------------------------------------------------------------------------------
# FINN-style layers: the weights/thresholds are baked into the Verilog, so each build is one
# parameter set; its cases are many input vectors, replayed under all stall settings
# --------------------------------------------------------------------------------------------

LAYER_CONFIGS = [
    (
        "MVAU",
        dict(
            MW=12,
            MH=4,
            PE=2,
            SIMD=3,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=4,
            numSteps=3,
            output_kind="unsigned",
            numInputVectors=[24],
            array="parallel",
        ),
    ),
    (
        "MVAU",
        dict(
            MW=16,
            MH=4,
            PE=2,
            SIMD=4,
            input_kind="unsigned",
            input_bits=1,
            weight_kind="unsigned",
            weight_bits=1,
            binaryXnorMode=1,
            numSteps=1,
            numInputVectors=[24],
            array="parallel",
        ),
    ),
    (
        "MVAU",
        dict(
            MW=8,
            MH=4,
            PE=2,
            SIMD=2,
            input_kind="signed",
            input_bits=4,
            weight_kind="bipolar",
            weight_bits=1,
            noActivation=1,
            numInputVectors=[20],
            array="bitserial",
        ),
    ),
    (
        "MVAU",
        dict(
            MW=8,
            MH=6,
            PE=3,
            SIMD=4,
            input_kind="unsigned",
            input_bits=8,
            weight_kind="signed",
            weight_bits=2,
            numSteps=4,
            output_kind="signed",
            ActVal=-2,
            numInputVectors=[20],
            array="bitfusion",
        ),
    ),
    (
        "Thresholding",
        dict(
            NumChannels=6,
            PE=3,
            input_kind="signed",
            input_bits=8,
            numSteps=7,
            output_kind="unsigned",
            numInputVectors=[40],
        ),
    ),
    (
        "Thresholding",
        dict(
            NumChannels=4,
            PE=2,
            input_kind="unsigned",
            input_bits=4,
            numSteps=1,
            output_kind="bipolar",
            shared=True,
            numInputVectors=[40],
        ),
    ),
    (
        "SlidingWindow",
        dict(
            ConvKernelDim=[3, 3],
            IFMChannels=4,
            IFMDim=[6, 5],
            SIMD=2,
            Stride=[1, 1],
            input_kind="unsigned",
            input_bits=2,
            images=2,
        ),
    ),
    (
        "SlidingWindow",
        dict(
            ConvKernelDim=[2, 2],
            IFMChannels=4,
            IFMDim=[6, 6],
            SIMD=2,
            Stride=[2, 2],
            depthwise=1,
            input_kind="signed",
            input_bits=4,
            images=2,
        ),
    ),
    (
        "FMPadding",
        dict(
            ImgDim=[4, 5],
            Padding=[1, 2, 2, 1],
            NumChannels=4,
            SIMD=2,
            input_kind="signed",
            input_bits=4,
            numInputVectors=3,
        ),
    ),
    (
        "Pool",
        dict(
            Channels=4,
            PE=2,
            KernelSize=[2, 2],
            OutImgDims=[3, 3],
            input_kind="unsigned",
            input_bits=4,
            BatchSize=3,
        ),
    ),
    (
        "LabelSelect",
        dict(Labels=10, PE=2, input_kind="signed", input_bits=8, numInputVectors=[30]),
    ),
    (
        "StreamingDataWidthConverter",
        dict(inWidth=24, outWidth=8, data_kind="unsigned", data_bits=4, inShape=[12, 6]),
    ),
    (
        "StreamingDataWidthConverter",
        dict(inWidth=6, outWidth=16, data_kind="signed", data_bits=2, inShape=[8, 12]),
    ),
]


def _layer_id(cfg) -> str:
    comp, p = cfg
    extra = p.get("array") or ("dw" if p.get("depthwise") else "")
    ik = p.get("input_kind") or p.get("data_kind")
    ib = p.get("input_bits") or p.get("data_bits")
    return f"{comp}-{extra}-{ik[0]}{ib}".replace("--", "-")


@pytest.mark.parametrize("cfg", LAYER_CONFIGS, ids=_layer_id)
def test_layer(rtl_run, cfg):
    component, params = cfg
    rng = np.random.default_rng(zlib.crc32(_layer_id(cfg).encode()))
    case = layer_cases.make_case(component, params, rng)
    _check(rtl_run, case.build(), _replay(case, _layer_id(cfg), 0))
