"""vis2mus-live: the runtime (numpy + onnxruntime; never torch)."""
