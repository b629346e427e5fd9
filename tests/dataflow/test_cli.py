"""``bitfab dataflow`` through ``bitfab.cli.main``: outputs, folding options and bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
from qonnx.core.modelwrapper import ModelWrapper

from bitfab.cli import main
from bitfab.dataflow.golden import GoldenModel
from tests.dataflow import zoo_small

pytestmark = pytest.mark.filterwarnings("ignore")


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ") and "Traceback" not in err[0]
    return err[0]


def test_writes_graph_and_report(qonnx_models, tmp_path, capsys, images):
    out = tmp_path / "df"
    assert (
        main(
            [
                "dataflow",
                str(qonnx_models["cnv_w2a2"]),
                "--out",
                str(out),
                "--target-cycles",
                "20000",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["dataflow.json", "dataflow.onnx"]
    rep = json.loads((out / "dataflow.json").read_text())
    model = ModelWrapper(str(out / "dataflow.onnx"))
    assert rep["folding"] == {"mode": "target_cycles", "target": 20000, "target_met": True}
    assert rep["cycles_per_image"] == max(ly["est_cycles"] for ly in rep["layers"]) <= 20000
    by_name = {n.name: n for n in model.graph.node}
    assert rep["bottleneck"] in by_name
    for ly in rep["layers"]:
        node = by_name[ly["name"]]
        assert ly["op_type"] == node.op_type
        attrs = {a.name: a.i for a in node.attribute if a.name in ("PE", "SIMD")}
        assert ly["PE"] == attrs.get("PE", 1) and ly["SIMD"] == attrs.get("SIMD", 1)
        assert ly["input_shape"] == model.get_tensor_shape(node.input[0])
        assert ly["output"]["dtype"] == model.get_tensor_datatype(node.output[0]).name
        if ly["op_type"] == "MVAU":
            assert ly["MH"] % ly["PE"] == 0 and ly["MW"] % ly["SIMD"] == 0
            assert ly["weight"]["bits"] >= 1 and ly["accumulator"]["bits"] >= 1
    # the written graph runs and gives one class per image
    classes = GoldenModel(out / "dataflow.onnx").classify(images[:4])
    assert classes.shape == (4,) and np.all((classes >= 0) & (classes < 10))
    assert "cycles/image" in capsys.readouterr().out


def test_lut_budget_and_given_folding(qonnx_models, tmp_path):
    src = str(qonnx_models["tfc_w2a2"])
    small, big = tmp_path / "small", tmp_path / "big"
    assert main(["dataflow", src, "--out", str(small), "--lut-budget", "2000"]) == 0
    assert main(["dataflow", src, "--out", str(big), "--lut-budget", "20000"]) == 0
    rs = json.loads((small / "dataflow.json").read_text())
    rb = json.loads((big / "dataflow.json").read_text())
    assert rs["lut_estimate"] <= 2000 and rb["lut_estimate"] <= 20000
    assert rb["cycles_per_image"] < rs["cycles_per_image"]
    fold = {
        ly["name"]: {"PE": ly["PE"], "SIMD": ly["SIMD"]}
        for ly in rb["layers"]
        if ly["op_type"] == "MVAU"
    }
    (tmp_path / "fold.json").write_text(json.dumps(fold))
    given = tmp_path / "given"
    assert (
        main(["dataflow", src, "--out", str(given), "--folding", str(tmp_path / "fold.json")]) == 0
    )
    rg = json.loads((given / "dataflow.json").read_text())
    assert {ly["name"]: ly["est_cycles"] for ly in rg["layers"] if ly["op_type"] == "MVAU"} == {
        ly["name"]: ly["est_cycles"] for ly in rb["layers"] if ly["op_type"] == "MVAU"
    }


def _float_onnx(path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()
    torch.onnx.export(model, torch.randn(1, 1, 28, 28), str(path), dynamo=False)
    return path


def _floatquant_onnx(path):
    """x -> FloatQuant (fp8 e4m3) -> MatMul -> y: a QONNX minifloat model."""
    import onnx
    from onnx import TensorProto
    from onnx import helper as oh
    from onnx import numpy_helper as nh

    consts = {"s": 1.0, "e": 4.0, "m": 3.0, "b": 7.0, "mx": 448.0, "W": np.ones((4, 2))}
    inits = [nh.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    fq = oh.make_node(
        "FloatQuant", ["x", "s", "e", "m", "b", "mx"], ["q"], domain="qonnx.custom_op.general"
    )
    mm = oh.make_node("MatMul", ["q", "W"], ["y"])
    io = [
        oh.make_tensor_value_info(n, TensorProto.FLOAT, s)
        for n, s in (("x", [1, 4]), ("y", [1, 2]))
    ]
    graph = oh.make_graph([fq, mm], "fp8", [io[0]], [io[1]], inits)
    onnx.save(oh.make_model(graph), str(path))
    return path


class _SigmoidTFC(zoo_small.TFC):
    def forward(self, x):
        return torch.sigmoid(super().forward(x))


class _ChannelNormTFC(zoo_small.TFC):
    """A per-channel BatchNorm after the last layer: cannot be absorbed into the argmax."""

    def __init__(self) -> None:
        super().__init__(2, 2)
        self.features[-1] = nn.BatchNorm1d(10)


def _with_bit_width(src, dst, bits: float):
    """``src`` with the bit width of its first weight Quant node set to ``bits``."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(src))
    inits = {t.name: t for t in proto.graph.initializer}
    node = next(n for n in proto.graph.node if n.op_type == "Quant" and n.input[3] in inits)
    inits[node.input[3]].CopyFrom(
        numpy_helper.from_array(np.array(bits, dtype=np.float32), node.input[3])
    )
    onnx.save(proto, str(dst))
    return dst


