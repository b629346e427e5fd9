"""Foreign models' inputs and heads (examples/foreign_corpus.py, plain Brevitas, both
exporters): the dataflow graph takes the model's own input quantizer codes and returns what the
model returns (its class, or its values), checked against the QONNX model and against torch on
random inputs over the whole input grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bitfab.dataflow import make_dataflow
from bitfab.dataflow.golden import GoldenModel, check_agreement
from bitfab.dataflow.inputs import input_record, quantize, random_inputs, to_model_space
from bitfab.errors import BitfabError
from examples import foreign_corpus as fc

EXPORTERS = ("legacy", "dynamo")
#: model -> (head, input data type, graph output data type or None, op types)
EXPECTED = {
    "binary": ("values", "BIPOLAR", "BIPOLAR", ["MVAU"]),
    "tabular": ("class", "INT3", None, ["LabelSelect", "MVAU"]),
    "regression": ("values", "INT4", "INT4", ["MVAU"]),
    "softmax": ("class", "INT3", None, ["LabelSelect", "MVAU"]),
    "logsoftmax": ("class", "INT3", None, ["LabelSelect", "MVAU"]),
    "argmax": ("class", "INT3", None, ["LabelSelect", "MVAU"]),
    "topk": ("class", "INT3", None, ["LabelSelect", "MVAU"]),
    "perchannel": ("class", "INT3", None, ["LabelSelect", "MVAU"]),
}
N = 400


@pytest.fixture(scope="module")
def converted(foreign_models):
    """(name, exporter) -> (qonnx path, torch model, dataflow ModelWrapper, report)."""
    cache = {}

    def get(name, exporter):
        if (name, exporter) not in cache:
            path, model = foreign_models[(name, exporter)]
            df, rep = make_dataflow(path)
            cache[(name, exporter)] = (path, model, df, rep)
        return cache[(name, exporter)]

    return get


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", fc.MODELS)
def test_head_and_input_follow_the_model(converted, name, exporter):
    path, _, df, rep = converted(name, exporter)
    head, in_dtype, out_dtype, ops = EXPECTED[name]
    assert rep["output"]["head"] == head
    assert rep["input"]["encoding"] == "codes" and rep["input"]["dtype"] == in_dtype
    assert df.get_tensor_datatype(df.graph.input[0].name).name == in_dtype
    assert rep["op_types"] == ops
    if out_dtype is not None:
        assert df.get_tensor_datatype(df.graph.output[0].name).name == out_dtype
    assert rep["self_check"]["mismatches"] == 0
    tail = {"softmax": ["Softmax"], "logsoftmax": ["LogSoftmax"], "argmax": ["ArgMax"]}
    tail["topk"] = ["TopK"]
    assert rep["output"]["absorbed_tail"] == tail.get(name, [])


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", fc.MODELS)
def test_dataflow_graph_agrees_with_qonnx_on_random_inputs(converted, name, exporter):
    path, _, df, _ = converted(name, exporter)
    gm = GoldenModel(df)
    x = random_inputs(gm.input_rec, N, seed=7)
    rep = check_agreement(path, df, x, batch=N)
    assert rep.images == N and rep.agree, rep.summary()["mismatches"][:3]
    # ties (equal integer scores) are rare, not the rule
    assert len(rep.ties) <= N // 20


@pytest.mark.parametrize("name", fc.MODELS)
def test_outputs_are_not_constant(converted, name):
    """Before the fix, a one-output model got a label select over one class: class 0 always."""
    _, _, df, _ = converted(name, "legacy")
    gm = GoldenModel(df)
    out = gm.outputs(random_inputs(gm.input_rec, N, seed=3))
    distinct = {tuple(row) for row in out.tolist()}
    assert len(distinct) >= 2, distinct
    if name == "binary":
        assert distinct == {(-1.0,), (1.0,)}


@pytest.mark.parametrize("name", ["binary", "regression", "tabular"])
def test_golden_model_equals_torch_on_float_inputs(converted, name):
    """Independent of qonnx: float inputs quantized the way the model's input quantizer does
    (bitfab.dataflow.inputs.quantize) through the dataflow graph give the torch model's output
    (values head: scale * output + bias; class head: argmax up to integer-score ties)."""
    _, model, df, _ = converted(name, "legacy")
    gm = GoldenModel(df)
    torch.manual_seed(5)
    x = torch.randn(N, fc.FEATURES[name]) * 2
    codes = quantize(gm.input_rec, x.numpy())
    with torch.no_grad():  # torch's own input quantizer (dequantized floats)
        ref = model.inp(x).numpy().astype(np.float64)
    scale = np.asarray(gm.input_rec["scale"], dtype=np.float64)
    assert np.allclose(codes * scale, ref, atol=1e-6 * scale.max())
    y = fc.torch_outputs(model, x).numpy().astype(np.float64)
    if gm.head == "values":
        assert np.allclose(gm.values(codes), y.reshape(N, -1), atol=1e-4 * np.abs(y).max())
    else:
        cls = gm.classify(codes)
        scores = gm.scores(codes[cls != y.argmax(1)])
        wrong = np.flatnonzero(cls != y.argmax(1))
        for k, i in enumerate(wrong):  # only ties of the integer scores may differ
            assert scores[k, cls[i]] == scores[k, y[i].argmax()], i
        assert len(wrong) <= N // 20


def test_codes_round_trip_through_model_space(converted):
    _, _, df, _ = converted("regression", "legacy")
    rec = input_record(df)
    codes = random_inputs(rec, 50, seed=1)
    assert codes.min() >= -8 and codes.max() <= 7
    assert np.array_equal(quantize(rec, to_model_space(rec, codes)), codes.reshape(50, -1))


def test_class_head_on_one_output_is_refused(foreign_models):
    path, _ = foreign_models[("binary", "legacy")]
    with pytest.raises(BitfabError, match="1 output value, so a class head would answer class 0"):
        make_dataflow(path, head="class")


def test_values_head_on_an_argmax_tail_is_refused(foreign_models):
    path, _ = foreign_models[("argmax", "legacy")]
    with pytest.raises(BitfabError, match="ends in ArgMax, so its output is a class index"):
        make_dataflow(path, head="values")


def test_values_head_on_logits_keeps_the_scores(converted, foreign_models):
    """--head values on a classifier: the last layer's integer scores, times its scale."""
    path, _ = foreign_models[("tabular", "legacy")]
    df, rep = make_dataflow(path, head="values")
    assert rep["output"]["head"] == "values" and "LabelSelect" not in rep["op_types"]
    gm = GoldenModel(df)
    x = random_inputs(gm.input_rec, 100, seed=2)
    assert check_agreement(path, df, x, batch=100).agree


