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
