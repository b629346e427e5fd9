"""Make the graph input the raw UINT8 pixel tensor: ``pixels -> Mul(1/255) -> model``."""

from __future__ import annotations

import json

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from bitfab.dataflow.inputs import INPUT_META, pixel_record

#: Name of the new graph input (raw pixels, FINN data type UINT8, values 0..255).
PIXEL_INPUT = "pixels"


class PrependPixelScale(Transformation):
    """Insert ``Mul(pixels, 1/255)`` before the first node and tag the new input ``UINT8``.

    bitfab models take float pixels in [0, 1] (= uint8 / 255). FINN's end-to-end flows merge a
    ToTensor pre-processing model for the same effect; a single scalar ``Mul`` is what that merge
    leaves after streamlining, and ``Streamline`` moves it into the first MultiThreshold. The graph
    input keeps its shape; its container type stays FLOAT (as FINN expects), its FINN data type
    becomes UINT8; the ``bitfab_input`` metadata records it (encoding ``pixels``, scale). Applying
    the pass twice does nothing the second time.
    """

    def __init__(self, scale: float = 1.0 / 255.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def apply(self, model: ModelWrapper) -> tuple[ModelWrapper, bool]:
        graph = model.graph
        old_in = graph.input[0]
        if old_in.name == PIXEL_INPUT:
            return model, False
        shape = model.get_tensor_shape(old_in.name)
        new_in = helper.make_tensor_value_info(PIXEL_INPUT, TensorProto.FLOAT, shape)
        scale_name = model.make_new_valueinfo_name()
        model.set_initializer(scale_name, np.asarray(self.scale, dtype=np.float32))
        mul = helper.make_node("Mul", [PIXEL_INPUT, scale_name], [old_in.name], name="PixelScale")
        # the old input becomes an intermediate tensor
        graph.value_info.append(
            helper.make_tensor_value_info(old_in.name, TensorProto.FLOAT, shape)
        )
        graph.input.remove(old_in)
        graph.input.insert(0, new_in)
        graph.node.insert(0, mul)
        model.set_tensor_datatype(PIXEL_INPUT, DataType["UINT8"])
        rec = pixel_record(shape, self.scale)
        model.set_metadata_prop(INPUT_META, json.dumps(rec))
        return model, False
