"""MVAU (FINN MatrixVectorActivation) over the PE arrays, against numpy, ONNX and qonnx."""

import importlib

import numpy as np
import pytest

from bitfab.hw import packing
from bitfab.hw.arrays import ARRAYS
from bitfab.hw.layers.mvau import MVAU
from tests.hw.layers.cases import Case, make_case, run_case
from tests.hw.layers.finn_exec import onnx_execute
from tests.hw.layers.mvau_cases import ref_mvau_acc
from tests.hw.layers.thresholding_cases import ref_multithreshold

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

# (input kind, bits, weight kind, bits, binaryXnorMode)
DTYPES = [
    ("unsigned", 1, "unsigned", 1, 1),  # BINARY x BINARY in XNOR mode
    ("bipolar", 1, "bipolar", 1, 0),  # BIPOLAR x BIPOLAR (FINN: popcount too)
    ("unsigned", 2, "signed", 2, 0),
    ("unsigned", 4, "signed", 4, 0),
    ("signed", 8, "signed", 8, 0),
    ("unsigned", 8, "bipolar", 1, 0),
    ("signed", 3, "unsigned", 5, 0),
    ("unsigned", 1, "signed", 3, 0),
]


def random_params(seed: int, array: str = "parallel") -> dict:
    r = np.random.default_rng(seed)
    ik, ib, wk, wb, xnor = DTYPES[seed % len(DTYPES)]
    pe, simd = int(r.choice([1, 2, 4])), int(r.choice([1, 2, 3]))
    p = dict(
        MW=simd * int(r.integers(1, 4)),
        MH=pe * int(r.integers(1, 3)),
        PE=pe,
        SIMD=simd,
        input_kind=ik,
        input_bits=ib,
        weight_kind=wk,
        weight_bits=wb,
        binaryXnorMode=xnor,
        numInputVectors=[1, int(r.integers(1, 3)), 2],
        array=array,
    )
    mode = (seed // len(DTYPES) + seed) % 3
    if mode == 0:
        p["noActivation"] = 1
    elif mode == 1:
        p.update(numSteps=int(r.integers(1, 8)))
    else:
        p.update(numSteps=3, ActVal=-1, output_kind="signed")
    if xnor and seed % 2:
        p.update(noActivation=0, numSteps=1, output_kind="bipolar", ActVal=0)
    return p


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_with_backpressure(seed):
    case = make_case("MVAU", random_params(seed), np.random.default_rng(seed))
    case = Case.from_json(case.to_json())
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


@pytest.mark.parametrize("array", ["bitserial", "bitfusion"])
def test_other_arrays(array):
    module, _ = ARRAYS[array]
    pytest.importorskip(module, reason=f"{module} has not landed yet")
    for seed in (2, 3):
        case = make_case("MVAU", random_params(seed, array), np.random.default_rng(seed))
        run = run_case(case, seed=seed, gap=0.2, stall=0.2)
        assert run.outputs == case.expected


def test_full_rate_cycles():
    p = dict(
        MW=8,
        MH=6,
        PE=2,
        SIMD=4,
        input_kind="unsigned",
        input_bits=2,
        weight_kind="signed",
        weight_bits=2,
        numSteps=3,
        numInputVectors=[1, 2, 2],
    )
    case = make_case("MVAU", p, np.random.default_rng(0))
    dut = case.build()
    exp = dut.cycles_per_image()
    assert exp == (6 // 2) * (8 // 4) * 4  # FINN get_exp_cycles: NF * SF * vectors
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    assert run.cycles <= exp + dut.array.latency + 4  # no bubbles between folds or vectors


def test_weight_memory_follows_finn_folding():
    rng = np.random.default_rng(1)
    w = rng.integers(-2, 2, size=(6, 4))
    dut = MVAU(
        MW=6,
        MH=4,
        PE=2,
        SIMD=3,
        weights=w,
        input_kind="unsigned",
        input_bits=2,
        weight_kind="signed",
        weight_bits=2,
        noActivation=1,
        output_bits=8,
        output_kind="signed",
    )
    words = dut.weight_memory_image()
    assert len(words) == (4 // 2) * (6 // 3)
    # FINN: PE p holds rows p, p+PE, ... of W.T; word (nf, sf) holds W.T[nf*PE+p, sf*SIMD+s]
    wt = w.T
    for nf in range(2):
        for sf in range(2):
            lanes = packing.unpack(words[nf * 2 + sf], 2, 6, "signed")
            for p in range(2):
                for s in range(3):
                    assert lanes[p * 3 + s] == wt[nf * 2 + p, sf * 3 + s]


def test_reference_matches_onnx_and_qonnx():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 4, size=(3, 8))
    w = rng.integers(-2, 2, size=(8, 5))
    got = onnx_execute("MatMul", {}, x.astype(np.float32), (3, 5), params=((w, None, np.float32),))
    np.testing.assert_array_equal(got, ref_mvau_acc(x, w, popcount=False))
    xb, wb = rng.integers(0, 2, size=(3, 8)), rng.integers(0, 2, size=(8, 5))
    got = onnx_execute(
        "XnorPopcountMatMul",
        {},
        xb.astype(np.float32),
        (3, 5),
        domain="qonnx.custom_op.general",
        in_dtype="BINARY",
        params=((wb, "BINARY", np.float32),),
    )
    np.testing.assert_array_equal(got, ref_mvau_acc(xb, wb, popcount=True))
    thr = np.sort(rng.integers(-4, 6, size=(5, 3)), axis=1)
    acc = ref_mvau_acc(x, w, popcount=False)
    got = onnx_execute(
        "MultiThreshold",
        dict(out_dtype="UINT2", data_layout="NC"),
        acc.astype(np.float32),
        acc.shape,
        domain="qonnx.custom_op.general",
        in_dtype="INT8",
        params=((thr, None, np.float32),),
    )
    np.testing.assert_array_equal(got, ref_multithreshold(acc, thr, 0))


@pytest.mark.parametrize("xnor", [0, 1])
def test_finn_mvau_node_matches_hardware(xnor):
    """FINN's own MVAU.execute_node on the same data as the hardware case."""
    from tests.hw.layers.finn_exec import finn_dtype, finn_execute

    if xnor:
        p = dict(
            MW=8,
            MH=4,
            PE=2,
            SIMD=4,
            input_kind="unsigned",
            input_bits=1,
            weight_kind="unsigned",
            weight_bits=1,
            binaryXnorMode=1,
            numSteps=2,
            numInputVectors=[1, 2, 2],
        )
    else:
        p = dict(
            MW=6,
            MH=4,
            PE=2,
            SIMD=3,
            input_kind="unsigned",
            input_bits=2,
            weight_kind="signed",
            weight_bits=3,
            numSteps=3,
            numInputVectors=[1, 2, 2],
        )
    case = make_case("MVAU", p, np.random.default_rng(11))
    cp = case.params
    idt = finn_dtype(cp["input_kind"], cp["input_bits"])
    wdt = finn_dtype(cp["weight_kind"], cp["weight_bits"])
    x = np.array(
        [
            packing.unpack(
                wd, cp["input_bits"], cp["SIMD"], "unsigned" if xnor else cp["input_kind"]
            )
            for wd in case.inputs["i"]
        ]
    )
    x = x.reshape(1, 2, 2, cp["MW"])
    odt = finn_dtype(cp["output_kind"], cp["output_bits"])
    attrs = dict(
        MW=cp["MW"],
        MH=cp["MH"],
        PE=cp["PE"],
        SIMD=cp["SIMD"],
        inputDataType=idt,
        weightDataType=wdt,
        outputDataType=odt,
        accDataType="INT32",
        binaryXnorMode=xnor,
        noActivation=0,
        ActVal=cp["ActVal"],
        numInputVectors=[1, 2, 2],
    )
    y = finn_execute(
        "MVAU",
        attrs,
        x,
        (1, 2, 2, cp["MH"]),
        in_dtype=idt,
        params=((np.array(cp["weights"]), wdt), (np.array(cp["thresholds"]), "INT32")),
    )
    dut = MVAU.from_finn(attrs, np.array(cp["weights"]), np.array(cp["thresholds"]))
    run = run_case(case, dut=dut)  # built from FINN's attributes
    hw = [
        v
        for wd in run.outputs["o"]
        for v in packing.unpack(wd, cp["output_bits"], cp["PE"], cp["output_kind"])
    ]
    assert hw == y.reshape(-1).astype(int).tolist()


BASE = dict(
    MW=4,
    MH=4,
    PE=2,
    SIMD=2,
    weights=np.ones((4, 4), int),
    input_kind="unsigned",
    input_bits=2,
    weight_kind="unsigned",
    weight_bits=2,
    noActivation=1,
    output_bits=8,
)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(PE=3), "PE"),
        (dict(SIMD=3), "SIMD"),
        (dict(input_bits=9), "input_bits"),
        (dict(weight_bits=0), "weight_bits"),
        (dict(weights=np.ones((4, 3), int)), "weights"),
        (dict(weights=np.full((4, 4), 5)), "weights"),
        (dict(binaryXnorMode=1), "binaryXnorMode"),
        (dict(output_bits=3), "output_bits"),
        (dict(noActivation=0), "thresholds"),
        (dict(thresholds=[[1]]), "thresholds"),
        (dict(array="systolic"), "array"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MVAU(**{**BASE, **kwargs})


def test_array_kinds_are_importable_names():
    # every array kind names a module/class pair; the parallel one must exist
    mod, cls = ARRAYS["parallel"]
    assert hasattr(importlib.import_module(mod), cls)


@pytest.mark.parametrize("node", ["MVAU_0", "MVAU_1", "MVAU_2"])
def test_layers_of_a_finn_tfc_graph(node):
    """XNOR MVAUs with thresholds and the last noActivation MVAU of a FINN-converted TFC W1A1,
    built from the nodes' attributes, against FINN's golden tensors."""
    from tests.hw.layers.graph_layers import run_graph_layer

    got, expected = run_graph_layer("tfc_w1a1", node)
    assert got == expected


@pytest.mark.slow
@pytest.mark.parametrize("node", [f"MVAU_{k}" for k in range(6)])
def test_layers_of_a_finn_cnv_graph(node):
    """Conv (numInputVectors [1, H, W]) and FC MVAUs of a FINN-converted CNV W2A2."""
    from tests.hw.layers.graph_layers import run_graph_layer

    got, expected = run_graph_layer("cnv_w2a2", node, gap=0, stall=0)
    assert got == expected
