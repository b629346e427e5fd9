"""bitfab's own graph passes, one per module, in qonnx's ``Transformation`` style.

- :class:`~bitfab.dataflow.transforms.prepend_pixel_scale.PrependPixelScale`: raw UINT8 pixels in,
  ``Mul(1/255)`` in front of the model (absorbed into the first thresholds by streamlining).
- :class:`~bitfab.dataflow.transforms.quantizer_input.QuantizerInput`: the graph input becomes
  the integer codes of the model's own input quantizer (non-image models).
- :class:`~bitfab.dataflow.transforms.absorb_argmax_tail.AbsorbArgmaxTail`: drop a trailing
  Softmax/LogSoftmax/ArgMax/TopK(k=1) (the class is unchanged).
- :class:`~bitfab.dataflow.transforms.absorb_input_transpose.AbsorbInputTranspose`: a leading
  NCHW -> NHWC Transpose leaves the graph (its ``perm`` recorded; the feeder applies it).
- :class:`~bitfab.dataflow.transforms.exact_trunc_floor.ExactTruncFloor`: FLOOR rounding on a
  Trunc (average pool) whose rounding mode cannot change its result.
- :class:`~bitfab.dataflow.transforms.strip_output_affine.StripOutputAffine`: the constant
  scale/bias after the last HW layer of a values head goes into metadata.
- :class:`~bitfab.dataflow.transforms.move_flatten_before_threshold.MoveFlattenBeforeSharedThreshold`:
  flatten before a per-tensor input quantizer, so its Thresholding has ``C*H*W`` channels to fold.
- :class:`~bitfab.dataflow.transforms.remove_input_layout_op.RemoveInputLayoutOp`: drop a leading
  Reshape/Flatten/Transpose that does not change the order of the input bytes.
- :class:`~bitfab.dataflow.transforms.remove_identity_thresholding.RemoveIdentityThresholding`:
  drop a Thresholding that maps every input value to itself (8-bit pixel input quantizers).
- :class:`~bitfab.dataflow.transforms.apply_folding.ApplyFolding`: set and check PE/SIMD/parallel_window per layer.
- :class:`~bitfab.dataflow.transforms.minimize_accumulators.MinimizeAccumulators`: FINN's
  accumulator minimization, with the XNOR-popcount range fixed.
- :class:`~bitfab.dataflow.transforms.set_batch_size.SetBatchSize`: batch N copy for execution.
"""

from bitfab.dataflow.transforms.absorb_argmax_tail import AbsorbArgmaxTail
from bitfab.dataflow.transforms.absorb_input_transpose import AbsorbInputTranspose
from bitfab.dataflow.transforms.apply_folding import ApplyFolding
from bitfab.dataflow.transforms.exact_trunc_floor import ExactTruncFloor
from bitfab.dataflow.transforms.minimize_accumulators import MinimizeAccumulators
from bitfab.dataflow.transforms.move_flatten_before_threshold import (
    MoveFlattenBeforeSharedThreshold,
)
from bitfab.dataflow.transforms.prepend_pixel_scale import PrependPixelScale
from bitfab.dataflow.transforms.quantizer_input import QuantizerInput
from bitfab.dataflow.transforms.remove_identity_thresholding import RemoveIdentityThresholding
from bitfab.dataflow.transforms.remove_input_layout_op import RemoveInputLayoutOp
from bitfab.dataflow.transforms.set_batch_size import SetBatchSize
from bitfab.dataflow.transforms.strip_output_affine import StripOutputAffine

__all__ = [
    "AbsorbArgmaxTail",
    "AbsorbInputTranspose",
    "ApplyFolding",
    "ExactTruncFloor",
    "MinimizeAccumulators",
    "MoveFlattenBeforeSharedThreshold",
    "PrependPixelScale",
    "QuantizerInput",
    "RemoveIdentityThresholding",
    "RemoveInputLayoutOp",
    "SetBatchSize",
    "StripOutputAffine",
]
