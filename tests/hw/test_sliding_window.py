"""SlidingWindow (FINN ConvolutionInputGenerator) against numpy and qonnx Im2Col."""

import numpy as np
import pytest

from bitfab.hw.sliding_window import SlidingWindow
from tests.hw.layer_cases import Case, make_case, onnx_execute, ref_sliding_window, run_case

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

KINDS_BITS = [
    ("unsigned", 1),
    ("unsigned", 2),
    ("signed", 4),
    ("unsigned", 8),
    ("bipolar", 1),
    ("signed", 3),
]


def random_params(seed: int) -> dict:
    r = np.random.default_rng(100 + seed)
    kind, bits = KINDS_BITS[seed % len(KINDS_BITS)]
    simd = int(r.choice([1, 2]))
    c = simd * int(r.integers(1, 3))
    if seed % 5 == 4:  # 1-D
        kh, h, sh, dh = 1, 1, 1, 1
    else:
        kh, sh, dh = int(r.integers(1, 4)), int(r.integers(1, 3)), int(r.choice([1, 1, 2]))
        h = dh * (kh - 1) + 1 + int(r.integers(0, 3))
    kw, sw, dw = int(r.integers(1, 4)), int(r.integers(1, 3)), int(r.choice([1, 1, 2]))
    w = dw * (kw - 1) + 1 + int(r.integers(0, 3))
    return dict(
        ConvKernelDim=[kh, kw],
        IFMChannels=c,
        IFMDim=[h, w],
        SIMD=simd,
        Stride=[sh, sw],
        Dilation=[dh, dw],
        depthwise=seed % 2,
        input_kind=kind,
        input_bits=bits,
        images=2,
    )


@pytest.mark.parametrize("seed", range(12))
def test_random_cases_with_backpressure(seed):
    case = make_case("SlidingWindow", random_params(seed), np.random.default_rng(seed))
    case = Case.from_json(case.to_json())
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


@pytest.mark.parametrize("depthwise", [0, 1])
def test_conv_3x3_cycles_near_finn_estimate(depthwise):
    p = dict(
        ConvKernelDim=[3, 3],
        IFMChannels=4,
        IFMDim=[6, 6],
        SIMD=2,
        depthwise=depthwise,
        input_kind="unsigned",
        input_bits=4,
        images=2,
    )
    case = make_case("SlidingWindow", p, np.random.default_rng(depthwise))
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    exp = case.build().cycles_per_image()
    words_out = len(case.expected["o"]) // 2
    # output-bound layer: at most one output word per cycle, and no worse than FINN's RTL SWG
    assert words_out <= run.cycles / 2 <= exp + 4


def test_reference_matches_qonnx_im2col():
    rng = np.random.default_rng(9)
    for k, s, d, shape in [
        ((3, 3), (1, 1), (1, 1), (5, 6, 3)),
        ((2, 3), (2, 1), (1, 2), (6, 7, 2)),
        ((1, 3), (1, 2), (1, 1), (1, 7, 2)),
    ]:
        img = rng.integers(0, 16, size=shape)
        h, w, c = shape
        oh = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1
        ow = (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
        got = onnx_execute(
            "Im2Col",
            dict(
                stride=list(s),
                kernel_size=list(k),
                dilations=list(d),
                input_shape=f"(1,{h},{w},{c})",
            ),
            img[None].astype(np.float32),
            (1, oh, ow, k[0] * k[1] * c),
            domain="qonnx.custom_op.general",
            in_dtype="UINT4",
        )
        ref = ref_sliding_window(img, k, s, d, simd=c, depthwise=False)
        np.testing.assert_array_equal(got.reshape(-1), ref)
        # with SIMD == C the depthwise layout is the same stream
        np.testing.assert_array_equal(ref_sliding_window(img, k, s, d, c, True), ref)


BASE = dict(
    ConvKernelDim=[3, 3], IFMChannels=4, IFMDim=[5, 5], SIMD=2, input_kind="unsigned", input_bits=4
)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(SIMD=3), "SIMD"),
        (dict(ConvKernelDim=[6, 3]), "ConvKernelDim"),
        (dict(OFMDim=[4, 4]), "OFMDim"),
        (dict(Stride=[0, 1]), "Stride"),
        (dict(depthwise=2), "depthwise"),
        (dict(input_bits=9), "input_bits"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SlidingWindow(**{**BASE, **kwargs})


@pytest.mark.parametrize(
    "k, s, shape, simd, depthwise",
    [
        ((3, 3), (1, 1), (5, 5, 4), 2, 0),
        ((2, 2), (2, 2), (4, 6, 3), 3, 1),
        ((1, 3), (1, 2), (1, 7, 2), 1, 0),
    ],
)
def test_finn_node_matches_hardware(k, s, shape, simd, depthwise):
    """FINN's own ConvolutionInputGenerator.execute_node on the same image as the hardware."""
    from bitfab.hw import packing
    from tests.hw.layer_cases import finn_execute, words_of

    rng = np.random.default_rng(sum(shape))
    h, w, c = shape
    img = rng.integers(0, 8, size=(1, h, w, c))
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    attrs = dict(
        ConvKernelDim=list(k),
        IFMChannels=c,
        IFMDim=[h, w],
        OFMDim=[oh, ow],
        SIMD=simd,
        Stride=list(s),
        Dilation=[1, 1],
        inputDataType="UINT3",
        outputDataType="UINT3",
        depthwise=depthwise,
    )
    y = finn_execute(
        "ConvolutionInputGenerator",
        attrs,
        img,
        (1, oh, ow, k[0] * k[1] * c),
        in_dtype="UINT3",
    )
    dut = SlidingWindow.from_finn(attrs)
    from bitfab.sim.amaranth_stream import run_streams

    n_out = oh * ow * k[0] * k[1] * c // simd
    run = run_streams(
        dut, {"i": words_of(img, simd, 3, "unsigned")}, {"o": n_out}, gap=0.2, stall=0.2
    )
    hw = [v for wd in run.outputs["o"] for v in packing.unpack(wd, 3, simd, "unsigned")]
    assert hw == y.reshape(-1).astype(int).tolist()


@pytest.mark.parametrize("attr", ["parallel_window", "dynamic_mode"])
def test_from_finn_refuses_unsupported_modes(attr):
    attrs = dict(
        ConvKernelDim=[3, 3],
        IFMChannels=4,
        IFMDim=[5, 5],
        OFMDim=[3, 3],
        SIMD=2,
        inputDataType="UINT4",
        **{attr: 1},
    )
    with pytest.raises(ValueError, match=attr):
        SlidingWindow.from_finn(attrs)


@pytest.mark.slow
@pytest.mark.parametrize("node", [f"ConvolutionInputGenerator_{k}" for k in range(6)])
def test_layers_of_a_finn_cnv_graph(node):
    """Conv and (depthwise, before Pool) sliding windows of a FINN-converted CNV W2A2, built
    from the nodes' attributes, against FINN's golden tensors (depthwise outputs reordered to
    FINN's HW layout where SIMD < C)."""
    from tests.hw.layer_cases import run_graph_layer

    got, expected = run_graph_layer("cnv_w2a2", node, gap=0, stall=0)
    assert got == expected
