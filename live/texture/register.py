"""Register: keep the accompaniment inside a playable range and under the melody.

Notes that land on the same onset and pitch after a move merge into the longest; a note list
that needs no move comes back as it is.

- :func:`fold_into`: notes below the range move up by octaves, notes above it down, so the
  harmony (pitch classes) stays and nothing rumbles or shrills.
- :func:`keep_under`: an accompaniment note that sounds with a melody note at or above it moves
  down by octaves until it is under every melody note it sounds with; one that cannot go low
  enough without leaving the range is dropped.
"""

from __future__ import annotations

import numpy as np

from live.music.notes import DURATION, ONSET, PITCH, PITCHES, dedupe

DEFAULT_RANGE = (28, 100)
"""E1..E7, MIDI pitches, inclusive."""


def check_range(low: int, high: int) -> tuple[int, int]:
    """``(low, high)`` as ints; ``ValueError`` unless ``0 <= low`` and ``high <= 127`` span at
    least an octave (folding by octaves needs 12 semitones)."""
    low, high = int(low), int(high)
    if not (0 <= low and high < PITCHES and high - low >= 11):
        raise ValueError(f"register range must be MIDI pitches 0..127 spanning an octave or more, got {low}..{high}")
    return low, high


def fold_into(notes: np.ndarray, low: int = DEFAULT_RANGE[0], high: int = DEFAULT_RANGE[1]) -> np.ndarray:
    """Note list ``(N, 4)`` with every pitch moved by octaves into ``low..high`` (inclusive)."""
    low, high = check_range(low, high)
    out = notes.copy()
    pitch = out[:, PITCH]
    below, above = pitch < low, pitch > high
    pitch[below] += 12 * ((low - pitch[below] + 11) // 12)
    pitch[above] -= 12 * ((pitch[above] - high + 11) // 12)
    return dedupe(out) if (below | above).any() else out


def keep_under(accompaniment: np.ndarray, melody: np.ndarray, low: int = DEFAULT_RANGE[0]) -> np.ndarray:
    """Accompaniment ``(N, 4)`` moved down by octaves under every melody note ``(M, 4)`` it
    overlaps in time; notes that would fall below ``low`` are dropped."""
    if len(melody) == 0 or len(accompaniment) == 0:
        return accompaniment
    start, end = accompaniment[:, ONSET], accompaniment[:, ONSET] + accompaniment[:, DURATION]
    m_start, m_end = melody[:, ONSET], melody[:, ONSET] + melody[:, DURATION]
    overlap = (start[:, None] < m_end[None, :]) & (m_start[None, :] < end[:, None])
    ceiling = np.where(overlap, melody[None, :, PITCH], 128).min(axis=1)
    out = accompaniment.copy()
    pitch = out[:, PITCH]
    over = pitch >= ceiling
    if not over.any():
        return accompaniment
    pitch[over] -= 12 * ((pitch[over] - ceiling[over]) // 12 + 1)
    return dedupe(out[pitch >= low])
