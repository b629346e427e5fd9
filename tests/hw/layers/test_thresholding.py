"""Thresholding (FINN Thresholding / qonnx MultiThreshold) against numpy and qonnx."""

import numpy as np
import pytest

from bitfab.hw.layers.thresholding import Thresholding
from tests.hw.layers.cases import Case, make_case, run_case
from tests.hw.layers.finn_exec import finn_dtype, onnx_execute
from tests.hw.layers.thresholding_cases import ref_multithreshold

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

KINDS_BITS = [
    ("unsigned", 1),
    ("unsigned", 2),
    ("unsigned", 4),
    ("unsigned", 8),
    ("signed", 3),
    ("signed", 8),
    ("bipolar", 1),
    ("unsigned", 5),
    ("signed", 6),
]


def random_params(seed: int) -> dict:
    r = np.random.default_rng(seed)
    kind, bits = KINDS_BITS[seed % len(KINDS_BITS)]
    pe = int(r.choice([1, 2, 3]))
    c = pe * int(r.integers(1, 4))
    steps = 1 if kind == "bipolar" else int(r.integers(1, 8))
    p = dict(
        NumChannels=c,
        PE=pe,
        input_kind=kind,
        input_bits=bits,
        numSteps=steps,
        shared=bool(r.integers(0, 2)),
        numInputVectors=[1, int(r.integers(1, 3)), 2],
    )
    if seed % 3 == 1:
        p.update(output_kind="signed", ActVal=-int(r.integers(1, 3)))
    if kind == "bipolar" and seed % 2:
        p.update(output_kind="bipolar", ActVal=0)
    return p


@pytest.mark.parametrize("seed", range(9))
def test_random_cases_with_backpressure(seed):
    case = make_case("Thresholding", random_params(seed), np.random.default_rng(seed))
    case = Case.from_json(case.to_json())  # the case survives JSON (Verilator harness)
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


def test_full_rate_cycles():
    p = dict(
        NumChannels=8,
        PE=2,
        input_kind="unsigned",
        input_bits=4,
        numSteps=15,
        numInputVectors=[1, 3, 3],
    )
    case = make_case("Thresholding", p, np.random.default_rng(0))
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    exp = case.build().cycles_per_image()
    assert exp == 8 // 2 * 9
    assert run.cycles <= exp + 3  # one word per cycle after a 2-cycle start


def test_reference_matches_qonnx_multithreshold():
    rng = np.random.default_rng(7)
    for kind, bits in [("unsigned", 4), ("signed", 3)]:
        lo, hi = (0, 15) if kind == "unsigned" else (-4, 3)
        x = rng.integers(lo, hi + 1, size=(1, 3, 2, 5))
        for rows in (5, 1):
            thr = np.sort(rng.integers(lo - 1, hi + 2, size=(rows, 4)), axis=1)
            got = onnx_execute(
                "MultiThreshold",
                dict(out_dtype="INT4", out_bias=-2.0, data_layout="NHWC"),
                x.astype(np.float32),
                x.shape,
                domain="qonnx.custom_op.general",
                in_dtype=finn_dtype(kind, bits),
                params=((thr, None, np.float32),),
            )
            np.testing.assert_array_equal(got, ref_multithreshold(x, thr, -2))


