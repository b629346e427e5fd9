"""Performance model and FIFO sizing (bitfab.hw.perf, bitfab.hw.fifo_sizing) against cycle
counts measured in Amaranth's simulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from bitfab.dataflow.golden import GoldenModel
from bitfab.hw.accelerator import Accelerator
from bitfab.hw.compiler import compile_graph, tensor_words
from bitfab.sim.amaranth_stream import run_streams
from bitfab.sim.verify import load_test_images
from tests.hw.test_compiler import tiny_dataflow


@pytest.fixture(scope="session")
def tiny(request):
    root = Path(request.config.cache.mkdir("bitfab_accel"))
    return lambda name: tiny_dataflow(root, name)


@pytest.fixture(scope="session")
def tiny_df2(tiny) -> Path:
    return tiny("w2a2")


def _measure(acc: Accelerator, words: list[int], per_image: int, n: int) -> int:
    run = run_streams(acc, {"i": words[: n * per_image]}, {"o": n}, max_cycles=10**6)
    return run.cycles


def _measured_ii(acc, df, n_big=3) -> tuple[float, int]:
    """(cycles per image in steady state, latency of one image), measured."""
    imgs = load_test_images(n_big)
    _, t = GoldenModel(df).layer_tensors(imgs)
    words = tensor_words(t["input"], acc.graph.input_fmt)
    ipi = acc.graph.input_fmt.words
    c1 = _measure(acc, words, ipi, 1)
    c_big = _measure(acc, words, ipi, n_big)
    return (c_big - c1) / (n_big - 1), c1


@pytest.mark.parametrize(
    "model,array", [("w2a2", "parallel"), ("w2a2", "bitfusion"), ("w1a1", "bitserial")]
)
def test_estimated_cycles_per_image_within_10_percent(tiny, model, array):
    df = tiny(model)
    acc = Accelerator(compile_graph(df, array))
    ii, latency = _measured_ii(acc, df)
    assert abs(ii / acc.perf.ii - 1) <= 0.10, (ii, acc.perf.ii)
    assert abs(latency / acc.perf.latency - 1) <= 0.10, (latency, acc.perf.latency)
    # the per-layer figure of the bottleneck is the unit's own cycles_per_image
    b = next(
        u
        for s, u in zip(acc.graph.layers, acc.units, strict=False)
        if s.name == acc.perf.bottleneck
    )
    assert acc.perf.ii == b.cycles_per_image()


def test_fifo_sizing_reaches_the_initiation_interval_that_minimal_fifos_miss(tiny_df2):
    g = compile_graph(tiny_df2, "parallel")
    sized = Accelerator(g)
    for spec, c in zip(g.layers[1:], sized.fifo_choices, strict=False):
        if spec.op_type == "MVAU":
            unit = spec.build()
            assert c.depth >= unit.MW // unit.SIMD  # one whole input vector
    minimal = Accelerator(g, [2] * (len(g.layers) - 1))
    ii_sized, _ = _measured_ii(sized, tiny_df2)
    ii_min, _ = _measured_ii(minimal, tiny_df2)
    assert ii_sized <= 1.02 * sized.perf.ii
    assert ii_min > ii_sized  # the analysis is what makes the pipeline reach the estimate


def _swg_spec(attrs: dict, bits: int = 2):
    """A compiled-graph LayerSpec of one ConvolutionInputGenerator (stream formats from the
    attributes the way the compiler derives them) and its built unit."""
    from bitfab.hw.compiler import LayerSpec, StreamFormat

    (h, w), (oh, ow), c = attrs["IFMDim"], attrs["OFMDim"], attrs["IFMChannels"]
    kk = attrs["ConvKernelDim"][0] * attrs["ConvKernelDim"][1]
    lanes_out = attrs["SIMD"] * (kk if attrs.get("parallel_window") else 1)
    spec = LayerSpec(
        "ConvolutionInputGenerator_0",
        "ConvolutionInputGenerator",
        {**attrs, "inputDataType": f"UINT{bits}", "outputDataType": f"UINT{bits}"},
        fmt_in=StreamFormat("unsigned", bits, attrs["SIMD"], h * w * c),
        fmt_out=StreamFormat("unsigned", bits, lanes_out, oh * ow * kk * c),
    )
    return spec, spec.build()


PW_3X3 = dict(
    ConvKernelDim=[3, 3], IFMChannels=1, IFMDim=[28, 28], OFMDim=[26, 26], SIMD=1, parallel_window=1
)
#: parallel window with stride and dilation, last row and column unused
PW_STRIDED = dict(
    ConvKernelDim=[2, 3],
    IFMChannels=2,
    IFMDim=[12, 13],
    OFMDim=[6, 5],
    SIMD=2,
    Stride=[2, 2],
    Dilation=[1, 2],
    parallel_window=1,
)
#: default depthwise sliding window whose last three input rows (a third) are never used
DW_UNUSED_ROWS = dict(
    ConvKernelDim=[2, 2],
    IFMChannels=4,
    IFMDim=[9, 4],
    OFMDim=[2, 2],
    SIMD=2,
    Stride=[4, 2],
    depthwise=1,
)


@pytest.mark.parametrize(
    "attrs, gap",
    [(PW_3X3, 0.0), (PW_3X3, 0.6), (PW_STRIDED, 0.0), (PW_STRIDED, 0.6), (DW_UNUSED_ROWS, 0.6)],
    ids=[
        "pw3x3",
        "pw3x3-slow-input",
        "pw-strided",
        "pw-strided-slow-input",
        "dw-unused-rows-slow-input",
    ],
)
def test_sliding_window_estimate_against_simulation(attrs, gap):
    """One unit: the model's cycles per image (steady state, back to back; parallel windows)
    and latency of one image (first input to last output, input at full rate or every ~2.5 cycles) within 10 % of
    Amaranth simulation."""
    from bitfab.hw.perf import model_perf

    spec, unit = _swg_spec(attrs)
    n_in, n_out = spec.fmt_in.words, spec.fmt_out.words
    words = [k % 4 for k in range(3 * n_in)]
    one = run_streams(unit, {"i": words[:n_in]}, {"o": n_out}, gap=gap, seed=1)
    if gap == 0.0:
        if attrs.get("parallel_window"):  # (the default style's II is FINN's formula)
            three = run_streams(unit, {"i": words}, {"o": 3 * n_out})
            est = model_perf([spec], [unit], []).ii
            assert abs((three.cycles - one.cycles) / 2 / est - 1) <= 0.10
        latency = model_perf([spec], [unit], []).latency
    else:
        # input spread over the measured input time: the model's first/last input times
        from bitfab.hw.perf import layer_perf

        ly = layer_perf(spec, unit)
        s_in, l_in = 0.0, n_in * (1 / (1 - gap)) - 1
        latency = max(s_in + ly.cycles, s_in + ly.need_last * (l_in - s_in) + ly.tail) + ly.lat
    assert abs(one.cycles / latency - 1) <= 0.10, (one.cycles, latency)
