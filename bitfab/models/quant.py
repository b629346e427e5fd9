"""Brevitas quantizers for the zoo, after Brevitas' bnn_pynq examples (FINN's reference models).

All scales are constants (per tensor), so the exported QONNX ``Quant``/``BipolarQuant`` nodes have
fixed scales that FINN streamlining turns into thresholds:

- weights: 1 bit -> bipolar {-1, +1} (scale 1); b > 1 bits -> signed narrow-range integers
  ``k / (2**(b-1) - 1)``, ``|k| <= 2**(b-1) - 1``, i.e. values in [-1, 1].
- hidden activations: 1 bit -> bipolar sign {-1, +1} (as bnn_pynq); b > 1 -> unsigned integers
  ``k / (2**b - 1)`` in [0, 1], a clipped ReLU (the BatchNorm before it learns the range). Unsigned
  uses all 2**b levels (bnn_pynq's signed narrow range leaves 2 bits ternary); FINN thresholds
  produce either kind.
- input: 1 bit -> bipolar sign of ``x - 0.5`` (done in the model); b > 1 -> unsigned integers
  ``k / (2**b - 1)`` in [0, 1], so at 8 bits the input Quant reproduces the uint8 pixel exactly.
"""

from __future__ import annotations

from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver
from dependencies import value


class CommonQuant(ExtendedInjector):
    """Constant per-tensor scale, zero point 0, round-to-nearest; bipolar at 1 bit."""

    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True

    @value
    def quant_type(bit_width):
        if bit_width is None:
            return QuantType.FP
        if bit_width == 1:
            return QuantType.BINARY
        return QuantType.INT


class WeightQuant(CommonQuant, WeightQuantSolver):
    """Weights in [-1, 1]: bipolar at 1 bit, signed narrow-range integers above."""

    scaling_const = 1.0


class BipolarActQuant(CommonQuant, ActQuantSolver):
    """1-bit hidden activations (and 1-bit input): bipolar sign {-1, +1}."""

    min_val = -1.0
    max_val = 1.0


class UnsignedActQuant(CommonQuant, ActQuantSolver):
    """b-bit hidden activations (b >= 2): unsigned ``k / (2**b - 1)`` in [0, 1], a clipped ReLU."""

    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 1.0


class InputQuant(UnsignedActQuant):
    """Unsigned input in [0, 1] with ``2**b - 1`` steps (b >= 2); at 8 bits that is pixel / 255."""
