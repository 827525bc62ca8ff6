"""ONNX export of the poly-dis model, parity checks and latency benchmarks (imports torch)."""

from __future__ import annotations

from typing import Callable


def exporter() -> Callable[..., dict] | None:
    """``export.onnx_export.export_graphs`` when torch and onnx can be imported, else ``None``.

    What the runtime's callers hand to ``live.inference.graphs.ensure_graphs``; importing this
    package does not import torch.
    """
    try:
        from export.onnx_export import export_graphs
    except ImportError:
        return None
    return export_graphs
