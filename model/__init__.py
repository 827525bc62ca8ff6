"""PyTorch side of vis2mus-live: the poly-dis model, POP909 preparation, training and evaluation."""
