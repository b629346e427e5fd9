"""The ``dataflow.json`` summary of a folded HW-layer graph."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper

from bitfab.dataflow.folding import FoldingPlan
from bitfab.dataflow.inputs import describe_input, describe_output, input_record, output_record
from bitfab.dataflow.layers import is_hw_node, layer_record

#: Version of the dataflow.json layout (bump on incompatible changes).
REPORT_VERSION = 2


def dataflow_report(
    model: ModelWrapper,
    plan: FoldingPlan,
    source: str,
    folding: dict,
    checked: dict | None = None,
) -> dict:
    """Per-layer records plus whole-model estimates.

    ``input`` / ``output`` say what the accelerator's words hold (:mod:`bitfab.dataflow.inputs`:
    pixels or input quantizer codes with their scale; class index or values with the output
    scale/bias); ``self_check`` is the random-input agreement run before writing (None if
    skipped).

    ``cycles_per_image`` is the slowest layer's estimated cycles (the streaming pipeline's
    initiation interval), ``latency_cycles_estimate`` the sum over layers (one image through an
    empty pipeline, ignoring FIFOs), ``bottleneck`` the slowest layer's name.
    ``folding`` describes how the folding was chosen (mode and target).
    """
    layers = [layer_record(model, n) for n in model.graph.node if is_hw_node(n)]
    inp = model.graph.input[0].name
    out = model.graph.output[0].name
    irec, orec = input_record(model), output_record(model)
    cycles = max((ly["est_cycles"] for ly in layers), default=0)
    return {
        "version": REPORT_VERSION,
        "source": source,
        "input": {
            "name": inp,
            "shape": list(model.get_tensor_shape(inp)),
            "dtype": model.get_tensor_datatype(inp).name,
            "encoding": irec["encoding"],
            "model_shape": irec["shape"],
            "range": [irec["min"], irec["max"]],
            "scale": irec["scale"],
            "perm": irec.get("perm"),
            "meaning": describe_input(irec),
        },
        "output": {
            "name": out,
            "shape": list(model.get_tensor_shape(out)),
            "dtype": model.get_tensor_datatype(out).name,
            "head": orec["head"],
            "absorbed_tail": orec["tail"],
            "scale": orec["scale"],
            "bias": orec["bias"],
            "meaning": describe_output(orec),
        },
        "self_check": checked,
        "op_types": sorted({ly["op_type"] for ly in layers}),
        "layers": layers,
        "cycles_per_image": cycles,
        "bottleneck": plan.bottleneck,
        "latency_cycles_estimate": sum(ly["est_cycles"] for ly in layers),
        "lut_estimate": sum(ly["est_luts"] for ly in layers),
        "folding": {**folding, "target_met": plan.target_met},
    }
