"""The golden model: FINN's Python execution of ``dataflow.onnx`` on the hardware's inputs.

Every later hardware stage is checked against it. Inputs are the graph input's integers, one row
per input (:mod:`bitfab.dataflow.inputs`): for an image model uint8 pixels ``[N, 28, 28]`` (or
anything with the input's number of values per row, row-major; the /255 scaling is inside the
first thresholds), for any other model the integer codes of its input quantizer.

Execution uses :func:`qonnx.core.onnx_exec.execute_onnx`. FINN's HW layers and ``execute_onnx``
only accept batch 1, so :class:`GoldenModel` runs either per image (``batch=1``, the reference)
or on a copy of the graph with a batch dimension (:class:`SetBatchSize`, checked in the tests
to give identical tensors), which is several times faster.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bitfab.errors import BitfabError

ProgressFn = Callable[[int], None]


def _load(model):  # noqa: ANN001, ANN202 - returns a qonnx ModelWrapper
    from qonnx.core.modelwrapper import ModelWrapper

    if isinstance(model, ModelWrapper):
        return model
    p = Path(model)
    if not p.is_file():
        raise BitfabError(f"{p}: no such file")
    try:
        return ModelWrapper(str(p))
    except Exception as e:
        raise BitfabError(f"{p}: not a readable ONNX model ({type(e).__name__})") from None


def _in_batches(
    x: np.ndarray,
    batch: int,
    run: Callable[[np.ndarray], np.ndarray],
    progress=None,  # noqa: ANN001
) -> np.ndarray:
    """``run`` on ``batch`` rows of ``x`` at a time (the last chunk padded with its last row to
    the prepared batch size), its outputs ``[rows, values]`` (float64) concatenated, padding
    dropped; ``progress(k)`` after each chunk of ``k`` real rows."""
    outs = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        k = len(chunk)
        if k < batch and batch > 1:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - k, axis=0)])
        outs.append(np.asarray(run(chunk), dtype=np.float64).reshape(len(chunk), -1)[:k])
        if progress is not None:
            progress(k)
    return np.concatenate(outs)


def _sanitize(model, names: Sequence[str], ctx: dict) -> None:  # noqa: ANN001
    """qonnx's ``sanitize_quant_values`` (round integer-typed tensors, fail if the rounding error
    exceeds qonnx's execution error threshold), with ``np.max`` in place of its Python ``max``
    over every element, which takes most of the run time on batched tensors."""
    from qonnx.util.basic import get_execution_error_thresh

    for name in names:
        dtype = model.get_tensor_datatype(name)
        if not dtype.is_integer():
            continue
        cur = ctx[name]
        ok = dtype.allowed(cur)
        if not (ok.all() if isinstance(ok, np.ndarray) else ok):
            new = np.round(cur)
            err = float(np.max(np.abs(cur - new))) if np.size(cur) else 0.0
            if err > get_execution_error_thresh():
                raise BitfabError(
                    f"golden model: tensor {name} is off its data type {dtype.name} by {err}"
                )
            ctx[name] = new


class GoldenModel:
    """A loaded ``dataflow.onnx`` ready to run (path or qonnx ``ModelWrapper``)."""

    def __init__(self, dataflow: str | os.PathLike[str] | object) -> None:
        from bitfab.dataflow.inputs import input_record, output_record
        from bitfab.dataflow.layers import is_hw_node

        self.model = _load(dataflow)
        #: what the input and output mean (:func:`bitfab.dataflow.inputs.input_record`, ...)
        self.input_rec = input_record(self.model)
        self.output_rec = output_record(self.model)
        g = self.model.graph
        self.input_name = g.input[0].name
        self.output_name = g.output[0].name
        self.input_shape = list(self.model.get_tensor_shape(self.input_name))
        #: HW-layer node names in graph order (keys of :meth:`layer_tensors`).
        self.layer_names = [n.name for n in g.node if is_hw_node(n)]
        self._out_of = {n.name: n.output[0] for n in g.node}
        self._batched: dict[int, object] = {}

    def check(self, inputs: np.ndarray) -> np.ndarray:
        """``inputs`` as int64 ``[N, values]``; BitfabError unless on the input grid."""
        from bitfab.dataflow.inputs import check_codes

        return check_codes(self.input_rec, inputs)

    @property
    def head(self) -> str:
        """``"class"`` (the output is the class index) or ``"values"``."""
        return self.output_rec["head"]

    def _batched_model(self, n: int):  # noqa: ANN202
        from bitfab.dataflow.transforms.set_batch_size import SetBatchSize

        if n == 1:
            return self.model
        if n not in self._batched:
            m = copy.deepcopy(self.model)
            self._batched[n] = m.transform(SetBatchSize(n))
        return self._batched[n]

    def _exec(self, x: np.ndarray, full: bool) -> dict:
        from qonnx.core.onnx_exec import execute_onnx

        from bitfab.dataflow.inputs import to_graph_order

        n = x.shape[0]
        x = to_graph_order(self.input_rec, x)  # model order -> the graph input's (NHWC) order
        inp = x.reshape([n] + self.input_shape[1:]).astype(np.float32)
        if n == 1:
            return execute_onnx(self.model, {self.input_name: inp}, return_full_exec_context=full)
        ctx = self._exec_batched(self._batched_model(n), inp)
        return ctx if full else {self.output_name: ctx[self.output_name]}

    def _exec_batched(self, model, inp: np.ndarray) -> dict:  # noqa: ANN001
        """``execute_onnx``'s node loop (same per-node execution and quant sanitizing) on the
        batched graph, except that a ConvolutionInputGenerator runs once per image: its Python
        execution (qonnx Im2Col) interleaves the images of a batch N > 1."""
        from qonnx.core.onnx_exec import execute_node
        from qonnx.util.basic import get_preferred_qonnx_opset, get_sanitize_quant_tensors

        ctx = model.make_empty_exec_context()
        ctx[self.input_name] = inp
        opsets = model.get_opset_imports()
        single = self.model.graph
        sanitize = get_sanitize_quant_tensors() != 0
        for node in model.graph.node:
            if sanitize:
                _sanitize(model, node.input, ctx)
            opset = opsets.get(node.domain, get_preferred_qonnx_opset())
            if node.op_type == "ConvolutionInputGenerator":
                src, dst = node.input[0], node.output[0]
                out = ctx[dst]
                for i in range(inp.shape[0]):
                    one = {src: ctx[src][i : i + 1], dst: np.zeros_like(out[i : i + 1])}
                    execute_node(node, one, single, opset)
                    out[i] = one[dst][0]
            else:
                execute_node(node, ctx, model.graph, opset)
            if sanitize:
                _sanitize(model, node.output, ctx)
        return ctx

    def classify(
        self, images: np.ndarray, batch: int = 100, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Predicted class (int64 ``[N]``) of every image; ``batch`` images per execution.

        ``batch=1`` is plain ``execute_onnx`` per image (the reference the batched run is
        tested against). Only for a class head (:meth:`outputs` gives any head's output).
        """
        if self.head != "class":
            raise BitfabError(
                "this dataflow graph has a values head (its output is the model's values, not "
                "a class index): compare outputs() instead of classes"
            )
        out = self.outputs(images, batch, progress)
        return out[:, 0].astype(np.int64)

    def outputs(
        self, inputs: np.ndarray, batch: int = 100, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """The graph output of every input, float64 ``[N, values]`` holding integers (a class
        head: ``[N, 1]`` class indices; a values head: the last layer's integers, before the
        output scale/bias of :meth:`values`)."""
        x = self.check(inputs)
        return _in_batches(
            x, batch, lambda c: self._exec(c, full=False)[self.output_name], progress
        )

    def values(self, inputs: np.ndarray, batch: int = 100) -> np.ndarray:
        """A values head's output in the model's units: ``scale * output + bias`` ``[N, k]``."""
        o = self.outputs(inputs, batch)
        if self.output_rec["scale"] is None:
            return o
        scale = np.asarray(self.output_rec["scale"], dtype=np.float64).reshape(1, -1)
        bias = np.asarray(self.output_rec["bias"], dtype=np.float64).reshape(1, -1)
        return o * scale + bias

    def layer_tensors(
        self, images: np.ndarray, batch: int = 100
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Graph outputs and, per HW-layer node name, its output tensor (leading dim N).

        The first value is the class ``[N]`` (a class head) or the output rows ``[N, k]`` (a
        values head). The key ``"input"`` holds the graph input. Values are float32 arrays
        holding integers (bipolar as -1/+1) within the tensor's FINN data type, see
        :meth:`datatype`. Runs ``batch`` inputs at a time (memory: every tensor of the graph
        per input).
        """
        x = self.check(images)
        if len(x) > batch:
            parts = [self.layer_tensors(x[i : i + batch], batch) for i in range(0, len(x), batch)]
            tensors = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
            return np.concatenate([p[0] for p in parts]), tensors
        ctx = self._exec(x, full=True)
        tensors = {"input": np.asarray(ctx[self.input_name])}
        for name in self.layer_names:
            tensors[name] = np.asarray(ctx[self._out_of[name]])
        outs = np.asarray(ctx[self.output_name]).reshape(len(x), -1)
        if self.head != "class":
            return outs, tensors
        return outs[:, 0].astype(np.int64), tensors

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The integer class scores ``[N, classes]`` (the LabelSelect input) of ``images``."""
        x = self.check(images)
        node = next(n for n in self.model.graph.node if n.op_type == "LabelSelect")
        out = []
        for start in range(0, len(x), 100):
            ctx = self._exec(x[start : start + 100], full=True)
            out.append(np.asarray(ctx[node.input[0]]).reshape(len(x[start : start + 100]), -1))
        return np.concatenate(out)

    def datatype(self, layer: str):  # noqa: ANN201 - qonnx DataType
        """FINN data type of a layer's output tensor (``"input"`` for the graph input)."""
        tensor = self.input_name if layer == "input" else self._out_of[layer]
        return self.model.get_tensor_datatype(tensor)


def golden_classes(dataflow: str | os.PathLike[str], images: np.ndarray, batch: int = 100):
    """Predicted classes of ``images`` (the graph's integer inputs) by the graph at ``dataflow``."""
    return GoldenModel(dataflow).classify(images, batch=batch)


class QonnxReference:
    """The QONNX model itself (Quant nodes, float inputs), executed by qonnx.

    ``input_rec`` (:func:`bitfab.dataflow.inputs.input_record` of the dataflow graph) says how
    the hardware's integer inputs map to the model's float input; default: uint8 pixels / 255.
    ``qonnx_model``: a path or a loaded qonnx ``ModelWrapper`` (used as it is, cleaned up).
    ``strip_tail``: drop a trailing ArgMax/TopK(k=1) (and Softmax...), so that :meth:`scores`
    gives the class scores an index output was taken from (its argmax is that index: ONNX
    ArgMax with ``select_last_index=0`` and TopK both take the first of equal maxima).
    """

    def __init__(
        self, qonnx_model, input_rec: dict | None = None, strip_tail: bool = False
    ) -> None:  # noqa: ANN001
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model

        from bitfab.dataflow.inputs import pixel_record
        from bitfab.dataflow.load import load_qonnx

        if isinstance(qonnx_model, ModelWrapper):
            self.path = "model"
            self.model = cleanup_model(qonnx_model)  # transforms a copy
        else:
            self.path = str(qonnx_model)
            self.model = cleanup_model(load_qonnx(qonnx_model))
        if strip_tail:
            from bitfab.dataflow.transforms.absorb_argmax_tail import AbsorbArgmaxTail

            self.model = self.model.transform(AbsorbArgmaxTail()).transform(AbsorbArgmaxTail())
        self.input_name = self.model.graph.input[0].name
        self.output_name = self.model.graph.output[0].name
        self.input_shape = list(self.model.get_tensor_shape(self.input_name))
        self.input_rec = input_rec or pixel_record(self.input_shape)
        self._batched: dict[int, object] = {}

    def _batched_model(self, n: int):  # noqa: ANN202
        from qonnx.transformation.change_batchsize import ChangeBatchSize
        from qonnx.transformation.infer_shapes import InferShapes

        if n == 1:
            return self.model
        if n not in self._batched:
            m = copy.deepcopy(self.model)
            self._batched[n] = m.transform(ChangeBatchSize(n)).transform(InferShapes())
        return self._batched[n]

    def run(self, x: np.ndarray, batch: int = 100) -> np.ndarray:
        """The model's output ``[N, values]`` (float64) for model-space float inputs ``x``
        (``[N, *input shape]``)."""
        from qonnx.core.onnx_exec import execute_onnx

        x = np.asarray(x, dtype=np.float32).reshape([-1] + self.input_shape[1:])

        def run(chunk: np.ndarray) -> np.ndarray:
            model = self._batched_model(len(chunk))
            return execute_onnx(model, {self.input_name: chunk})[self.output_name]

        return _in_batches(x, batch, run)

    def scores(self, images: np.ndarray, batch: int = 100) -> np.ndarray:
        """The model's output ``[N, values]`` for the hardware's integer inputs (uint8 pixels fed
        as pixel / 255; quantizer codes as code * scale)."""
        from bitfab.dataflow.inputs import check_codes, to_model_space

        codes = check_codes(self.input_rec, images)
        return self.run(to_model_space(self.input_rec, codes), batch)

    def classify(self, images: np.ndarray, batch: int = 100) -> np.ndarray:
        """argmax class of every image (first index on ties, like TopK)."""
        return np.argmax(self.scores(images, batch), axis=1).astype(np.int64)


#: A values head's outputs agree when they differ by less than this fraction of the output scale
#: (one quantization step): float rounding in the QONNX model only.
VALUE_RTOL = 1e-3
#: Relative tolerance (of the largest |score|) under which two QONNX class scores count as tied.
TIE_RTOL = 1e-4


@dataclass
class AgreementReport:
    """Golden (dataflow) class vs QONNX class on every image.

    ``mismatches`` are all images where the classes differ. ``ties`` is the subset where both
    (a) the dataflow graph's integer scores (the LabelSelect input) of the two classes are equal
    and (b) the QONNX float scores of the two classes agree within ``TIE_RTOL`` of the largest
    |score| (of that input, but at least 1e-3 of the largest over all inputs, for inputs whose
    scores are all about 0): only float rounding in the QONNX model (a different sum order)
    broke the tie; the
    golden model, like FINN's LabelSelect/TopK, returns the lowest tied index.
    ``real_mismatches`` are the others.
    """

    images: int
    mismatches: list[int] = field(default_factory=list)
    ties: list[int] = field(default_factory=list)
    golden: np.ndarray | None = None
    reference: np.ndarray | None = None
    golden_seconds: float = 0.0
    reference_seconds: float = 0.0

    @property
    def real_mismatches(self) -> list[int]:
        tie = set(self.ties)
        return [i for i in self.mismatches if i not in tie]

    @property
    def agree(self) -> bool:
        """True when every disagreement is a float tie in the QONNX model."""
        return not self.real_mismatches

    @property
    def golden_images_per_s(self) -> float:
        return self.images / self.golden_seconds if self.golden_seconds else float("nan")

    @property
    def reference_images_per_s(self) -> float:
        return self.images / self.reference_seconds if self.reference_seconds else float("nan")

    def summary(self) -> dict:
        """JSON-ready figures (mismatch indices with both classes, speeds)."""
        tie = set(self.ties)

        def value(v):  # noqa: ANN001, ANN202 - a class (int) or a values row
            v = np.asarray(v)
            return int(v) if v.ndim == 0 else [round(float(e), 6) for e in v.reshape(-1)]

        mism = [
            {
                "index": int(i),
                "golden": value(self.golden[i]),
                "qonnx": value(self.reference[i]),
                "tie": i in tie,
            }
            for i in self.mismatches
        ]
        return {
            "images": self.images,
            "mismatch_count": len(self.mismatches),
            "tie_mismatch_count": len(self.ties),
            "real_mismatch_count": len(self.real_mismatches),
            "mismatches": mism,
            "golden_seconds": round(self.golden_seconds, 3),
            "golden_images_per_s": round(self.golden_images_per_s, 2),
            "qonnx_seconds": round(self.reference_seconds, 3),
            "qonnx_images_per_s": round(self.reference_images_per_s, 2),
        }


def check_agreement(
    qonnx_path,  # noqa: ANN001 - a path or a loaded qonnx ModelWrapper
    dataflow_path,  # noqa: ANN001 - a path or a loaded qonnx ModelWrapper
    images: np.ndarray,
    batch: int = 100,
    progress: ProgressFn | None = None,
) -> AgreementReport:
    """Compare the dataflow golden model's output with the QONNX model's on every input.

    ``images`` are the hardware's integer inputs (uint8 ``[N, 28, 28]`` for an image model,
    input quantizer codes otherwise); the QONNX model gets them in model space
    (:func:`bitfab.dataflow.inputs.to_model_space`). A class head compares classes (the QONNX
    model's argmax; for an ArgMax/TopK tail the argmax of the scores it takes) with ties as in
    :class:`AgreementReport`; a
    values head compares ``scale * output + bias`` with the model's output within
    :data:`VALUE_RTOL` of the output scale. ``progress(k)`` is called after each chunk of ``k``
    inputs, for the golden model and then for the QONNX model (2N inputs in all).
    """
    from bitfab.dataflow.transforms.absorb_argmax_tail import CLASS_TAILS

    golden = GoldenModel(dataflow_path)
    x = golden.check(images)
    # an index output (ArgMax/TopK tail): compare with the scores it was taken from
    index_out = any(t in CLASS_TAILS for t in golden.output_rec["tail"])
    ref = QonnxReference(qonnx_path, golden.input_rec, strip_tail=index_out)
    values = golden.head != "class"
    t0 = time.perf_counter()
    if values:
        g = golden.values(x, batch=batch)
        if progress is not None:
            progress(len(x))
    else:
        g = golden.classify(x, batch=batch, progress=progress)
    t1 = time.perf_counter()
    scores = []
    for start in range(0, len(x), batch):
        scores.append(ref.scores(x[start : start + batch], batch=batch))
        if progress is not None:
            progress(len(x[start : start + batch]))
    sc = np.concatenate(scores)
    t2 = time.perf_counter()
    if values:
        if sc.shape != g.shape:
            raise BitfabError(
                f"the QONNX model gives {sc.shape[1]} outputs per input, the dataflow graph "
                f"{g.shape[1]}"
            )
        scale = golden.output_rec["scale"]
        step = float(np.max(np.abs(scale))) if scale is not None else 1.0
        bad = np.any(np.abs(g - sc) > VALUE_RTOL * step, axis=1)
        mism = [int(i) for i in np.flatnonzero(bad)]
        return AgreementReport(len(x), mism, [], g, sc, t1 - t0, t2 - t1)
    r = np.argmax(sc, axis=1).astype(np.int64)
    mism = [int(i) for i in np.flatnonzero(g != r)]
    ties = []
    if mism:
        floor_scale = float(np.max(np.abs(sc))) if sc.size else 0.0
        int_scores = golden.scores(x[mism])
        for k, i in enumerate(mism):
            ok = 0 <= g[i] < int_scores.shape[1] and 0 <= r[i] < int_scores.shape[1]
            int_tie = ok and int_scores[k, g[i]] == int_scores[k, r[i]]
            # relative to this input's largest |score|, with a floor relative to the largest
            # over all inputs (all scores ~0: float noise of 1e-9 is no real difference)
            tol = TIE_RTOL * max(float(np.max(np.abs(sc[i]))), 1e-3 * floor_scale, 1e-12)
            if int_tie and sc[i, r[i]] - sc[i, g[i]] <= tol:
                ties.append(i)
    return AgreementReport(len(x), mism, ties, g, r, t1 - t0, t2 - t1)


def images_per_second(
    dataflow: str | os.PathLike[str], images: np.ndarray, batches: Sequence[int] = (1, 100)
) -> dict[int, float]:
    """Measured golden-model throughput (images/s) for each batch size, side by side."""
    gm = GoldenModel(dataflow)
    x = gm.check(images)
    out = {}
    for b in batches:
        gm.classify(x[:b], batch=b)  # warm up (lazy imports, batched copy)
        t = time.perf_counter()
        gm.classify(x, batch=b)
        out[b] = len(x) / (time.perf_counter() - t)
    return out


#: random inputs the dataflow stage runs through both graphs before it writes anything
SELF_CHECK_INPUTS = 32


def self_check(
    qonnx_model,  # noqa: ANN001 - the loaded QONNX ModelWrapper (or a path)
    dataflow_model,  # noqa: ANN001 - the HW-layer graph (ModelWrapper or path)
    source: str,
    n: int = SELF_CHECK_INPUTS,
    seed: int = 0,
) -> dict:
    """Run ``n`` random inputs (uniform over the input grid) through the QONNX model and the
    dataflow graph; raise :class:`BitfabError` if any output differs (beyond float ties), so a
    graph whose hardware output would not be the model's output is never written. Returns the
    record kept in ``dataflow.json``."""
    from bitfab.dataflow.inputs import input_record, random_inputs

    x = random_inputs(input_record(_load(dataflow_model)), n, seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # qonnx's rounding notes on annotated tensors
            rep = check_agreement(qonnx_model, dataflow_model, x, batch=n)
    except BitfabError as e:
        raise BitfabError(f"{source}: self-check: {e}") from None
    except Exception as e:  # qonnx execution of a graph it cannot run
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise BitfabError(
            f"{source}: self-check: executing the models failed ({type(e).__name__}: "
            f"{msg[:160]}); give --check 0 to skip the check"
        ) from None
    bad = rep.real_mismatches
    if bad:
        first = next(m for m in rep.summary()["mismatches"] if m["index"] == bad[0])
        raise BitfabError(
            f"{source}: the dataflow graph does not compute the model's output on {len(bad)} of "
            f"{n} random inputs (input {bad[0]}: QONNX {first['qonnx']}, dataflow "
            f"{first['golden']}); the conversion does not support this model's pattern: please "
            "report it with the model"
        )
    return {"inputs": n, "seed": seed, "mismatches": 0, "ties": len(rep.ties)}
