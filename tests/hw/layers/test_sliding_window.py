"""SlidingWindow (FINN ConvolutionInputGenerator) against numpy and qonnx Im2Col."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bitfab.hw import packing
from bitfab.hw.layers.sliding_window import SlidingWindow, SlidingWindowParallel
from bitfab.sim.amaranth_stream import run_streams
from tests.hw.arrays.pe_cases import rand_values
from tests.hw.layers.cases import Case, make_case, run_case, words_of
from tests.hw.layers.finn_exec import onnx_execute
from tests.hw.layers.sliding_window_cases import ref_sliding_window

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
    case = make_case("ConvolutionInputGenerator", random_params(seed), np.random.default_rng(seed))
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
    case = make_case("ConvolutionInputGenerator", p, np.random.default_rng(depthwise))
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
    from tests.hw.layers.cases import words_of
    from tests.hw.layers.finn_exec import finn_execute

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


def test_from_finn_refuses_dynamic_mode():
    attrs = dict(
        ConvKernelDim=[3, 3],
        IFMChannels=4,
        IFMDim=[5, 5],
        OFMDim=[3, 3],
        SIMD=2,
        inputDataType="UINT4",
        dynamic_mode=1,
    )
    with pytest.raises(ValueError, match="dynamic_mode"):
        SlidingWindow.from_finn(attrs)


@pytest.mark.slow
@pytest.mark.parametrize("node", [f"ConvolutionInputGenerator_{k}" for k in range(6)])
def test_layers_of_a_finn_cnv_graph(node):
    """Conv and (depthwise, before Pool) sliding windows of a FINN-converted CNV W2A2, built
    from the nodes' attributes, against FINN's golden tensors (depthwise outputs reordered to
    FINN's HW layout where SIMD < C)."""
    from tests.hw.layers.graph_layers import run_graph_layer

    got, expected = run_graph_layer("cnv_w2a2", node, gap=0, stall=0)
    assert got == expected


# --------------------------------------------------------------------------------------------
# parallel_window=1: one K_h x K_w x C window per output word
# --------------------------------------------------------------------------------------------


def parallel_case(p: dict, rng: np.random.Generator, images: int = 2) -> dict:
    """Input pixel words and expected window words of a parallel-window SWG for random images
    (the expected windows from the numpy Im2Col model ``ref_sliding_window``, K*C lanes)."""
    kh, kw = p["ConvKernelDim"]
    h, w = p["IFMDim"]
    c, kind, bits = p["IFMChannels"], p["input_kind"], p["input_bits"]
    imgs = rand_values(rng, kind, bits, (images, h, w, c))
    out = np.concatenate(
        [
            ref_sliding_window(im, (kh, kw), p["Stride"], p["Dilation"], c, depthwise=False)
            for im in imgs
        ]
    )
    return {
        "inputs": {"i": words_of(imgs, c, bits, kind)},
        "expected": {"o": words_of(out, kh * kw * c, bits, kind)},
    }


def random_parallel_params(r: np.random.Generator) -> dict:
    kind, bits = KINDS_BITS[int(r.integers(len(KINDS_BITS)))]
    kh, kw = (int(v) for v in r.integers(1, 4, size=2))
    dh, dw = (int(v) for v in r.choice([1, 1, 2], size=2))
    sh, sw = (int(v) for v in r.integers(1, 4, size=2))
    h = dh * (kh - 1) + 1 + int(r.integers(0, 4))
    w = dw * (kw - 1) + 1 + int(r.integers(0, 4))
    c = int(r.integers(1, 4))
    return dict(
        ConvKernelDim=[kh, kw],
        IFMChannels=c,
        IFMDim=[h, w],
        SIMD=c,
        Stride=[sh, sw],
        Dilation=[dh, dw],
        depthwise=int(r.integers(0, 2)),
        input_kind=kind,
        input_bits=bits,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), gap=st.sampled_from([0.0, 0.3, 0.7]))
def test_parallel_window_random_against_im2col(seed, gap):
    """Random kernel/stride/dilation/dims/channels/bits, two images back to back, random
    input gaps and output stalls: every window word equals numpy's Im2Col."""
    r = np.random.default_rng(seed)
    p = random_parallel_params(r)
    case = parallel_case(p, r)
    dut = SlidingWindowParallel(**p)
    stall = float(r.choice([0.0, 0.3, 0.7]))
    run = run_streams(
        dut, case["inputs"], {"o": len(case["expected"]["o"])}, seed=seed, gap=gap, stall=stall
    )
    assert run.outputs["o"] == case["expected"]["o"], p


@pytest.mark.parametrize(
    "k, s, d, hw_, c",
    [
        ((3, 3), (1, 1), (1, 1), (8, 7), 1),
        ((2, 3), (2, 1), (2, 1), (7, 6), 3),
        ((1, 1), (2, 2), (1, 1), (5, 5), 2),
    ],
)
def test_parallel_window_one_pixel_per_cycle(k, s, d, hw_, c):
    """Without gaps and stalls, 3 images take H*W cycles each (+ a fixed latency): the
    unit's ``cycles_per_image`` is what it does."""
    p = dict(
        ConvKernelDim=list(k),
        IFMChannels=c,
        IFMDim=list(hw_),
        SIMD=c,
        Stride=list(s),
        Dilation=list(d),
        input_kind="unsigned",
        input_bits=3,
    )
    r = np.random.default_rng(sum(hw_))
    case = parallel_case(p, r, images=3)
    dut = SlidingWindowParallel(**p)
    run = run_streams(dut, case["inputs"], {"o": len(case["expected"]["o"])})
    assert run.outputs["o"] == case["expected"]["o"]
    per_image = dut.cycles_per_image()
    assert per_image == hw_[0] * hw_[1]
    # the last window ends at or before the last pixel: 3 images in <= 3*H*W + latency
    assert 2 * per_image < run.cycles <= 3 * per_image + 2


