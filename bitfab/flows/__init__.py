"""Cross-stage orchestration: ``build`` (model -> verified bitstream), ``pipeline`` (the main
job), ``mixed`` (hardware-aware mixed precision) and ``explore`` (design-space sweeps).

The open-toolchain back end these drive lives one layer down, in :mod:`bitfab.fpga`.
"""
