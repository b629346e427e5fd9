"""The PTQ method names and defaults (torch-free, so the CLI can list them without torch)."""

#: Post-training quantization methods of :func:`bitfab.models.ptq.quantize`.
METHODS = ("minmax", "mse", "bias-correction", "equalize", "gptq", "adaround")
#: Calibration images by default.
DEFAULT_CALIB = 512