def test_parallel_window_output_stall_holds_input():
    """A sink that never takes the first window: the unit accepts pixels up to that window's
    last one and then nothing more (no window is dropped or overwritten)."""
    from amaranth.sim import Simulator

    p = dict(
        ConvKernelDim=[2, 2],
        IFMChannels=2,
        IFMDim=[4, 4],
        SIMD=2,
        input_kind="unsigned",
        input_bits=4,
    )
    dut = SlidingWindowParallel(**p)
    taken = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        for n in range(12):
            ctx.set(dut.i.payload, n)
            await ctx.delay(1e-9)
            if ctx.get(dut.i.ready):
                taken.append(n)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # window (0, 0) ends at pixel W + 1 = 5 (the 6th); it is latched, then the input stops
    assert taken == list(range(6))


def test_parallel_window_matches_finn_execute_node():
    """FINN's own execute_node with ``parallel_window=1`` (reshaped to its folded output
    shape) against the hardware built by ``from_finn``."""
    from tests.hw.layers.finn_exec import finn_execute

    rng = np.random.default_rng(5)
    h, w, c, k, s, d = 7, 6, 2, (3, 2), (2, 1), (1, 2)
    img = rng.integers(0, 8, size=(1, h, w, c))
    oh, ow = (h - d[0] * (k[0] - 1) - 1) // s[0] + 1, (w - d[1] * (k[1] - 1) - 1) // s[1] + 1
    attrs = dict(
        ConvKernelDim=list(k),
        IFMChannels=c,
        IFMDim=[h, w],
        OFMDim=[oh, ow],
        SIMD=c,
        Stride=list(s),
        Dilation=list(d),
        inputDataType="UINT3",
        outputDataType="UINT3",
        parallel_window=1,
    )
    y = finn_execute(
        "ConvolutionInputGenerator", attrs, img, (1, oh, ow, k[0] * k[1] * c), in_dtype="UINT3"
    )
    dut = SlidingWindow.from_finn(attrs)
    assert isinstance(dut, SlidingWindowParallel)
    lanes = k[0] * k[1] * c
    run = run_streams(
        dut, {"i": words_of(img, c, 3, "unsigned")}, {"o": oh * ow}, gap=0.2, stall=0.2
    )
    hw = [v for wd in run.outputs["o"] for v in packing.unpack(wd, 3, lanes, "unsigned")]
    assert hw == y.reshape(-1).astype(int).tolist()


def test_parallel_window_needs_simd_equal_channels():
    attrs = dict(
        ConvKernelDim=[3, 3],
        IFMChannels=4,
        IFMDim=[5, 5],
        OFMDim=[3, 3],
        SIMD=2,
        inputDataType="UINT4",
        parallel_window=1,
    )
    with pytest.raises(ValueError, match="SIMD == IFMChannels"):
        SlidingWindow.from_finn(attrs)
    # through the compiler: a BitfabError naming the layer and the constraint
    from bitfab.errors import BitfabError
    from bitfab.hw.compiler import LayerSpec

    spec = LayerSpec("ConvolutionInputGenerator_7", "ConvolutionInputGenerator", attrs)
    with pytest.raises(BitfabError, match=r"ConvolutionInputGenerator_7.*SIMD == IFMChannels"):
        spec.build()


@pytest.mark.verilator
def test_parallel_window_in_verilator(rtl_run):
    """Two structural configurations as Verilog in Verilator (cocotb), each replaying random
    images under several gap/stall settings, against the numpy Im2Col model."""
    from bitfab.sim.rtl_runner import case_dict

    configs = [
        dict(
            ConvKernelDim=[3, 3],
            IFMChannels=1,
            IFMDim=[9, 8],
            SIMD=1,
            Stride=[1, 1],
            Dilation=[1, 1],
            input_kind="unsigned",
            input_bits=2,
        ),
        dict(
            ConvKernelDim=[2, 3],
            IFMChannels=3,
            IFMDim=[8, 9],
            SIMD=3,
            Stride=[2, 1],
            Dilation=[1, 2],
            depthwise=1,
            input_kind="signed",
            input_bits=4,
        ),
    ]
    for n, p in enumerate(configs):
        r = np.random.default_rng(40 + n)
        cases = [
            case_dict(
                parallel_case(p, r, images=2), name=f"pw{n}/g{g}/s{s}", gap=g, stall=s, seed=j
            )
            for j, (g, s) in enumerate([(0.0, 0.0), (0.3, 0.3), (0.6, 0.1), (0.1, 0.6)])
        ]
        res = rtl_run(SlidingWindowParallel(**p), cases)
        assert res.passed, f"{res.message} (simulator log: {res.log})"
        assert len(res.cases) == len(cases)
