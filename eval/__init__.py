"""Face-verification evaluation: benchmarks as distributed, the 3DMM-CNN protocol, and the verify CLI."""
