"""Pool (FINN Pool: MaxPool and QuantAvgPool) against numpy and FINN's execute_node, and
SlidingWindow(depthwise) -> Pool against ONNX MaxPool (the pair FINN's InferPool emits)."""

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from bitfab.hw import packing
from bitfab.hw.layers.pool import Pool
from bitfab.hw.layers.sliding_window import SlidingWindow
from bitfab.sim.amaranth_stream import run_streams
from tests.hw.arrays.pe_cases import rand_values
from tests.hw.layers.cases import Case, make_case, run_case, words_of
from tests.hw.layers.finn_exec import onnx_execute

pytestmark = pytest.mark.filterwarnings("ignore:.*created but never used")

KINDS_BITS = [
    ("unsigned", 1),
    ("signed", 2),
    ("unsigned", 4),
    ("signed", 8),
    ("bipolar", 1),
    ("unsigned", 6),
]


@pytest.mark.parametrize("seed", range(6))
def test_random_cases_with_backpressure(seed):
    r = np.random.default_rng(seed)
    kind, bits = KINDS_BITS[seed % len(KINDS_BITS)]
    pe = int(r.choice([1, 2, 3]))
    p = dict(
        Channels=pe * int(r.integers(1, 3)),
        PE=pe,
        KernelSize=[int(r.integers(1, 4)), int(r.integers(1, 3))],
        OutImgDims=[int(r.integers(1, 3)), int(r.integers(1, 3))],
        input_kind=kind,
        input_bits=bits,
        BatchSize=int(r.integers(1, 3)),
    )
    case = Case.from_json(make_case("Pool", p, r).to_json())
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


def test_full_rate_cycles():
    p = dict(
        Channels=4, PE=2, KernelSize=[2, 2], OutImgDims=[3, 3], input_kind="unsigned", input_bits=4
    )
    case = make_case("Pool", p, np.random.default_rng(0))
    run = run_case(case, gap=0, stall=0)
    assert run.outputs == case.expected
    exp = case.build().cycles_per_image()
    assert exp == 4 * 4 // 2 * 9
    assert run.cycles <= exp + 2


