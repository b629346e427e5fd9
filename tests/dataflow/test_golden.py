"""Golden model: batched execution equals per-image execute_onnx; the agreement check can fail."""

from __future__ import annotations

import numpy as np
import pytest

from bitfab.dataflow.golden import GoldenModel, check_agreement, golden_classes
from bitfab.errors import BitfabError

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.mark.parametrize("family", ["tfc_w1a1", "cnv_w2a2"])
def test_batched_equals_per_image(family, dataflow_models, images):
    path, _ = dataflow_models[family]
    gm = GoldenModel(path)
    x = images[:6]
    c_batch, t_batch = gm.layer_tensors(x)
    for i in range(len(x)):
        c_one, t_one = gm.layer_tensors(x[i : i + 1])  # plain execute_onnx, batch 1
        assert c_one[0] == c_batch[i]
        for name in t_one:
            assert np.array_equal(t_one[name][0], t_batch[name][i]), (name, i)
    # classify with a batch that does not divide N (padded last chunk) agrees too
    assert np.array_equal(gm.classify(x, batch=4), c_batch)
    assert np.array_equal(golden_classes(path, x, batch=1), c_batch)


def test_agreement_detects_a_different_model(qonnx_models, dataflow_models, images):
    """Comparing a QONNX model with another model's dataflow graph reports real mismatches."""
    path, _ = dataflow_models["tfc_w2a2"]
    rep = check_agreement(qonnx_models["tfc_w4a4"], path, images, batch=64)
    assert len(rep.real_mismatches) > 0 and not rep.agree
    s = rep.summary()
    assert s["real_mismatch_count"] == len(rep.real_mismatches)
    assert s["mismatch_count"] == len(rep.mismatches) >= s["real_mismatch_count"]


def test_rejects_non_pixel_images(dataflow_models):
    path, _ = dataflow_models["tfc_w1a1"]
    with pytest.raises(BitfabError, match="uint8"):
        golden_classes(path, np.full((1, 28, 28), 300.0))
    with pytest.raises(BitfabError, match="784 pixels"):
        golden_classes(path, np.zeros((2, 27, 27), dtype=np.uint8))
