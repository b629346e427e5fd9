"""What a dataflow graph's input and output mean: model-space floats <-> hardware integers.

The conversion (:mod:`bitfab.dataflow.convert`) records in the graph's metadata how the
hardware's integer input relates to the QONNX model's float input (``bitfab_input``):

- encoding ``pixels``: the input is a raw UINT8 pixel ``p`` (0..255), the model's input
  ``p / 255`` (models that start from an image);
- encoding ``codes``: the input is the integer code ``q`` of the model's own input quantizer
  (``INTk``/``UINTk``/``BINARY``/``BIPOLAR``), the model's input ``q * scale``.

and what its output is (``bitfab_head``): ``class`` (the class index, after an absorbed
Softmax/ArgMax tail listed in ``bitfab_tail``) or ``values`` (the last layer's integers ``o``; the
model's output is ``scale * o + bias``, ``bitfab_output_affine``).

This module reads those records, draws random inputs over the input grid, quantizes
user-supplied float inputs the way the model's input quantizer does, and maps both ways.
"""

from __future__ import annotations

import json

import numpy as np

from bitfab.errors import BitfabError

#: metadata keys (set by the transforms in :mod:`bitfab.dataflow.transforms`)
INPUT_META, HEAD_META = "bitfab_input", "bitfab_head"
TAIL_META, AFFINE_META = "bitfab_tail", "bitfab_output_affine"
#: the memory plan of a board fit (bitfab.fpga.memory_plan): JSON {MVAU name: "spram"}
MEMORY_PLAN_META = "bitfab_memory_plan"


def _dtype_range(name: str) -> tuple[int, int]:
    from qonnx.core.datatype import DataType

    dt = DataType[name]
    return int(dt.min()), int(dt.max())


def pixel_record(shape: list[int], scale: float = 1 / 255) -> dict:
    """The input record of a pixel graph: raw UINT8 pixels, the model's input = pixel * scale."""
    return {
        "encoding": "pixels",
        "dtype": "UINT8",
        "min": 0,
        "max": 255,
        "scale": scale,
        "shape": list(shape),
    }


def input_record(model) -> dict:  # noqa: ANN001 - qonnx ModelWrapper
    """The ``bitfab_input`` record of a dataflow graph (encoding, dtype, min, max, scale, shape).

    Graphs written before the record existed are pixel graphs (UINT8 input, scale 1/255)."""
    raw = model.get_metadata_prop(INPUT_META)
    inp = model.graph.input[0].name
    if raw:
        rec = json.loads(raw)
    else:
        dtype = model.get_tensor_datatype(inp).name
        if dtype != "UINT8":
            raise BitfabError(
                f"the dataflow graph's input is {dtype} but it has no bitfab_input record; "
                "re-run 'bitfab dataflow' on the QONNX model"
            )
        rec = pixel_record(model.get_tensor_shape(inp))
    rec.setdefault("shape", list(model.get_tensor_shape(inp)))
    if rec.get("perm"):
        rec["graph_shape"] = list(model.get_tensor_shape(inp))
    return rec


def output_record(model) -> dict:  # noqa: ANN001 - qonnx ModelWrapper
    """``{"head", "tail", "scale", "bias"}`` of a dataflow graph (scale/bias: None for a class
    head or a values head without a trailing affine)."""
    has_label = any(n.op_type == "LabelSelect" for n in model.graph.node)
    head = model.get_metadata_prop(HEAD_META) or ("class" if has_label else "values")
    tail = json.loads(model.get_metadata_prop(TAIL_META) or "[]")
    aff = json.loads(model.get_metadata_prop(AFFINE_META) or "null")
    return {
        "head": head,
        "tail": tail,
        "scale": None if aff is None else aff["scale"],
        "bias": None if aff is None else aff["bias"],
    }


def elements(rec: dict) -> int:
    """Values per input (the product of the non-batch dimensions)."""
    return int(np.prod(rec["shape"][1:]))


def random_inputs(rec: dict, n: int, seed: int = 0) -> np.ndarray:
    """``n`` inputs drawn uniformly from the input grid: int64 ``[n, *shape[1:]]`` codes
    (bipolar as -1/+1), every representable value equally likely."""
    rng = np.random.default_rng(seed)
    shape = [n, *rec["shape"][1:]]
    if rec["dtype"] == "BIPOLAR":
        return rng.integers(0, 2, size=shape, dtype=np.int64) * 2 - 1
    return rng.integers(int(rec["min"]), int(rec["max"]) + 1, size=shape, dtype=np.int64)


