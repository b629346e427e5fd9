"""The real model zoo (bitfab.models), untrained with random batch-norm statistics, through the
dataflow stage: golden class equals the QONNX class."""

from __future__ import annotations

import pytest
import torch

from bitfab.dataflow import make_dataflow
from bitfab.dataflow.golden import check_agreement

pytestmark = pytest.mark.filterwarnings("ignore")

CASES = {
    "tfc_mixed_in8": {"model": "tfc", "wbits": [2, 4, 4, 2], "abits": [4, 2, 4], "in_bits": 8},
    "cnv-s_w1a1": {"model": "cnv-s", "wbits": 1},
    "tfc_w1a1_in1": {"model": "tfc", "wbits": 1, "abits": 1, "in_bits": 1},
    "tfc_w2a2_in2": {"model": "tfc", "wbits": 2, "abits": 2, "in_bits": 2},
}


@pytest.mark.parametrize("case", list(CASES))
def test_zoo_model_golden_matches_qonnx(case, tmp_path, images):
    from bitfab.models.config import make_config
    from bitfab.models.export import export_model
    from bitfab.models.zoo import build_model

    torch.manual_seed(3)
    model = build_model(make_config(**CASES[case]))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    src = tmp_path / "model.onnx"
    export_model(model, src)
    df, report = make_dataflow(src)
    df.save(str(tmp_path / "dataflow.onnx"))
    assert report["layers"][-1]["op_type"] == "LabelSelect"
    if CASES[case].get("in_bits") == 8:  # the 8-bit pixel quantizer is an identity: removed
        assert report["layers"][0]["op_type"] == "MVAU"
        assert report["layers"][0]["input"]["dtype"] == "UINT8"
    if CASES[case].get("in_bits") in (1, 2):  # the input quantizer runs after the flatten
        first = report["layers"][0]
        steps = 2 ** CASES[case]["in_bits"] - 1
        assert first["op_type"] == "Thresholding" and first["NumChannels"] == 784
        assert first["input"]["dtype"] == "UINT8" and first["thresholds"] == steps  # one row
        assert first["numInputVectors"] == [1]
    rep = check_agreement(src, tmp_path / "dataflow.onnx", images, batch=64)
    assert rep.real_mismatches == [], rep.summary()
    assert len(set(rep.golden.tolist())) >= 2
