"""Already converted graphs in: FINN-ONNX (MultiThreshold + integer-annotated input) and HW-layer
graphs (a dataflow.onnx) enter the flow at their stage instead of being called float."""

from __future__ import annotations

import numpy as np
import pytest
from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.cleanup import cleanup_model

from bitfab.dataflow import make_dataflow
from bitfab.dataflow.golden import GoldenModel, QonnxReference
from bitfab.dataflow.inputs import random_inputs
from bitfab.dataflow.load import load_qonnx, model_format
from bitfab.dataflow.transforms import QuantizerInput
from bitfab.errors import BitfabError


def _finn_onnx(src, dst, codes: bool):
    """``src`` (QONNX) converted to FINN-ONNX as FINN's examples ship it; ``codes``: with the
    input quantizer's integer codes as the (annotated) graph input, else a float input."""
    m = cleanup_model(ModelWrapper(str(src)))
    if codes:
        m = m.transform(QuantizerInput())
    m = m.transform(ConvertQONNXtoFINN())
    for p in list(m.graph.metadata_props):
        m.graph.metadata_props.remove(p)  # a foreign FINN-ONNX file carries no bitfab record
    m.save(str(dst))
    return dst


def test_finn_onnx_with_integer_input_enters_after_conversion(foreign_models, tmp_path):
    src, _ = foreign_models[("regression", "legacy")]
    path = _finn_onnx(src, tmp_path / "finn.onnx", codes=True)
    assert model_format(load_qonnx(path).graph) == "finn"
    df, rep = make_dataflow(path)
    assert rep["op_types"] == ["MVAU"] and rep["self_check"]["mismatches"] == 0
    assert rep["input"]["dtype"] == "INT4" and rep["input"]["scale"] == 1.0
    assert rep["output"]["head"] == "values"
    # the same function as the QONNX model's conversion, on the same integer codes
    q_df, _ = make_dataflow(src)
    x = random_inputs(GoldenModel(q_df).input_rec, 200, seed=4)
    assert np.array_equal(GoldenModel(df).outputs(x), GoldenModel(q_df).outputs(x))


def test_finn_onnx_image_model_takes_pixels(qonnx_models, tmp_path, images):
    path = _finn_onnx(qonnx_models["tfc_w2a2"], tmp_path / "tfc_finn.onnx", codes=False)
    df, rep = make_dataflow(path)
    assert rep["input"]["encoding"] == "pixels" and rep["output"]["head"] == "class"
    ref = QonnxReference(qonnx_models["tfc_w2a2"])
    agree = GoldenModel(df).classify(images) == ref.classify(images)
    assert agree.mean() >= 0.95  # the rest: float ties (checked in test_golden)


def test_finn_onnx_float_feature_input_is_refused(foreign_models, tmp_path):
    src, _ = foreign_models[("tabular", "legacy")]
    path = _finn_onnx(src, tmp_path / "finn_float.onnx", codes=False)
    with pytest.raises(BitfabError, match=r"FINN-ONNX graph's input .* is FLOAT32 .*annotate"):
        make_dataflow(path)


def test_a_dataflow_graph_can_be_folded_again(foreign_models, tmp_path):
    src, _ = foreign_models[("regression", "legacy")]
    df, _ = make_dataflow(src)
    df.save(str(tmp_path / "dataflow.onnx"))
    again, rep = make_dataflow(tmp_path / "dataflow.onnx", target_cycles=50)
    assert rep["cycles_per_image"] <= 50 and rep["self_check"] is None
    assert rep["input"]["encoding"] == "codes" and rep["output"]["head"] == "values"
    x = random_inputs(GoldenModel(df).input_rec, 100, seed=1)
    assert np.array_equal(GoldenModel(again).outputs(x), GoldenModel(df).outputs(x))