def check_codes(rec: dict, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """``x`` as int64 ``[N, elements]``; BitfabError unless every value is an integer on the
    input grid."""
    x = np.asarray(x)
    k = elements(rec)
    unit = "pixels" if rec["encoding"] == "pixels" else "values"
    if x.size == 0 or x.size % k != 0:
        raise BitfabError(f"{what} must have {k} {unit} each, got array of shape {x.shape}")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise BitfabError(f"{what}: NaN or infinite values")
    lo, hi = int(rec["min"]), int(rec["max"])
    bad = (x != np.round(x)) | (x < lo) | (x > hi)
    if rec["dtype"] == "BIPOLAR":
        bad = bad | (x == 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        grid = "-1 or +1" if rec["dtype"] == "BIPOLAR" else f"integers {lo}..{hi}"
        if rec["encoding"] == "pixels":
            grid = "uint8 pixel values 0..255"
        raise BitfabError(
            f"{what}: value {float(x.reshape(-1)[i]):g} at flat index {i} is not on the input grid "
            f"({rec['dtype']}: {grid})"
        )
    return np.rint(x).astype(np.int64).reshape(-1, k)


def quantize(rec: dict, x: np.ndarray, what: str = "inputs") -> np.ndarray:
    """Float inputs as the QONNX model takes them -> the hardware's integer codes (int64, same
    shape), the way the model's input quantizer maps them (pixels: ``x * 255`` must be a whole
    number 0..255, since a pixel model's hardware takes raw pixels)."""
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise BitfabError(f"{what}: NaN or infinite values")
    k = elements(rec)
    if x.size == 0 or x.size % k != 0:
        raise BitfabError(f"{what} must have {k} values each, got array of shape {x.shape}")
    if rec["encoding"] == "codes" and not rec.get("quantizer"):
        # an already converted graph's integer input: the values are the integers themselves
        return check_codes(rec, x, what).reshape(x.shape)
    out_shape = x.shape
    x = x.reshape([-1, *rec["shape"][1:]])  # a per-channel scale broadcasts over this shape
    if rec["encoding"] == "pixels":
        p = x * 255.0
        off = np.abs(p - np.round(p))
        if np.any(off > 1e-3) or np.any((p < -1e-3) | (p > 255 + 1e-3)):
            i = int(np.flatnonzero((off > 1e-3).reshape(-1) | ((p < 0) | (p > 255)).reshape(-1))[0])
            raise BitfabError(
                f"{what}: value {x.reshape(-1)[i]:g} at flat index {i} is not a pixel / 255; this "
                "model's hardware takes raw 8-bit pixels (give pixel values / 255 in [0, 1])"
            )
        return np.rint(p).astype(np.int64).reshape(out_shape)
    scale = np.asarray(rec["scale"], dtype=np.float64)
    if rec["dtype"] == "BIPOLAR":
        return np.where(x >= 0, 1, -1).astype(np.int64).reshape(out_shape)
    from qonnx.custom_op.general.quant import quant

    y = quant(
        x.astype(np.float32),
        scale.astype(np.float32),
        np.float32(0),
        np.float32(rec["bit_width"]),
        int(rec["signed"]),
        int(rec["narrow"]),
        rec.get("rounding_mode", "ROUND"),
    )
    return np.rint(np.asarray(y, dtype=np.float64) / scale).astype(np.int64).reshape(out_shape)


def to_graph_order(rec: dict, codes: np.ndarray) -> np.ndarray:
    """Model-order inputs ``[N, values]`` (or ``[N, *shape]``) -> the graph input's order
    ``[N, values]``: the recorded ``perm`` (:class:`AbsorbInputTranspose`) applied, if any."""
    c = np.asarray(codes)
    n = len(c)
    perm = rec.get("perm")
    if not perm:
        return c.reshape(n, -1)
    # the shape the transpose applies to (the model's, or after an order-keeping reshape)
    shape = rec.get("perm_shape", rec["shape"])
    return c.reshape([n, *shape[1:]]).transpose(perm).reshape(n, -1)


def to_model_space(rec: dict, codes: np.ndarray) -> np.ndarray:
    """Integer codes -> the float32 input the QONNX model takes (``[N, *shape[1:]]``)."""
    c = np.asarray(codes)
    shape = [len(c), *rec["shape"][1:]]
    if rec["encoding"] == "pixels":
        return (c.astype(np.float32) / np.float32(255.0)).reshape(shape)
    scale = np.asarray(rec["scale"], dtype=np.float32)
    return (c.reshape(shape).astype(np.float32) * scale).astype(np.float32)


def describe_input(rec: dict) -> str:
    """One line: what the accelerator's input words hold."""
    order = ""
    if rec.get("perm"):
        order = f"; streamed in the order of the model's input transposed by {rec['perm']} (NHWC)"
    if rec["encoding"] == "pixels":
        return "raw uint8 pixels (0..255), the model's input x = pixel / 255 (absorbed)" + order
    s = np.asarray(rec["scale"], dtype=np.float64).reshape(-1)
    scale = f"{s[0]:.6g}" if np.all(s == s[0]) else f"per-channel ({len(s)} values)"
    grid = "-1/+1" if rec["dtype"] == "BIPOLAR" else f"{rec['min']}..{rec['max']}"
    if not rec.get("quantizer"):
        return f"integers ({rec['dtype']}, {grid}) as the graph's input annotation says" + order
    return (
        f"integer codes of the model's input quantizer {rec.get('quantizer', '')} "
        f"({rec['dtype']}, {grid}); the model's input x = code * {scale}{order}"
    )


def describe_output(out: dict) -> str:
    """One line: what the accelerator's output words mean."""
    tail = (
        f" (absorbed tail: {', '.join(out['tail'])}; the class is unchanged)" if out["tail"] else ""
    )
    if out["head"] == "class":
        return "class index (argmax of the model's output)" + tail
    if out["scale"] is None:
        return "the model's output values (integers, no scale)"
    s = np.asarray(out["scale"], dtype=np.float64).reshape(-1)
    b = np.asarray(out["bias"], dtype=np.float64).reshape(-1)
    sc = f"{s[0]:.6g}" if np.all(s == s[0]) else "per-output scale"
    bs = "" if np.all(b == 0) else (f" + {b[0]:.6g}" if np.all(b == b[0]) else " + per-output bias")
    return f"the model's output values: y = {sc} * output{bs}"


def read_inputs_file(path, rec: dict) -> np.ndarray:  # noqa: ANN001 - str or PathLike
    """Float inputs from a ``.npy`` or ``.npz`` file (in a ``.npz``: the array ``inputs``, ``x``
    or the only one), shape ``[N, *model input shape]`` (or ``[N, values]``), values as the QONNX
    model takes them -> the hardware's integer codes ``[N, values]`` (:func:`quantize`)."""
    import zipfile
    from pathlib import Path

    p = Path(path)
    flag = f"--inputs {p}"
    if p.is_dir():
        raise BitfabError(f"{flag}: is a folder; give a .npy or .npz file")
    if not p.is_file():
        raise BitfabError(f"{flag}: no such file")
    if p.suffix not in (".npy", ".npz"):
        raise BitfabError(f"{flag}: expected a .npy or .npz file (numpy.save / numpy.savez)")
    try:
        if p.suffix == ".npy":
            arr = np.asarray(np.load(p, allow_pickle=False))
        else:
            with np.load(p, allow_pickle=False) as data:
                keys = list(data.keys())
                named = [k for k in ("inputs", "x") if k in keys]
                if not named and len(keys) != 1:
                    raise BitfabError(
                        f"{flag}: holds arrays {', '.join(keys) or '(none)'}; name the inputs "
                        "'inputs' (or 'x')"
                    )
                arr = np.asarray(data[(named or keys)[0]])
    except BitfabError:
        raise
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise BitfabError(
            f"{flag}: not a readable numpy file ({type(e).__name__}: {str(e)[:100]})"
        ) from None
    if arr.dtype.kind not in "fiub":
        raise BitfabError(f"{flag}: array of {arr.dtype}; expected numbers (float32)")
    shape = list(rec["shape"][1:])
    k = elements(rec)
    flat = arr.ndim == 2 and arr.shape[1] == k
    if arr.ndim < 2 or not (flat or list(arr.shape[1:]) == shape):
        want = "x".join(str(d) for d in shape)
        raise BitfabError(
            f"{flag}: array of shape {list(arr.shape)}; expected [N, {', '.join(map(str, shape))}]"
            f" (N inputs of the model's input shape {want}, leading batch axis; or [N, {k}] "
            "flattened in that order)"
        )
    if len(arr) == 0:
        raise BitfabError(f"{flag}: holds no inputs (N = 0)")
    return quantize(rec, arr.reshape([len(arr), *shape]), flag).reshape(len(arr), -1)
