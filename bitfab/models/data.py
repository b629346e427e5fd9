"""Datasets for training and tests: Fashion-MNIST (IDX files) and scikit-learn's 8x8 digits.

Both come back as ``uint8`` pixel images ``[N, 1, 28, 28]`` (0..255) and ``int64`` labels ``[N]``,
so every zoo model takes either set. Models see ``pixel / 255`` (see :func:`to_model_input`).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from bitfab.errors import BitfabError

DATASETS = ("fashion-mnist", "digits")
SPLITS = ("train", "test")
FASHION_MNIST_ENV = "BITFAB_FASHION_MNIST"
FASHION_MNIST_DEFAULT = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_HOWTO = f"install it with 'apt-get install dataset-fashion-mnist' or set {FASHION_MNIST_ENV}"
# IDX element type codes (third byte of the magic number) -> numpy big-endian dtype.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def fashion_mnist_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The Fashion-MNIST folder: ``data_dir``, else ``$BITFAB_FASHION_MNIST``, else the Debian path."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_MNIST_DEFAULT


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array of its declared shape.

    The header is checked: two zero bytes, a known type code, the number of dimensions, and the
    payload size must equal the product of the dimensions. Any defect raises :class:`BitfabError`
    naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise BitfabError(f"{p}: file not found; {_HOWTO}")
    try:
        raw = p.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise BitfabError(f"{p}: unreadable or corrupt gzip ({e}); {_HOWTO}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise BitfabError(f"{p}: not an IDX file (bad magic number); {_HOWTO}")
    dtype = _IDX_TYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise BitfabError(f"{p}: truncated IDX header; {_HOWTO}")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise BitfabError(
            f"{p}: IDX payload is {len(raw) - header} bytes, header {dims} says {expected} "
            f"(truncated or corrupt); {_HOWTO}"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))
    )


def _load_fashion_mnist(
    split: str, data_dir: str | os.PathLike[str] | None
) -> tuple[np.ndarray, np.ndarray]:
    root = fashion_mnist_dir(data_dir)
    if not root.is_dir():
        raise BitfabError(f"{root}: Fashion-MNIST folder not found; {_HOWTO} (or pass --data-dir)")
    img_name, lbl_name = _FASHION_FILES[split]
    images = read_idx(root / img_name)
    labels = read_idx(root / lbl_name)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise BitfabError(
            f"{root / img_name}: expected uint8 [N, 28, 28] images, got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise BitfabError(
            f"{root / lbl_name}: {labels.shape} labels do not match {images.shape[0]} images; {_HOWTO}"
        )
    if labels.size and int(labels.max()) > 9:
        raise BitfabError(
            f"{root / lbl_name}: label {int(labels.max())} out of range 0-9; {_HOWTO}"
        )
    return images[:, None, :, :].copy(), labels.astype(np.int64)


def _load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """sklearn's 8x8 digits (values 0..16), scaled to 0..255 and upscaled 3x to 24x24, padded to 28x28.

    Split: a fixed interleaved 80/20 split (every fifth image is test), deterministic.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    img = np.rint(d.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)  # [N, 8, 8]
    img = img.repeat(3, axis=1).repeat(3, axis=2)  # [N, 24, 24]
    img = np.pad(img, ((0, 0), (2, 2), (2, 2)))  # [N, 28, 28]
    labels = d.target.astype(np.int64)
    test = np.arange(len(labels)) % 5 == 0
    sel = test if split == "test" else ~test
    return img[sel][:, None, :, :].copy(), labels[sel].copy()


def load_dataset(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load ``split`` ("train"/"test") of dataset ``name`` ("fashion-mnist"/"digits").

    Returns ``(images, labels)``: images ``uint8 [N, 1, 28, 28]`` with pixel values 0..255,
    labels ``int64 [N]`` in 0..9. ``data_dir`` only applies to Fashion-MNIST.
    """
    if name not in DATASETS:
        raise BitfabError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise BitfabError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if name == "digits":
        return _load_digits(split)
    return _load_fashion_mnist(split, data_dir)


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 model input in [0, 1] (pixel / 255), same shape."""
    return images.astype(np.float32) / np.float32(255.0)