def test_finn_thresholding_node_matches_hardware():
    """FINN's own Thresholding.execute_node on the same data as the hardware case."""
    from bitfab.hw import packing
    from tests.hw.layers.finn_exec import finn_execute

    p = dict(
        NumChannels=4,
        PE=2,
        input_kind="signed",
        input_bits=4,
        numSteps=3,
        ActVal=-1,
        output_kind="signed",
        output_bits=3,
        numInputVectors=[1, 2, 2],
    )
    case = make_case("Thresholding", p, np.random.default_rng(3))
    x = np.array([packing.unpack(w, 4, 2, "signed") for w in case.inputs["i"]]).reshape(1, 2, 2, 4)
    thr = np.array(case.params["thresholds"])
    attrs = dict(
        NumChannels=4,
        PE=2,
        numSteps=3,
        inputDataType="INT4",
        weightDataType="INT6",
        outputDataType="INT3",
        ActVal=-1,
        numInputVectors=[1, 2, 2],
    )
    y = finn_execute(
        "Thresholding",
        attrs,
        x,
        x.shape,
        in_dtype="INT4",
        params=((thr, "INT6"),),
    )
    run = run_case(case, dut=Thresholding.from_finn(attrs, thr))  # built from FINN's attributes
    hw = [v for w in run.outputs["o"] for v in packing.unpack(w, 3, 2, "signed")]
    assert hw == y.reshape(-1).astype(int).tolist()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(NumChannels=6, PE=4), "PE"),
        (dict(input_bits=33), "input_bits"),
        (dict(input_kind="float"), "kind"),
        (dict(thresholds=[[1, 2]] * 3), "thresholds"),
        (dict(thresholds=[[0.5, 2]] * 4), "thresholds"),
        (dict(output_bits=1), "output_bits"),
        (dict(output_kind="bipolar", ActVal=1), "bipolar"),
        (dict(numInputVectors=[0]), "numInputVectors"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    base = dict(
        NumChannels=4,
        PE=2,
        thresholds=[[1, 2]] * 4,
        input_kind="unsigned",
        input_bits=4,
        output_bits=2,
    )
    base.update(kwargs)
    if "output_kind" in kwargs:
        base["thresholds"] = [[1]] * 4
    with pytest.raises(ValueError, match=match):
        Thresholding(**base)


def test_finn_data_type_names():
    from bitfab.hw.types import finn_kind_bits

    assert finn_kind_bits("UINT4") == ("unsigned", 4)
    assert finn_kind_bits(b"INT8") == ("signed", 8)
    assert finn_kind_bits("BINARY") == ("unsigned", 1)
    assert finn_kind_bits("BIPOLAR") == ("bipolar", 1)
    for bad in ("FLOAT32", "FIXED<8,4>", "INTX"):
        with pytest.raises(ValueError, match="data type"):
            finn_kind_bits(bad)


def test_from_finn_missing_attribute_raises():
    with pytest.raises(ValueError, match="NumChannels"):
        Thresholding.from_finn(dict(PE=1, inputDataType="UINT2", outputDataType="UINT2"), [[1]])


def test_layer_of_a_finn_tfc_graph():
    """The first layer of a FINN-converted TFC (raw pixels -> BINARY), built from the node's
    attributes, against FINN's golden tensors (tests/dataflow zoo model)."""
    from tests.hw.layers.graph_layers import run_graph_layer

    got, expected = run_graph_layer("tfc_w1a1", "Thresholding_0")
    assert got == expected


def _memories(dut) -> int:
    """Number of memories in the elaborated ``dut``."""
    from amaranth.hdl import Fragment
    from amaranth.hdl._mem import MemoryInstance

    def walk(frag) -> int:
        own = int(isinstance(frag, MemoryInstance))
        return own + sum(walk(sub) for sub, *_ in getattr(frag, "subfragments", []))

    return walk(Fragment.get(dut, None))


@pytest.mark.parametrize("seed", range(4))
def test_constant_thresholds_wide_pe(seed):
    """Shared thresholds (one row, as the input binarisation after the flatten has moved) and
    per-channel thresholds at PE == NumChannels are constants, not memories; outputs still
    match numpy on random inputs, with many lanes per word."""
    r = np.random.default_rng(100 + seed)
    kind, bits = [("unsigned", 8), ("signed", 4), ("unsigned", 1), ("unsigned", 3)][seed]
    c = int(r.choice([28, 49, 98]))
    shared = seed % 2 == 0
    pe = int(r.choice([d for d in range(7, c + 1) if c % d == 0])) if shared else c
    p = dict(
        NumChannels=c,
        PE=pe,
        input_kind=kind,
        input_bits=bits,
        numSteps=int(r.integers(1, 4)),
        shared=shared,
        numInputVectors=[1, int(r.integers(1, 4))],
    )
    case = make_case("Thresholding", p, r)
    dut = case.build()
    assert dut.const_thresholds and _memories(dut) == 0
    run = run_case(case, seed=seed, gap=0.2, stall=0.2)
    assert run.outputs == case.expected


def test_per_channel_folded_thresholds_use_memories():
    """Different rows with more than one fold per PE keep one threshold memory per PE; the same
    thresholds with all rows equal need none."""
    thr = np.sort(np.random.default_rng(5).integers(0, 16, size=(6, 3)), axis=1)
    thr[1] = thr[0] + 1  # rows differ
    kw = dict(NumChannels=6, PE=2, input_kind="unsigned", input_bits=4)
    dut = Thresholding(thresholds=thr, **kw)
    assert not dut.const_thresholds and _memories(dut) == 2
    same = Thresholding(thresholds=np.tile(thr[:1], (6, 1)), **kw)
    assert same.const_thresholds and _memories(same) == 0
