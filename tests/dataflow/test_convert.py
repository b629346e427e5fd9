"""QONNX -> HW-layer graph for every test family: structure, golden class vs QONNX, data types."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper

from bitfab.dataflow.folding import HW_OP_TYPES
from bitfab.dataflow.golden import GoldenModel, check_agreement
from tests.dataflow.zoo_small import FAMILIES

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_graph_is_all_hw_layers(family, dataflow_models):
    path, report = dataflow_models[family]
    model = ModelWrapper(str(path))
    ops = [n.op_type for n in model.graph.node]
    assert set(ops) <= set(HW_OP_TYPES), ops
    assert all(n.domain == "finn.custom_op.fpgadataflow" for n in model.graph.node)
    assert ops[-1] == "LabelSelect" and "MVAU" in ops
    inp = model.graph.input[0].name
    assert model.get_tensor_datatype(inp).name == "UINT8"
    assert int(np.prod(model.get_tensor_shape(inp))) == 784
    assert report["op_types"] == sorted(set(ops))
    assert [ly["name"] for ly in report["layers"]] == [n.name for n in model.graph.node]
    if family.startswith("cnv"):
        assert {"ConvolutionInputGenerator", "Pool"} <= set(ops)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_golden_class_matches_qonnx(family, qonnx_models, dataflow_models, images):
    path, _ = dataflow_models[family]
    rep = check_agreement(qonnx_models[family], path, images, batch=32)
    assert rep.images == len(images)
    assert rep.real_mismatches == [], rep.summary()
    # every accepted disagreement is a true tie of the integer scores in the dataflow graph
    # (read here from the last MVAU's output tensor, independently of GoldenModel.scores)
    if rep.ties:
        gm = GoldenModel(path)
        last = [n for n in gm.layer_names if n.startswith("MVAU")][-1]
        classes, tensors = gm.layer_tensors(images[rep.ties])
        scores = tensors[last].reshape(len(rep.ties), -1)
        for k, i in enumerate(rep.ties):
            assert scores[k, rep.reference[i]] == scores[k].max() == scores[k, classes[k]]
            assert classes[k] < rep.reference[i]  # lowest tied index wins
    assert len(rep.ties) <= len(images) // 4  # ties are the exception, not the rule
    # not all images fall in one class (the comparison is not trivially satisfied)
    assert len(set(rep.golden.tolist())) >= 2


@pytest.mark.parametrize("family", ["tfc_w1a1", "tfc_mixed", "cnv_w2a2"])
def test_layer_tensors_are_integers_in_their_types(family, dataflow_models, images):
    path, _ = dataflow_models[family]
    gm = GoldenModel(path)
    classes, tensors = gm.layer_tensors(images[:8])
    assert set(tensors) == {"input", *gm.layer_names}
    for name, t in tensors.items():
        assert t.shape[0] == 8, name
        assert np.array_equal(t, np.round(t)), name
        dt = gm.datatype(name)
        assert dt.is_integer() and np.all(dt.allowed(t)), (name, dt.name, t.min(), t.max())
    assert np.array_equal(tensors[gm.layer_names[-1]].reshape(-1), classes)
    assert np.array_equal(tensors["input"].reshape(8, -1), images[:8].reshape(8, -1))


def test_first_layer_absorbs_pixel_scaling(dataflow_models):
    """The /255 lives in the first thresholds: they are on the 0..255 pixel scale."""
    path, report = dataflow_models["tfc_w1a1"]
    first = report["layers"][0]
    assert first["op_type"] == "Thresholding" and first["input"]["dtype"] == "UINT8"
    model = ModelWrapper(str(path))
    thr = model.get_initializer(model.graph.node[0].input[1])
    # the bipolar input quantizer of 2x-1 flips sign at pixel/255 = 0.5
    assert thr.size == 1 and 127 <= float(thr.ravel()[0]) <= 128


def _one_node_graph(op_type: str, domain: str) -> ModelWrapper:
    from onnx import TensorProto, helper
    from qonnx.util.basic import qonnx_make_model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node(op_type, ["x"], ["y"], name=f"{op_type}_0", domain=domain)
    return ModelWrapper(qonnx_make_model(helper.make_graph([node], "g", [x], [y])))


@pytest.mark.parametrize(
    ("op_type", "domain", "says"),
    [
        ("Sin", "", "no FINN HW-layer conversion that bitfab runs maps this Sin node"),
        (
            "StreamingDataWidthConverter",
            "finn.custom_op.fpgadataflow",
            "FINN made it a HW layer, but bitfab's dataflow stage does not support "
            "StreamingDataWidthConverter",
        ),
    ],
)
def test_unsupported_op_hint(op_type, domain, says):
    """The refusal names the node and says which side lacks the layer, listing bitfab's HW layers
    (FMPadding among them), instead of claiming FINN has no HW layer for it."""
    from bitfab.dataflow.convert import check_all_hw
    from bitfab.errors import BitfabError

    with pytest.raises(BitfabError) as e:
        check_all_hw(_one_node_graph(op_type, domain), "m.onnx")
    msg = str(e.value)
    assert msg.startswith(f"m.onnx: node {op_type}_0 ({op_type}) stays outside the HW layers")
    assert says in msg and "FMPadding" in msg and "\n" not in msg
    assert "FINN has no HW layer" not in msg


def test_fmpadding_is_a_hw_layer():
    """A FINN FMPadding node counts as a bitfab HW layer (it used to be refused)."""
    from bitfab.dataflow.convert import non_hw_nodes

    assert "FMPadding" in HW_OP_TYPES
    assert non_hw_nodes(_one_node_graph("FMPadding", "finn.custom_op.fpgadataflow")) == []
