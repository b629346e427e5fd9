"""Every PTQ method's QONNX through the hardware flow: dataflow -> compile -> verify (RTL = golden).

Model: the tiny float tfc of ``test_ptq.tiny_float`` quantized to W2A2 with 128 digits images
(and once with a ZeroQ synthetic calibration set, the data-free path), then `bitfab dataflow` (FINN streamlining and HW layers), `bitfab compile` and `bitfab verify`
with Verilator on 200 Fashion-MNIST test images: zero mismatches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bitfab.dataflow.build import build_dataflow
from bitfab.hw.accelerator import compile_accelerator
from bitfab.models.ptq import METHODS, quantize
from bitfab.sim.verify import verify
from tests.models.test_ptq import float_ckpt  # noqa: F401 - session fixture

TARGET_CYCLES = 400
IMAGES = 200


@pytest.mark.verilator
@pytest.mark.parametrize(("method", "calib"), [*((m, 128) for m in METHODS), ("mse", "synthetic")])
def test_method_through_dataflow_compile_verify(float_ckpt, tmp_path: Path, method, calib):  # noqa: F811
    q = tmp_path / "q"
    m = quantize(
        float_ckpt, q, wbits=2, abits=2, method=method, calib=calib, synthetic_images=64,
        dataset="digits", check_images=50, progress=False,
    )  # fmt: skip
    assert m["export_check"]["ok"]
    assert m["calibration"]["kind"] == ("synthetic" if calib == "synthetic" else "train")
    df = build_dataflow(q / "model.onnx", tmp_path / "df", target_cycles=TARGET_CYCLES)
    assert "MVAU" in df["op_types"]
    compile_accelerator(tmp_path / "df" / "dataflow.onnx", tmp_path / "acc", "parallel")
    rep = verify(tmp_path / "acc", IMAGES, "verilator", chunk=IMAGES, write=False)
    assert rep["passed"], rep["first_mismatch"]
    assert rep["images"] >= IMAGES
