"""Example models from outside bitfab (plain Brevitas), used by tests and benchmarks."""
