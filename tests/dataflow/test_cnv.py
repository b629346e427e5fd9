"""brevitas_examples' CNV (FINN's flagship CNN, 3 x 32 x 32 input; untrained, pretrained=False)
through the dataflow stage: the NCHW -> NHWC input transpose leaves the graph (recorded as the
input's ``perm``), and the dataflow graph agrees with the QONNX model on random pixel images."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bitfab.dataflow import make_dataflow
from bitfab.dataflow.golden import GoldenModel, check_agreement
from bitfab.dataflow.inputs import random_inputs, to_graph_order


@pytest.fixture(scope="module")
def cnv(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    path = tmp_path_factory.mktemp("cnv") / "cnv_1w1a.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model, _ = model_with_cfg("cnv_1w1a", pretrained=False)
        model.eval()
        export_qonnx(model, input_t=torch.rand(1, 3, 32, 32), export_path=str(path), dynamo=False)
    df, rep = make_dataflow(path, target_cycles=50000)
    return path, df, rep


def test_cnv_converts_with_an_nhwc_input(cnv):
    _, df, rep = cnv
    assert rep["input"]["encoding"] == "pixels" and rep["input"]["model_shape"] == [1, 3, 32, 32]
    assert rep["input"]["shape"] == [1, 32, 32, 3]
    assert set(rep["op_types"]) == {
        "ConvolutionInputGenerator", "LabelSelect", "MVAU", "Pool", "Thresholding",
    }  # fmt: skip
    assert rep["self_check"]["mismatches"] == 0
    gm = GoldenModel(df)
    assert gm.input_rec["perm"] == [0, 2, 3, 1]
    x = random_inputs(gm.input_rec, 2, seed=0)  # model order: NCHW
    nhwc = to_graph_order(gm.input_rec, x).reshape(2, 32, 32, 3)
    assert np.array_equal(nhwc, x.transpose(0, 2, 3, 1))


def test_cnv_agrees_with_qonnx_on_random_images(cnv):
    path, df, _ = cnv
    x = random_inputs(GoldenModel(df).input_rec, 24, seed=9)
    rep = check_agreement(path, df, x, batch=24)
    assert rep.agree, rep.summary()["mismatches"][:3]
    assert len(set(rep.golden.tolist())) >= 2  # not a constant class
