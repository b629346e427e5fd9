"""Dataset loading: IDX parsing against hand-built files, error paths, digits, Fashion-MNIST."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from bitfab.errors import BitfabError
from bitfab.models import data
from bitfab.models.data import load_dataset, read_idx, to_model_input


def _idx_bytes(arr: np.ndarray) -> bytes:
    """Independent IDX writer (uint8 payload), straight from the format description."""
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + b"".join(
        struct.pack(">I", d) for d in arr.shape
    )
    return header + arr.astype(np.uint8).tobytes()


def _write_fashion(root: Path, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sets = {}
    for split, n, (fi, fl) in (
        ("train", n_train, data._FASHION_FILES["train"]),
        ("test", n_test, data._FASHION_FILES["test"]),
    ):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        (root / fi).write_bytes(gzip.compress(_idx_bytes(x)))
        (root / fl).write_bytes(gzip.compress(_idx_bytes(y)))
        sets[split] = (x, y)
    return sets


def test_read_idx_plain_and_gzip(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (3, 4, 5), dtype=np.uint8)
    (tmp_path / "a.idx").write_bytes(_idx_bytes(arr))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    for name in ("a.idx", "a.idx.gz"):
        got = read_idx(tmp_path / name)
        assert got.shape == (3, 4, 5) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, arr)


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda b: b[:-7], "truncated"),  # payload shorter than the header says
        (lambda b: b + b"\x00", "truncated"),  # longer
        (lambda b: b"\x01" + b[1:], "magic"),
        (lambda b: b[:2] + b"\x42" + b[3:], "magic"),  # unknown type code
        (lambda b: b[:6], "header"),
    ],
)
def test_read_idx_rejects_corrupt_files(tmp_path, mutate, words):
    arr = np.zeros((2, 3, 3), np.uint8)
    p = tmp_path / "bad-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(mutate(_idx_bytes(arr))))
    with pytest.raises(BitfabError, match=words) as e:
        read_idx(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_read_idx_corrupt_gzip_and_missing(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(b"\x00" * 100)[:-10])  # cut-off gzip stream
    with pytest.raises(BitfabError, match="gzip") as e:
        read_idx(p)
    assert str(p) in str(e.value)
    with pytest.raises(BitfabError, match="dataset-fashion-mnist"):
        read_idx(tmp_path / "nope.gz")


def test_fashion_loader_reads_files_from_data_dir_and_env(tmp_path, monkeypatch):
    sets = _write_fashion(tmp_path / "fm")
    for split in ("train", "test"):
        x, y = load_dataset("fashion-mnist", split, tmp_path / "fm")
        assert x.dtype == np.uint8 and x.shape == (len(sets[split][0]), 1, 28, 28)
        assert y.dtype == np.int64
        np.testing.assert_array_equal(x[:, 0], sets[split][0])
        np.testing.assert_array_equal(y, sets[split][1])
    monkeypatch.setenv("BITFAB_FASHION_MNIST", str(tmp_path / "fm"))
    x, _ = load_dataset("fashion-mnist", "test")
    np.testing.assert_array_equal(x[:, 0], sets["test"][0])


def test_fashion_loader_errors_name_path_and_fix(tmp_path):
    with pytest.raises(BitfabError, match="BITFAB_FASHION_MNIST") as e:
        load_dataset("fashion-mnist", "train", tmp_path / "missing")
    assert str(tmp_path / "missing") in str(e.value)
    _write_fashion(tmp_path / "fm")
    lbl = tmp_path / "fm" / data._FASHION_FILES["test"][1]
    lbl.write_bytes(gzip.compress(_idx_bytes(np.zeros(3, np.uint8))))  # 3 labels for 5 images
    with pytest.raises(BitfabError, match="labels") as e:
        load_dataset("fashion-mnist", "test", tmp_path / "fm")
    assert str(lbl) in str(e.value)
    with pytest.raises(BitfabError, match="unknown dataset"):
        load_dataset("cifar", "train")
    with pytest.raises(BitfabError, match="unknown split"):
        load_dataset("digits", "val")


def test_digits_upscaled_and_padded_from_sklearn():
    from sklearn.datasets import load_digits

    ref = load_digits()
    xtr, ytr = load_dataset("digits", "train")
    xte, yte = load_dataset("digits", "test")
    assert xtr.shape[1:] == (1, 28, 28) and xtr.dtype == np.uint8 and ytr.dtype == np.int64
    assert len(xtr) + len(xte) == len(ref.target)
    # Independent check: every 3x3 block of the padded 24x24 core equals the 8x8 pixel * 255/16.
    core = xte[:, 0, 2:26, 2:26].reshape(-1, 8, 3, 8, 3)
    assert (core == core[:, :, :1, :, :1]).all()
    np.testing.assert_array_equal(
        core[:, :, 0, :, 0], np.rint(ref.images[::5] * 255 / 16).astype(np.uint8)
    )
    np.testing.assert_array_equal(yte, ref.target[::5])
    assert xte[:, :, :2].max() == 0 and xte.max() == 255


def test_to_model_input_range():
    x = np.array([[[[0, 51, 255]]]], np.uint8)
    np.testing.assert_allclose(to_model_input(x), [[[[0.0, 0.2, 1.0]]]])


@pytest.mark.skipif(
    not data.FASHION_MNIST_DEFAULT.is_dir(), reason="Debian dataset-fashion-mnist not installed"
)
def test_real_fashion_mnist_test_split():
    x, y = load_dataset("fashion-mnist", "test", data.FASHION_MNIST_DEFAULT)
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert np.bincount(y, minlength=10).tolist() == [1000] * 10  # the published class balance