def _bad_inputs(tmp_path, qonnx_models):
    good = qonnx_models["tfc_w2a2"].read_bytes()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(good[: len(good) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00\xffnot a model" * 50)
    torch.manual_seed(0)
    return {
        "missing": (tmp_path / "nope.onnx", "no such file"),
        "truncated": (trunc, "truncated or corrupt"),
        "garbage": (garbage, "not a readable ONNX model|truncated"),
        "float": (
            _float_onnx(tmp_path / "float.onnx"),
            "float .*no Quant, MultiThreshold or HW-layer nodes",
        ),
        "floatquant": (_floatquant_onnx(tmp_path / "fp8.onnx"), r"minifloat model \(FloatQuant"),
        "sigmoid": (
            zoo_small.export(_SigmoidTFC(2, 2), tmp_path / "sig.onnx"),
            r"node \S+ \(Sigmoid\)",
        ),
        "zero_bits": (
            _with_bit_width(qonnx_models["tfc_w2a2"], tmp_path / "b0.onnx", 0),
            r"Quant node \S+ has bit width 0; quantizers need a whole number of bits >= 1",
        ),
        "nine_bits": (
            _with_bit_width(qonnx_models["tfc_w2a2"], tmp_path / "b9.onnx", 9),
            r"Quant node \S+ has bit width 9; bitfab's hardware takes 1-8 bit",
        ),
        "half_bits": (
            _with_bit_width(qonnx_models["tfc_w2a2"], tmp_path / "b25.onnx", 2.5),
            r"has bit width 2.5; quantizers need a whole number",
        ),
        "channel_norm": (
            zoo_small.export(_ChannelNormTFC(), tmp_path / "bn.onnx"),
            r"node \S+ \((Mul|Add)\) stays outside the HW layers.*per-channel",
        ),
    }


def test_bad_inputs_exit_2_one_line_nothing_written(tmp_path, qonnx_models, capsys):
    for name, (path, pattern) in _bad_inputs(tmp_path, qonnx_models).items():
        out = tmp_path / f"out_{name}"
        capsys.readouterr()
        assert main(["dataflow", str(path), "--out", str(out)]) == 2, name
        line = _one_error_line(capsys)
        assert re.search(pattern, line), (name, line)
        assert not out.exists(), name
        assert not list(tmp_path.glob(f".out_{name}*")), name  # no staging leftovers


def test_bad_folding_exit_2(qonnx_models, tmp_path, capsys):
    src = str(qonnx_models["tfc_w2a2"])
    fold = tmp_path / "fold.json"
    fold.write_text(json.dumps({"MVAU_0": {"PE": 5}}))
    out = tmp_path / "o"
    assert main(["dataflow", src, "--out", str(out), "--folding", str(fold)]) == 2
    assert "MVAU_0 (MVAU): PE=5 does not divide MH=32" in _one_error_line(capsys)
    assert not out.exists()
    assert main(["dataflow", src, "--out", str(out), "--lut-budget", "10"]) == 2
    assert "--lut-budget 10" in _one_error_line(capsys)
    assert not out.exists()


def test_cnn_folding_file_tie_and_parallel_window(qonnx_models, tmp_path, capsys):
    """On a CNN: --target-cycles output keeps the depthwise SWG/Pool tie and can be fed back as a
    --folding file (with parallel_window); a file breaking the tie is exit 2 naming both layers."""
    src = str(qonnx_models["cnv_w2a2"])
    out = tmp_path / "t"
    assert main(["dataflow", src, "--out", str(out), "--target-cycles", "800"]) == 0
    rep = json.loads((out / "dataflow.json").read_text())
    layers = rep["layers"]
    pairs = [
        (a, b)
        for a, b in zip(layers, layers[1:], strict=False)
        if a["op_type"] == "ConvolutionInputGenerator" and a["depthwise"]
    ]
    assert pairs and all(b["op_type"] == "Pool" and a["SIMD"] == b["PE"] for a, b in pairs)
    swgs = [ly for ly in layers if ly["op_type"] == "ConvolutionInputGenerator"]
    assert all("parallel_window" in ly for ly in swgs)
    pw = [ly for ly in swgs if ly["parallel_window"]]
    assert pw and all(ly["SIMD"] == ly["IFMChannels"] for ly in pw)
    assert all(ly["est_cycles"] == ly["IFMDim"][0] * ly["IFMDim"][1] for ly in pw)
    assert rep["cycles_per_image"] <= 800 and rep["folding"]["target_met"]
    keys = ("PE", "SIMD", "parallel_window")
    fold = {ly["name"]: {k: ly[k] for k in keys if k in ly} for ly in layers}
    (tmp_path / "fold.json").write_text(json.dumps(fold))
    again = tmp_path / "again"
    assert (
        main(["dataflow", src, "--out", str(again), "--folding", str(tmp_path / "fold.json")]) == 0
    )
    rep2 = json.loads((again / "dataflow.json").read_text())
    assert [ly["est_cycles"] for ly in rep2["layers"]] == [ly["est_cycles"] for ly in layers]
    a, b = pairs[0]
    v = next(d for d in range(2, a["IFMChannels"] + 1) if a["IFMChannels"] % d == 0)
    fold[a["name"]]["SIMD"], fold[b["name"]]["PE"] = v, 1
    (tmp_path / "bad.json").write_text(json.dumps(fold))
    bad = tmp_path / "bad"
    capsys.readouterr()
    assert main(["dataflow", src, "--out", str(bad), "--folding", str(tmp_path / "bad.json")]) == 2
    line = _one_error_line(capsys)
    assert a["name"] in line and b["name"] in line and "must equal" in line
    assert not bad.exists()


def _fmpadding_ok(rep: dict, model: ModelWrapper) -> list[dict]:
    """Check every FMPadding record against the written graph and an independent count."""
    pads = [ly for ly in rep["layers"] if ly["op_type"] == "FMPadding"]
    by_name = {n.name: n for n in model.graph.node}
    for ly in pads:
        node = by_name[ly["name"]]
        attrs = {a.name: a for a in node.attribute}
        simd = attrs["SIMD"].i if "SIMD" in attrs else 1
        _, h, w, c = ly["input_shape"]
        _, oh, ow, oc = ly["output_shape"]
        top, left, bottom, right = ly["Padding"]
        assert (oh, ow, oc) == (h + top + bottom, w + left + right, c)
        assert ly["SIMD"] == simd and ly["PE"] == 1 and c == ly["NumChannels"]
        assert c % simd == 0
        assert ly["est_cycles"] == c // simd * oh * ow  # one word per cycle, batch 1
        assert ly["instream_width"] == ly["outstream_width"] == simd * ly["input"]["bits"]
        assert ly["input"] == ly["output"]
        consumer = model.find_consumer(node.output[0])
        assert consumer.op_type == "ConvolutionInputGenerator"
    return pads


@pytest.mark.parametrize("mode", ["minimal", "target_cycles", "lut_budget", "given"])
def test_padded_cnn_every_folding_mode(mode, pad1_qonnx, tmp_path, capsys, images):
    """A plain Brevitas CNN with ``padding=1`` convolutions (examples/foreign_models.py ``cnn_pad1``):
    FINN's FMPadding layers are HW layers in every folding mode, their folding is legal and
    reported, and the golden model's class equals the QONNX model's class."""
    from bitfab.dataflow.golden import check_agreement

    src = str(pad1_qonnx)
    out = tmp_path / "df"
    args = ["dataflow", src, "--out", str(out)]
    if mode == "target_cycles":
        args += ["--target-cycles", "2000"]
    elif mode == "lut_budget":
        args += ["--lut-budget", "3000"]
    elif mode == "given":  # SIMD of each FMPadding: its largest proper divisor of NumChannels
        assert main(["dataflow", src, "--out", str(tmp_path / "min")]) == 0
        base = json.loads((tmp_path / "min" / "dataflow.json").read_text())
        fold = {}
        for ly in base["layers"]:
            if ly["op_type"] == "FMPadding":
                c = ly["NumChannels"]
                fold[ly["name"]] = {
                    "SIMD": max(d for d in range(1, c) if c % d == 0) if c > 1 else 1
                }
        (tmp_path / "fold.json").write_text(json.dumps(fold))
        args += ["--folding", str(tmp_path / "fold.json")]
    assert main(args) == 0, capsys.readouterr().err
    rep = json.loads((out / "dataflow.json").read_text())
    model = ModelWrapper(str(out / "dataflow.onnx"))
    pads = _fmpadding_ok(rep, model)
    assert len(pads) == 2 and "FMPadding" in rep["op_types"]
    assert rep["cycles_per_image"] == max(ly["est_cycles"] for ly in rep["layers"])
    if mode == "target_cycles":
        assert rep["cycles_per_image"] <= 2000 and rep["folding"]["target_met"]
        # FMPadding_1 (16 ch, 16x16 padded) needs SIMD >= 3 to fit, i.e. SIMD 4
        assert all(ly["est_cycles"] <= 2000 for ly in pads)
        assert any(ly["SIMD"] > 1 for ly in pads)
    if mode == "lut_budget":
        assert rep["lut_estimate"] <= 3000
    if mode == "given":
        for name, f in fold.items():
            assert next(ly for ly in pads if ly["name"] == name)["SIMD"] == f["SIMD"]
    agree = check_agreement(src, out / "dataflow.onnx", images[:40], batch=20)
    assert agree.real_mismatches == [], agree.summary()
    assert len(set(agree.golden.tolist())) >= 2  # the images are not all one class


def test_padded_cnn_batched_golden_equals_per_image(pad1_qonnx, tmp_path, images):
    """SetBatchSize handles FMPadding's single-int numInputVectors: the batched golden model's
    tensors equal per-image execution, layer by layer (FMPadding outputs included)."""
    from bitfab.dataflow import make_dataflow

    model, _ = make_dataflow(pad1_qonnx, target_cycles=5000)
    golden = GoldenModel(model)
    c1, t1 = golden.layer_tensors(images[:6], batch=1)
    c6, t6 = golden.layer_tensors(images[:6], batch=6)
    assert np.array_equal(c1, c6)
    assert any(k.startswith("FMPadding") for k in t1)
    for k in t1:
        assert np.array_equal(t1[k], t6[k]), k
