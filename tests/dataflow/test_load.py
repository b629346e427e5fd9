"""bitfab.dataflow.load.check_bit_widths: quantizer bit widths bitfab cannot build are named on
load (the CLI cases are in test_cli.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as nh

from bitfab.dataflow.load import check_bit_widths
from bitfab.errors import BitfabError


def _graph(weight_bits: float, bias_bits: float, act_bits: float = 4):
    """x -> Quant(act) -> MatMul(Quant(W)) -> Add(Quant(B)) -> y"""
    consts = {"W": np.ones((4, 4)), "B": np.ones(4), "s": 1.0, "z": 0.0, "bw": weight_bits,
              "bb": bias_bits, "ba": act_bits}  # fmt: skip
    inits = [nh.from_array(np.array(v, np.float32), k) for k, v in consts.items()]
    dom = "qonnx.custom_op.general"
    nodes = [
        oh.make_node("Quant", ["x", "s", "z", "ba"], ["xq"], name="QA", domain=dom),
        oh.make_node("Quant", ["W", "s", "z", "bw"], ["Wq"], name="QW", domain=dom),
        oh.make_node("Quant", ["B", "s", "z", "bb"], ["Bq"], name="QB", domain=dom),
        oh.make_node("MatMul", ["xq", "Wq"], ["m"]),
        oh.make_node("Add", ["m", "Bq"], ["y"]),
    ]
    io = [oh.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in ("x", "y")]
    return oh.make_graph(nodes, "t", [io[0]], [io[1]], inits)


def test_valid_widths_and_a_wide_bias_pass():
    check_bit_widths(_graph(4, 32), Path("m.onnx"))
    check_bit_widths(_graph(1, 8, 8), Path("m.onnx"))


@pytest.mark.parametrize(
    "w,a,match",
    [
        (0, 4, r"m.onnx: Quant node QW has bit width 0; .*whole number of bits >= 1"),
        (-2, 4, r"Quant node QW has bit width -2"),
        (4, 1.5, r"Quant node QA has bit width 1.5; .*whole number"),
        (9, 4, r"Quant node QW has bit width 9; bitfab's hardware takes 1-8 bit"),
        (4, 16, r"Quant node QA has bit width 16; bitfab's hardware takes 1-8 bit"),
    ],
)
def test_unbuildable_widths_are_named(w, a, match):
    with pytest.raises(BitfabError, match=match):
        check_bit_widths(_graph(w, 32, a), Path("m.onnx"))
