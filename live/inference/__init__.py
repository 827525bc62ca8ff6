"""The inference engine: ONNX graphs of a weights file and the onnxruntime sessions that run them (no torch)."""
