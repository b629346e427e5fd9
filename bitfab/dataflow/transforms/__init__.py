"""bitfab's own graph passes, one per module, in qonnx's ``Transformation`` style.

- :class:`~bitfab.dataflow.transforms.prepend_pixel_scale.PrependPixelScale`: raw UINT8 pixels in,
  ``Mul(1/255)`` in front of the model (absorbed into the first thresholds by streamlining).
- :class:`~bitfab.dataflow.transforms.remove_input_layout_op.RemoveInputLayoutOp`: drop a leading
  Reshape/Flatten/Transpose that does not change the order of the input bytes.
- :class:`~bitfab.dataflow.transforms.apply_folding.ApplyFolding`: set and check PE/SIMD per layer.
"""

from bitfab.dataflow.transforms.apply_folding import ApplyFolding
from bitfab.dataflow.transforms.prepend_pixel_scale import PrependPixelScale
from bitfab.dataflow.transforms.remove_input_layout_op import RemoveInputLayoutOp

__all__ = ["ApplyFolding", "PrependPixelScale", "RemoveInputLayoutOp"]
