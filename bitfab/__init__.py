"""bitfab: low-bit neural networks to verified open-toolchain FPGA bitstreams."""

__version__ = "0.1.0"
