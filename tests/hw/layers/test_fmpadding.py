"""FMPadding (FINN FMPadding) against numpy and ONNX Pad."""

import numpy as np
import pytest

from bitfab.hw import packing
from bitfab.hw.layers.fmpadding import FMPadding
from tests.hw.layers.cases import Case, make_case, run_case
from tests.hw.layers.finn_exec import onnx_execute
from tests.hw.layers.fmpadding_cases import ref_fmpadding

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_with_backpressure(seed):
    r = np.random.default_rng(seed)
    simd = int(r.choice([1, 2, 4]))
    kind, bits = [("unsigned", 1), ("signed", 4), ("unsigned", 8), ("signed", 2)][seed % 4]
    p = dict(
        ImgDim=[int(r.integers(1, 4)), int(r.integers(1, 4))],
        Padding=[int(v) for v in r.integers(0, 3, size=4)],
        NumChannels=simd * 2,
        SIMD=simd,
        input_kind=kind,
        input_bits=bits,
        numInputVectors=2,
    )
    case = Case.from_json(make_case("FMPadding", p, r).to_json())
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


def test_full_rate_cycles():
    p = dict(
        ImgDim=[4, 3],
        Padding=[1, 2, 1, 0],
        NumChannels=4,
        SIMD=2,
        input_kind="unsigned",
        input_bits=3,
        numInputVectors=1,
    )
    case = make_case("FMPadding", p, np.random.default_rng(0))
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    exp = case.build().cycles_per_image()
    assert exp == 2 * 6 * 5
    assert run.cycles <= exp + 2


def test_reference_matches_onnx_pad():
    rng = np.random.default_rng(3)
    img = rng.integers(-4, 4, size=(1, 3, 4, 2))
    pad = [1, 0, 2, 1]  # FINN: [top, left, bottom, right]
    pads = np.array([0, pad[0], pad[1], 0, 0, pad[2], pad[3], 0])  # ONNX: begins, ends
    got = onnx_execute(
        "Pad",
        dict(mode="constant"),
        img.astype(np.float32),
        (1, 6, 5, 2),
        params=((pads, None, np.int64),),
    )
    np.testing.assert_array_equal(got, ref_fmpadding(img, pad))


BASE = dict(
    ImgDim=[3, 3], Padding=[1, 1, 1, 1], NumChannels=4, SIMD=2, input_kind="signed", input_bits=4
)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(SIMD=3), "SIMD"),
        (dict(Padding=[1, 1, 1]), "Padding"),
        (dict(Padding=[1, -1, 1, 1]), "Padding"),
        (dict(input_kind="bipolar", input_bits=1), "bipolar"),
        (dict(ImgDim=[0, 3]), "ImgDim"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FMPadding(**{**BASE, **kwargs})


def test_finn_node_matches_hardware():
    """FINN's own FMPadding.execute_node on the same image as the hardware."""
    from tests.hw.layers.cases import words_of
    from tests.hw.layers.finn_exec import finn_execute

    p = dict(
        ImgDim=[3, 4],
        Padding=[2, 1, 0, 1],
        NumChannels=4,
        SIMD=2,
        input_kind="signed",
        input_bits=4,
    )
    case = make_case("FMPadding", p, np.random.default_rng(8))
    img = np.array([v for wd in case.inputs["i"] for v in packing.unpack(wd, 4, 2, "signed")])
    img = img.reshape(1, 3, 4, 4)
    attrs = dict(ImgDim=[3, 4], Padding=[2, 1, 0, 1], NumChannels=4, SIMD=2, inputDataType="INT4")
    y = finn_execute(
        "FMPadding",
        attrs,
        img,
        (1, 5, 6, 4),
        in_dtype="INT4",
    )
    run = run_case(case, dut=FMPadding.from_finn(attrs))
    assert run.outputs["o"] == words_of(y.astype(int), 2, 4, "signed")
