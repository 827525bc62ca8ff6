"""ONNX export of the poly-dis model, parity checks and latency benchmarks (imports torch)."""
