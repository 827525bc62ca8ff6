"""Velocities that follow the anchor's dynamics: its own notes keep theirs, new notes take the
anchor's level at their place in the bar.

:func:`profile` reads an anchor's dynamics once: the median velocity at each sixteenth of the bar
``(16,)`` and at each sixteenth of the beat ``(4,)`` (NaN where the anchor has no onset), the
overall median, and the velocity levels the anchor uses. :func:`follow` gives each note:

1. the velocity of the anchor note at the same onset and pitch in the segment;
2. else the median of the segment's anchor notes at the same onset (a chord keeps one level);
3. else the anchor's median at that sixteenth of the bar, then of the beat (metric accents);
4. else the anchor's overall median;

rounded to the nearest of the anchor's own levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from live.music.notes import DEFAULT_VELOCITY, ONSET, PITCH, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY


@dataclass(frozen=True)
class Dynamics:
    """An anchor's dynamics: ``bar`` ``(16,)`` and ``beat`` ``(4,)`` median velocities (NaN where
    no onset), ``median``, and ``levels`` ``(L,)`` the sorted distinct velocities it uses."""

    bar: np.ndarray
    beat: np.ndarray
    median: float
    levels: np.ndarray


def _medians(positions: np.ndarray, velocities: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, np.nan)
    for pos in np.unique(positions):
        out[pos] = np.median(velocities[positions == pos])
    return out


def profile(notes: np.ndarray) -> Dynamics:
    """The dynamics of an anchor's notes ``(N, 4)`` (absolute onsets); velocity 80 when empty."""
    if len(notes) == 0:
        return Dynamics(np.full(STEPS_PER_BAR, np.nan), np.full(STEPS_PER_BEAT, np.nan), float(DEFAULT_VELOCITY),
                        np.array([DEFAULT_VELOCITY]))
    onsets, velocities = notes[:, ONSET], notes[:, VELOCITY].astype(np.float64)
    return Dynamics(
        bar=_medians(onsets % STEPS_PER_BAR, velocities, STEPS_PER_BAR),
        beat=_medians(onsets % STEPS_PER_BEAT, velocities, STEPS_PER_BEAT),
        median=float(np.median(velocities)),
        levels=np.unique(notes[:, VELOCITY]),
    )


def follow(notes: np.ndarray, anchor_segment: np.ndarray, dynamics: Dynamics) -> np.ndarray:
    """``notes`` ``(N, 4)`` of one segment with velocities from the anchor's segment ``(M, 4)``
    and its :class:`Dynamics` (rules in the module docstring)."""
    out = notes.copy()
    if len(out) == 0:
        return out
    wanted = np.full(len(out), np.nan)
    same = out[:, ONSET, None] == anchor_segment[None, :, ONSET]
    exact = same & (out[:, PITCH, None] == anchor_segment[None, :, PITCH])
    velocities = anchor_segment[:, VELOCITY].astype(np.float64)
    count = same.sum(axis=1)
    chord = count > 0
    if chord.any():
        ordered = np.sort(np.where(same[chord], velocities[None, :], np.inf), axis=1)
        rows, k = np.arange(int(chord.sum())), count[chord]
        wanted[chord] = (ordered[rows, (k - 1) // 2] + ordered[rows, k // 2]) / 2.0
    hit = exact.any(axis=1)
    wanted[hit] = velocities[np.argmax(exact[hit], axis=1)]
    for table, size in ((dynamics.bar, STEPS_PER_BAR), (dynamics.beat, STEPS_PER_BEAT)):
        gap = np.isnan(wanted)
        wanted[gap] = table[out[gap, ONSET] % size]
    wanted[np.isnan(wanted)] = dynamics.median
    levels = dynamics.levels.astype(np.float64)
    out[:, VELOCITY] = levels[np.argmin(np.abs(wanted[:, None] - levels[None, :]), axis=1)]
    return out