def test_pixel_input_mode_computes_the_same_function_as_codes(converted, foreign_models):
    """--input pixels on a feature model: uint8 inputs, the input quantizer becomes a
    Thresholding layer over pixel / 255; on the same float inputs (k / 255) both graphs give the
    same values (the codes graph fed what the model's quantizer makes of them)."""
    path, _ = foreign_models[("regression", "legacy")]
    pix_df, rep = make_dataflow(path, input_mode="pixels")
    assert rep["input"]["encoding"] == "pixels" and rep["input"]["dtype"] == "UINT8"
    assert "Thresholding" in rep["op_types"]  # the input quantizer, over pixels
    _, _, codes_df, _ = converted("regression", "legacy")
    pix, codes = GoldenModel(pix_df), GoldenModel(codes_df)
    p = random_inputs(pix.input_rec, 200, seed=8).reshape(200, -1)
    q = quantize(codes.input_rec, p / 255.0)
    assert np.allclose(pix.values(p), codes.values(q))


def test_values_head_on_a_softmax_tail_is_refused(foreign_models):
    path, _ = foreign_models[("softmax", "legacy")]
    with pytest.raises(BitfabError, match="ends in Softmax, so its output is probabilities"):
        make_dataflow(path, head="values")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"input_mode": "bytes"}, r"--input 'bytes': expected one of auto, pixels, codes"),
        ({"head": "logits"}, r"--head 'logits': expected one of auto, class, values"),
        ({"check": -1}, r"--check -1: must be 0 or more"),
    ],
)
def test_bad_options_are_named(foreign_models, kwargs, match):
    path, _ = foreign_models[("regression", "legacy")]
    with pytest.raises(BitfabError, match=match):
        make_dataflow(path, **kwargs)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", fc.REFUSED)
def test_unsupported_patterns_are_refused_by_name(foreign_models, name, exporter):
    """Residual adds, concats, average pools, per-logit scales: one clear error naming the
    pattern, raised by the dataflow stage (not later by compile)."""
    path, _ = foreign_models[(name, exporter)]
    with pytest.raises(BitfabError, match=fc.REFUSED[name]):
        make_dataflow(path)


def floor_avgpool(src, dst):
    """``src`` with every Trunc's rounding mode set to FLOOR (a lossy average pool FINN converts
    to QuantAvgPool: the window sum shifted right, floor)."""
    import onnx

    proto = onnx.load(str(src))
    for node in proto.graph.node:
        for a in node.attribute:
            if node.op_type == "Trunc" and a.name == "rounding_mode":
                a.s = b"FLOOR"
    onnx.save(proto, str(dst))
    return dst


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("variant", ["exact", "floor"])
def test_average_pools_convert_and_agree_with_qonnx(foreign_models, tmp_path, variant, exporter):
    """TruncAvgPool2d with 8 output bits (its ROUND truncation is exact: ExactTruncFloor) and a
    2-bit one made FLOOR (FINN QuantAvgPool with a right shift of 2): a Pool(QuantAvgPool) HW
    layer, and the dataflow graph agrees with the QONNX model on random images."""
    from qonnx.util.basic import get_by_name

    name = "avgpool" if variant == "exact" else "avgpool_lossy"
    path, _ = foreign_models[(name, exporter)]
    if variant == "floor":
        path = floor_avgpool(path, tmp_path / "floor.onnx")
    df, rep = make_dataflow(path)
    pools = [n for n in df.graph.node if n.op_type == "Pool"]
    assert [get_by_name(n.attribute, "Function").s for n in pools] == [b"QuantAvgPool"]
    out_bits = df.get_tensor_datatype(pools[0].output[0]).bitwidth()
    assert out_bits == (8 if variant == "exact" else 2)
    gm = GoldenModel(df)
    x = random_inputs(gm.input_rec, N, seed=6)
    assert check_agreement(path, df, x, batch=100).agree


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_strided_convolution_converts_and_agrees_with_qonnx(foreign_models, exporter):
    """A stride-2 3x3 convolution (FINN's sliding window with Stride 2) on a 1 x 8 x 8 image."""
    path, _ = foreign_models[("strided", exporter)]
    df, rep = make_dataflow(path)
    swgs = [ly for ly in rep["layers"] if ly["op_type"] == "ConvolutionInputGenerator"]
    assert [s["Stride"] for s in swgs] == [[1, 1], [2, 2]]
    gm = GoldenModel(df)
    assert check_agreement(path, df, random_inputs(gm.input_rec, N, seed=2), batch=100).agree
