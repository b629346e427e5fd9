"""The accelerator compiler: dataflow.onnx -> layer list (bitfab.hw.compiler).

The model under test is a real one: ``bitfab train`` (tfc W1A1, 1 epoch on 300 digits) and
``bitfab dataflow --target-cycles`` make it once; it is kept in pytest's cache folder
(``tiny_dataflow``), which the other accelerator tests share.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from bitfab.errors import BitfabError
from bitfab.hw import packing
from bitfab.hw.compiler import (
    SUPPORTED_OPS,
    StreamFormat,
    compile_graph,
    load_array_config,
    tensor_words,
    words_tensor,
)

ROOT = Path(__file__).resolve().parents[2]
#: (model, wbits, abits, folding target cycles); bump the version to rebuild the cached models
TINY = {"w1a1": ("tfc", 1, 1, 200), "w2a2": ("tfc", 2, 2, 400)}
VERSION = "v1"


def tiny_dataflow(cache_root: Path, name: str = "w1a1") -> Path:
    """``dataflow.onnx`` of a tiny trained model (built once, then reused from the cache).

    pytest-xdist runs session fixtures once per worker, so two workers can ask for the same model
    at the same moment: an exclusive file lock makes one build it while the other waits.
    """
    model, wb, ab, target = TINY[name]
    out = cache_root / f"{name}-{VERSION}"
    df = out / "df" / "dataflow.onnx"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f"{name}-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if df.exists():
            return df
        py = [sys.executable, "-m", "bitfab"]
        steps = [
            [*py, "train", "--model", model, "--wbits", str(wb), "--abits", str(ab), "--epochs",
             "1", "--limit", "300", "--dataset", "digits", "--out", str(out / "train"), "--quiet",
             "--check-images", "20"],
            [*py, "dataflow", str(out / "train" / "model.onnx"), "--out", str(out / "df"),
             "--target-cycles", str(target)],
        ]  # fmt: skip
        for cmd in steps:
            done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            assert done.returncode == 0, f"{' '.join(cmd[2:4])} failed:\n{done.stderr}"
    return df


@pytest.fixture(scope="session")
def tiny_df(request) -> Path:
    return tiny_dataflow(Path(request.config.cache.mkdir("bitfab_accel")))


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _word_width(node, side: str) -> int:
    """Stream word width computed straight from FINN's attributes (independent of the
    compiler): lanes x bits of the input or output data type."""
    a = _attrs(node)
    op = node.op_type
    dt = a["inputDataType" if side == "in" else "outputDataType"]
    dt = dt.decode() if isinstance(dt, bytes) else dt
    bits = 1 if dt in ("BINARY", "BIPOLAR") else int(dt.lstrip("UINT"))
    if op == "MVAU":
        lanes = a["SIMD"] if side == "in" else a["PE"]
    elif op == "LabelSelect":
        lanes = a["PE"] if side == "in" else 1
    else:
        lanes = a.get("PE", a.get("SIMD", 1))
    return lanes * bits


def test_layers_in_graph_order_with_converters_where_words_differ(tiny_df):
    g = compile_graph(tiny_df, "bitserial")
    nodes = list(onnx.load(tiny_df).graph.node)
    finn = [ly for ly in g.layers if not ly.inserted]
    assert [ly.name for ly in finn] == [n.name for n in nodes]
    assert all(ly.array == "bitserial" for ly in finn if ly.op_type == "MVAU")
    # a converter exactly between the pairs whose word widths differ
    expect_dwc = [
        a.name
        for a, b in zip(nodes, nodes[1:], strict=False)
        if _word_width(a, "out") != _word_width(b, "in")
    ]
    got_dwc = [g.layers[i - 1].name for i, ly in enumerate(g.layers) if ly.inserted]
    assert got_dwc == expect_dwc
    for a, b in zip(g.layers, g.layers[1:], strict=False):
        assert a.fmt_out.width == b.fmt_in.width
        assert a.fmt_out.elements == b.fmt_in.elements
    assert g.output_meaning == "class index"
    assert g.input_fmt.bits == 8 and g.input_fmt.elements == 784


def test_unsupported_op_names_node_op_and_supported_set(tiny_df, tmp_path):
    m = onnx.load(tiny_df)
    m.graph.node[1].op_type = "VectorVectorActivation"
    bad = tmp_path / "bad.onnx"
    onnx.save(m, bad)
    with pytest.raises(BitfabError) as e:
        compile_graph(bad)
    msg = str(e.value)
    assert m.graph.node[1].name in msg and "VectorVectorActivation" in msg
    assert all(op in msg for op in SUPPORTED_OPS)


def test_unrealisable_folding_names_layer_and_constraint(tiny_df, tmp_path):
    m = onnx.load(tiny_df)
    node = next(n for n in m.graph.node if n.op_type == "MVAU")
    for a in node.attribute:
        if a.name == "SIMD":
            a.i = 9  # does not divide MW = 784
    bad = tmp_path / "bad_fold.onnx"
    onnx.save(m, bad)
    with pytest.raises(BitfabError) as e:
        compile_graph(bad)
    assert node.name in str(e.value)
    assert "SIMD" in str(e.value) or "lanes" in str(e.value)


def test_array_config_per_layer(tiny_df, tmp_path):
    mvaus = [n.name for n in onnx.load(tiny_df).graph.node if n.op_type == "MVAU"]
    cfg = tmp_path / "arrays.toml"
    cfg.write_text(f'array = "bitfusion"\n[layers]\n{mvaus[0]} = "bitserial"\n')
    default, per = load_array_config(cfg)
    g = compile_graph(tiny_df, default, per)
    arrays = {ly.name: ly.array for ly in g.layers if ly.op_type == "MVAU"}
    assert arrays[mvaus[0]] == "bitserial"
    assert all(arrays[n] == "bitfusion" for n in mvaus[1:])
    with pytest.raises(BitfabError, match="NoSuchLayer"):
        compile_graph(tiny_df, "parallel", {"NoSuchLayer": "bitserial"})
    with pytest.raises(BitfabError, match="expected one of"):
        compile_graph(tiny_df, "systolic")


@pytest.mark.parametrize(
    "kind,bits,lanes", [("unsigned", 8, 1), ("signed", 3, 4), ("bipolar", 1, 28), ("signed", 9, 8)]
)
def test_tensor_words_match_packing(kind, bits, lanes):
    rng = np.random.default_rng(bits * 10 + lanes)
    n, elems = 3, lanes * 5
    if kind == "bipolar":
        t = rng.choice([-1, 1], size=(n, elems))
    else:
        lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if kind == "signed" else (0, 1 << bits)
        t = rng.integers(lo, hi, size=(n, elems))
    fmt = StreamFormat(kind, bits, lanes, elems)
    words = tensor_words(t.astype(np.float32), fmt)
    flat = t.reshape(-1)
    ref = [packing.pack(flat[i : i + lanes], bits, kind) for i in range(0, flat.size, lanes)]
    assert words == ref
    assert np.array_equal(words_tensor(words, fmt), t.reshape(n, -1))


def test_depthwise_window_stream_order():
    # (K, C) tensor order -> (C/SIMD, K, SIMD) stream order, as FINN's Pool expects
    kk, c, simd = 4, 6, 2
    t = np.arange(kk * c).reshape(1, kk * c)  # element value = k*C + ch
    fmt = StreamFormat("unsigned", 8, simd, kk * c, (kk, c))
    words = tensor_words(t, fmt)
    order = [v for w in words for v in packing.unpack(w, 8, simd)]
    ref = [k * c + cf * simd + s for cf in range(c // simd) for k in range(kk) for s in range(simd)]
    assert order == ref
