"""Randomly initialised poly-dis weights for tests and benchmarks before trained ones exist.

A freshly initialised decoder emits the same token at every slot (always EOS or never EOS), which
leaves early exit and ragged batches untested. ``varied=True`` scales the notes GRU and the note
embedding by 3 and the EOS row of the pitch head by 20, so steps end after 0 to 15 notes depending
on the state, as with a trained model; it also scales the posterior-mean layers of both encoders
by 15 so that encoded latents spread like a trained model's (about unit scale).

torch is imported when weights are made, so a test module may import this one on a runtime-only
install; :func:`random_weights` skips the calling test there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def write_random_weights(path: str | Path, config: str = "tiny", seed: int = 0, varied: bool = True) -> Path:
    """Save a random model of ``CONFIGS[config]`` to ``path`` (state dict) and its model card
    (``path`` with ``.json``); returns ``path``."""
    import torch

    from model.polydis import CONFIGS, EOS, PolyDis, card_path

    path = Path(path)
    torch.manual_seed(seed)
    model = PolyDis(CONFIGS[config])
    if varied:
        with torch.no_grad():
            dec = model.decoder
            for param in list(dec.notes_gru.parameters()) + list(dec.note_embedding.parameters()):
                param.mul_(3.0)
            dec.pitch_out.weight[EOS].mul_(20.0)
            for param in list(model.chord_enc.mu.parameters()) + list(model.texture_head.mu.parameters()):
                param.mul_(15.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    card_path(path).write_text(json.dumps({"config": model.cfg.to_dict(), "note": f"random {config}, seed {seed}"}))
    return path


def random_weights(folder: Path) -> Path:
    """Plain random weights of the small model (seed 0) in ``folder``; skips the test without torch."""
    pytest.importorskip("torch", reason="exporting the test model needs torch (pip install -e .[train])")
    return write_random_weights(Path(folder) / "random-small.pt", "small", seed=0, varied=False)
