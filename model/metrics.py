"""Note-level metrics shared by training (greedy validation) and evaluation.

All functions take note lists ``(N, 4)`` (``onset, pitch, duration, velocity``) of one segment.
"""

from __future__ import annotations

import numpy as np
import torch

from live.music.notes import DURATION, ONSET, PITCH, grid_to_notes


def note_keys(notes: np.ndarray, with_duration: bool = False) -> set[tuple[int, ...]]:
    """Set of ``(onset, pitch)`` or ``(onset, pitch, duration)`` tuples of a note list."""
    cols = [ONSET, PITCH, DURATION] if with_duration else [ONSET, PITCH]
    return {tuple(int(v) for v in row) for row in notes[:, cols]}


def match_counts(ref: np.ndarray, est: np.ndarray, with_duration: bool = False) -> np.ndarray:
    """``[true positives, estimated, reference]`` counts ``(3,)`` for one segment."""
    a, b = note_keys(ref, with_duration), note_keys(est, with_duration)
    return np.array([len(a & b), len(b), len(a)], dtype=np.int64)


def f1_from_counts(counts: np.ndarray) -> float:
    """Micro F1 from summed ``[tp, n_est, n_ref]``; 1.0 when both are empty."""
    tp, n_est, n_ref = (int(c) for c in counts)
    if n_est + n_ref == 0:
        return 1.0
    return 2.0 * tp / (n_est + n_ref)


def onset_pattern(notes: np.ndarray, steps: int = 32) -> np.ndarray:
    """Per-step onset/no-onset pattern ``(steps,)`` bool."""
    out = np.zeros(steps, dtype=bool)
    out[notes[:, ONSET]] = True
    return out


def pattern_counts(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """``[tp, n_est, n_ref]`` over onset steps (the texture onset F1 of a swap)."""
    a, b = onset_pattern(ref), onset_pattern(est)
    return np.array([np.sum(a & b), np.sum(b), np.sum(a)], dtype=np.int64)


def grids_to_notes(grid: torch.Tensor) -> list[np.ndarray]:
    """Decoded grids ``(B, 32, 15, 6)`` -> ``B`` note lists ``(N, 4)``."""
    return [grid_to_notes(g) for g in grid.numpy()]