class SwgPool(wiring.Component):
    """ConvolutionInputGenerator(depthwise=1) -> Pool, as FINN's InferPool builds them."""

    def __init__(self, swg: SlidingWindow, pool: Pool):
        self.swg, self.pool = swg, pool
        super().__init__({"i": swg.signature.members["i"], "o": pool.signature.members["o"]})

    def elaborate(self, platform):
        m = Module()
        m.submodules.swg, m.submodules.pool = self.swg, self.pool
        wiring.connect(m, self.swg.o, self.pool.i)
        wiring.connect(m, wiring.flipped(self.i), self.swg.i)
        wiring.connect(m, self.pool.o, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize(
    "kind, bits, c, pe, k, s, hw",
    [
        ("unsigned", 4, 4, 2, (2, 2), (2, 2), (4, 6)),
        ("signed", 3, 3, 1, (3, 3), (2, 2), (5, 5)),
        ("unsigned", 2, 2, 2, (3, 2), (1, 2), (4, 4)),
    ],
)
def test_swg_pool_chain_matches_onnx_maxpool(kind, bits, c, pe, k, s, hw):
    rng = np.random.default_rng(c * 10 + pe)
    h, w = hw
    img = rand_values(rng, kind, bits, (1, h, w, c))
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    ref = onnx_execute(
        "MaxPool",
        dict(kernel_shape=list(k), strides=list(s)),
        img.transpose(0, 3, 1, 2).astype(np.float32),
        (1, c, oh, ow),
    )
    ref = ref.transpose(0, 2, 3, 1).astype(int)  # NHWC
    swg = SlidingWindow(
        ConvKernelDim=list(k),
        IFMChannels=c,
        IFMDim=[h, w],
        SIMD=pe,
        Stride=list(s),
        depthwise=1,
        input_kind=kind,
        input_bits=bits,
    )
    pool = Pool(
        Channels=c, PE=pe, KernelSize=list(k), OutImgDims=[oh, ow], input_kind=kind, input_bits=bits
    )
    dut = SwgPool(swg, pool)
    expected = words_of(ref, pe, bits, kind)
    run = run_streams(
        dut, {"i": words_of(img, pe, bits, kind)}, {"o": len(expected)}, gap=0.2, stall=0.2
    )
    got = [v for wd in run.outputs["o"] for v in packing.unpack(wd, bits, pe, kind)]
    assert got == ref.reshape(-1).tolist()


BASE = dict(
    Channels=4, PE=2, KernelSize=[2, 2], OutImgDims=[2, 2], input_kind="unsigned", input_bits=4
)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(PE=3), "PE"),
        (dict(Function="AvgPool"), "Function"),
        (dict(output_bits=8), "MaxPool: the output data type must be the input's"),
        (dict(Function="QuantAvgPool", input_kind="bipolar", input_bits=1), "bipolar"),
        (dict(Function="QuantAvgPool", output_kind="signed", output_bits=4), "mix signed"),
        (dict(KernelSize=[2, 2, 2]), "KernelSize"),
        (dict(input_bits=0), "input_bits"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Pool(**{**BASE, **kwargs})


def test_finn_pool_node_matches_hardware():
    """FINN's own Pool.execute_node (MaxPool, PE = Channels as InferPool sets it)."""
    from tests.hw.layers.finn_exec import finn_execute

    p = dict(
        Channels=3, PE=3, KernelSize=[2, 3], OutImgDims=[2, 2], input_kind="signed", input_bits=5
    )
    case = make_case("Pool", p, np.random.default_rng(12))
    x = np.array([v for wd in case.inputs["i"] for v in packing.unpack(wd, 5, 3, "signed")])
    x = x.reshape(1, 2, 2, 6 * 3)
    attrs = dict(
        Channels=3,
        PE=3,
        KernelSize=[2, 3],
        Function="MaxPool",
        OutImgDims=[2, 2],
        InputDataType="INT5",
        OutputDataType="INT5",
        BatchSize=1,
    )
    y = finn_execute(
        "Pool",
        attrs,
        x,
        (1, 2, 2, 3),
        in_dtype="INT5",
    )
    run = run_case(case, dut=Pool.from_finn(attrs))
    assert run.outputs["o"] == words_of(y.astype(int), 3, 5, "signed")


@pytest.mark.slow
@pytest.mark.parametrize("node", ["Pool_0", "Pool_1"])
def test_layers_of_a_finn_cnv_graph(node):
    """InferPool's Pool nodes of a FINN-converted CNV W2A2 (PE < Channels), against FINN's
    golden tensors."""
    from tests.hw.layers.graph_layers import run_graph_layer

    got, expected = run_graph_layer("cnv_w2a2", node)
    assert got == expected


#: QuantAvgPool (kind, input bits, output bits): shifts 0 (wide output) and > 0 (narrow)
AVG_CASES = [("unsigned", 2, 8), ("unsigned", 4, 3), ("signed", 3, 4), ("signed", 4, 8),
             ("unsigned", 1, 2), ("signed", 2, 2)]  # fmt: skip


@pytest.mark.parametrize("seed", range(len(AVG_CASES)))
def test_quant_avg_pool_random_cases_with_backpressure(seed):
    """QuantAvgPool against the numpy sum-and-floor-shift (tests/hw/layers/pool_cases.py)."""
    from tests.hw.layers.pool_cases import case_avgpool

    r = np.random.default_rng(100 + seed)
    kind, ib, ob = AVG_CASES[seed]
    pe = int(r.choice([1, 2, 3]))
    p = dict(
        Channels=pe * int(r.integers(1, 3)),
        PE=pe,
        KernelSize=[int(r.integers(1, 4)), int(r.integers(2, 4))],
        OutImgDims=[int(r.integers(1, 3)), int(r.integers(1, 3))],
        input_kind=kind,
        input_bits=ib,
        output_bits=ob,
        BatchSize=int(r.integers(1, 3)),
    )
    case = case_avgpool(p, r)
    run = run_case(case, seed=seed, gap=0.3, stall=0.3)
    assert run.outputs == case.expected


@pytest.mark.parametrize("kind, ib, ob", [("unsigned", 2, 8), ("unsigned", 4, 3), ("signed", 3, 3)])
def test_finn_quant_avg_pool_node_matches_hardware(kind, ib, ob):
    """FINN's own Pool.execute_node with Function QuantAvgPool (PE = Channels, as InferPool
    sets it) on random windows: the hardware's words equal FINN's tensor."""
    from tests.hw.layers.finn_exec import finn_execute
    from tests.hw.layers.pool_cases import case_avgpool

    c, kh, kw, oh, ow = 3, 2, 3, 2, 2
    p = dict(Channels=c, PE=c, KernelSize=[kh, kw], OutImgDims=[oh, ow], input_kind=kind,
             input_bits=ib, output_bits=ob)  # fmt: skip
    case = case_avgpool(p, np.random.default_rng(ib * 10 + ob))
    x = np.array([v for wd in case.inputs["i"] for v in packing.unpack(wd, ib, c, kind)])
    x = x.reshape(1, oh, ow, kh * kw * c)
    dt = ("UINT" if kind == "unsigned" else "INT") + "{}"
    attrs = dict(
        Channels=c, PE=c, KernelSize=[kh, kw], Function="QuantAvgPool", OutImgDims=[oh, ow],
        InputDataType=dt.format(ib), OutputDataType=dt.format(ob), BatchSize=1,
    )  # fmt: skip
    y = finn_execute("Pool", attrs, x, (1, oh, ow, c), in_dtype=dt.format(ib))
    run = run_case(case, dut=Pool.from_finn(attrs))
    assert run.outputs["o"] == words_of(y.astype(int), c, ob, kind)
    assert run.outputs == case.expected  # and FINN equals the numpy reference
