"""Design-space exploration: sweeps over precision x array kind x folding x board."""
