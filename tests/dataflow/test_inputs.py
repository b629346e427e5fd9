"""bitfab.dataflow.inputs: random inputs cover the input grid, user files are quantized like the
model's input quantizer, bad files get one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from bitfab.dataflow.inputs import (
    check_codes,
    quantize,
    random_inputs,
    read_inputs_file,
    to_model_space,
)
from bitfab.errors import BitfabError

INT3 = {"encoding": "codes", "quantizer": "Q", "dtype": "INT3", "min": -4, "max": 3, "bit_width": 3,
        "signed": True, "narrow": False, "rounding_mode": "ROUND", "scale": [0.5],
        "shape": [1, 6]}  # fmt: skip
BIPOLAR = {"encoding": "codes", "quantizer": "Q", "dtype": "BIPOLAR", "min": -1, "max": 1, "bit_width": 1,
           "scale": [1.0], "shape": [1, 4]}  # fmt: skip
PIXELS = {"encoding": "pixels", "dtype": "UINT8", "min": 0, "max": 255, "scale": 1 / 255,
          "shape": [1, 1, 28, 28]}  # fmt: skip


@pytest.mark.parametrize("rec", [INT3, BIPOLAR, PIXELS], ids=["int3", "bipolar", "pixels"])
def test_random_inputs_cover_the_grid(rec):
    x = random_inputs(rec, 4000, seed=1)
    assert x.shape == (4000, *rec["shape"][1:])
    grid = [-1, 1] if rec["dtype"] == "BIPOLAR" else list(range(rec["min"], rec["max"] + 1))
    assert sorted(np.unique(x).tolist()) == grid
    assert np.array_equal(random_inputs(rec, 10, seed=1), x[:10])  # seeded


def test_quantize_rounds_and_clips_like_a_signed_quantizer():
    x = np.array([[0.24, 0.26, -0.26, 1.49, 10.0, -10.0]])
    # x / 0.5 = 0.48, 0.52, -0.52, 2.98, 20, -20 -> round half even, clip to -4..3
    assert quantize(INT3, x).tolist() == [[0, 1, -1, 3, 3, -4]]
    codes = random_inputs(INT3, 100, seed=2).reshape(100, -1)
    assert np.array_equal(quantize(INT3, to_model_space(INT3, codes)).reshape(100, -1), codes)


def test_bipolar_and_pixel_inputs():
    assert quantize(BIPOLAR, np.array([[-0.1, 0.0, 3.0, -2.0]])).tolist() == [[-1, 1, 1, -1]]
    px3 = {**PIXELS, "shape": [1, 3]}
    assert quantize(px3, np.array([[0.0, 1.0, 128 / 255]])).tolist() == [[0, 255, 128]]
    with pytest.raises(BitfabError, match="not a pixel / 255"):
        quantize(px3, np.array([[0.5, 0.0, 0.0]]))


def test_check_codes_names_the_first_bad_value():
    with pytest.raises(BitfabError, match=r"value 4 at flat index 2 .*INT3: integers -4..3"):
        check_codes(INT3, np.array([[0, 1, 4, 0, 0, 0]]))
    with pytest.raises(BitfabError, match=r"must have 6 values each"):
        check_codes(INT3, np.zeros((2, 5)))
    with pytest.raises(BitfabError, match=r"-1 or \+1"):
        check_codes(BIPOLAR, np.zeros((1, 4)))


def test_read_inputs_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", inputs=x, labels=np.arange(20))
    a = read_inputs_file(tmp_path / "x.npy", INT3)
    assert np.array_equal(a, quantize(INT3, x)) and a.shape == (20, 6)
    assert np.array_equal(read_inputs_file(tmp_path / "x.npz", INT3), a)


def test_read_inputs_file_bad_paths(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 5), np.float32))
    np.save(tmp_path / "nan.npy", np.full((3, 6), np.nan, np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 6), np.float32))
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 6)), b=np.zeros((2, 6)))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "bad.npz").write_bytes(b"PK garbage")
    (tmp_path / "x.csv").write_text("1,2,3")
    cases = {
        "missing.npy": "no such file",
        "wrong.npy": r"array of shape \[3, 5\]; expected \[N, 6\]",
        "nan.npy": "NaN or infinite",
        "empty.npy": r"expected \[N, 6\]|holds no inputs",
        "two.npz": "holds arrays a, b; name the inputs 'inputs'",
        "bad.npy": "not a readable numpy file",
        "bad.npz": "not a readable numpy file",
        "x.csv": "expected a .npy or .npz file",
        ".": "is a folder",
    }
    for name, match in cases.items():
        with pytest.raises(BitfabError, match=match):
            read_inputs_file(tmp_path / name, INT3)


def test_unsigned_narrow_and_per_channel_quantizers():
    u4n = {**INT3, "dtype": "UINT4", "min": 0, "max": 14, "bit_width": 4, "signed": False,
           "narrow": True, "scale": [0.25]}  # fmt: skip
    assert quantize(u4n, np.array([[-1.0, 0.1, 0.13, 3.4, 3.6, 9.0]])).tolist() == [
        [0, 0, 1, 14, 14, 14]
    ]
    assert sorted(np.unique(random_inputs(u4n, 3000, seed=0)).tolist()) == list(range(15))
    # per-channel scale [1, 2, 1] on a [1, 2, 3] input: channel 0 scale 0.5, channel 1 scale 1
    pc = {**INT3, "shape": [1, 2, 3], "scale": [[[0.5], [1.0]]]}
    x = np.ones((1, 2, 3))
    assert quantize(pc, x).tolist() == [[[2, 2, 2], [1, 1, 1]]]
    assert quantize(pc, x.reshape(1, 6)).tolist() == [[2, 2, 2, 1, 1, 1]]


def test_annotated_integer_inputs_are_taken_as_they_are():
    """A FINN-ONNX / HW graph's integer input (no quantizer): the values are the integers."""
    rec = {"encoding": "codes", "quantizer": None, "dtype": "INT4", "min": -8, "max": 7,
           "bit_width": 4, "scale": 1.0, "shape": [1, 3]}  # fmt: skip
    assert quantize(rec, np.array([[-8.0, 0.0, 7.0]])).tolist() == [[-8, 0, 7]]
    with pytest.raises(BitfabError, match="not on the input grid"):
        quantize(rec, np.array([[0.5, 0.0, 1.0]]))


def test_a_transposed_file_is_refused_for_an_nchw_model(tmp_path):
    """An NHWC [N, 32, 32, 3] array has the right number of values for a [1, 3, 32, 32] model
    but the wrong layout: refused (a flat [N, 3072] array is taken as NCHW order)."""
    rec = {**PIXELS, "shape": [1, 3, 32, 32], "perm": [0, 2, 3, 1]}
    np.save(tmp_path / "nhwc.npy", np.zeros((2, 32, 32, 3), np.float32))
    np.save(tmp_path / "flat.npy", np.zeros((2, 3072), np.float32))
    with pytest.raises(BitfabError, match=r"expected \[N, 3, 32, 32\]"):
        read_inputs_file(tmp_path / "nhwc.npy", rec)
    assert read_inputs_file(tmp_path / "flat.npy", rec).shape == (2, 3072)
