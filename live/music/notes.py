"""Note lists and the model's two views of a 2-bar segment.

A note list is an ``int32`` array ``(N, 4)`` with columns ``onset, pitch, duration, velocity``;
onset and duration are in sixteenth steps. A segment is 32 steps (2 bars of 4/4).

- ``pr_mat`` ``(32, 128)`` float32: the texture encoder's input; the duration of each note at its
  onset cell, 0 elsewhere.
- PianoTree grid ``(32, 16, 6)`` int64: per step, slot 0 is SOS, the step's notes follow in
  ascending pitch, then EOS, then PAD. Each slot is ``[pitch token, b4, b3, b2, b1, b0]`` with the
  five bits of ``duration - 1`` (MSB first); SOS, EOS and PAD slots carry the duration token 2.

A step holds at most ``MAX_NOTES_PER_STEP`` (14) notes: when more onsets share a step, the lowest
14 pitches are kept (bass and inner voices carry the texture; the top is usually doubled).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ONSET, PITCH, DURATION, VELOCITY = range(4)
STEPS_PER_BEAT = 4
BEATS_PER_BAR = 4
STEPS_PER_BAR = BEATS_PER_BAR * STEPS_PER_BEAT
STEPS = 32
BEATS_PER_SEGMENT = STEPS // STEPS_PER_BEAT
PITCHES = 128
SLOTS = 16
MAX_NOTES_PER_STEP = SLOTS - 2
DECODE_SLOTS = SLOTS - 1
SOS, EOS, PAD = 128, 129, 130
DUR_BITS = 5
DUR_PAD = 2
DEFAULT_VELOCITY = 80
FEATURE_MAP_SHAPE = (10, 8, 29)
"""The texture encoder's feature map of one segment: (channels, 4-step frames, pitch bins)."""
TEMPO_RANGE = (20.0, 300.0)
"""Tempi in BPM that anything plays at: the clock, an anchor's tempo, the tempo parameter."""
MELODY_CHANNEL = 0
ACCOMPANIMENT_CHANNEL = 1
"""MIDI channels (0-based) of the melody and the accompaniment, live and in rendered files."""

_BIT_WEIGHTS = 1 << np.arange(DUR_BITS - 1, -1, -1)


@dataclass(frozen=True)
class Segment:
    """One 2-bar segment of music: ``accompaniment`` and ``melody`` note lists ``(N, 4)``, onsets 0..31.

    What the renderers produce and the scheduler loops. ``melody`` is the content piece's melody
    in style mode, else the anchor's own (empty when it has none); ``index`` is the segment's
    position in the loop; ``shift`` is the melody's transposition in semitones (0 without content).
    """

    accompaniment: np.ndarray
    melody: np.ndarray
    index: int = 0
    shift: int = 0


def empty_notes() -> np.ndarray:
    """An empty note list ``(0, 4)``."""
    return np.zeros((0, 4), dtype=np.int32)


def make_notes(rows) -> np.ndarray:
    """Build a sorted note list ``(N, 4)`` from rows ``(onset, pitch, duration[, velocity])``."""
    arr = np.asarray(rows, dtype=np.int32)
    if arr.size == 0:
        return empty_notes()
    if arr.shape[1] == 3:
        arr = np.column_stack([arr, np.full(len(arr), DEFAULT_VELOCITY, np.int32)])
    return sort_notes(arr)


def sort_notes(notes: np.ndarray) -> np.ndarray:
    """Sort a note list ``(N, 4)`` by onset, then pitch."""
    if len(notes) == 0:
        return empty_notes()
    order = np.lexsort((notes[:, PITCH], notes[:, ONSET]))
    return np.ascontiguousarray(notes[order], dtype=np.int32)


def clip_to_segment(notes: np.ndarray, steps: int = STEPS) -> np.ndarray:
    """Keep notes with onsets in ``[0, steps)`` and cut durations at the segment end ``(N, 4)``."""
    keep = (notes[:, ONSET] >= 0) & (notes[:, ONSET] < steps)
    out = notes[keep].copy()
    out[:, DURATION] = np.clip(out[:, DURATION], 1, steps - out[:, ONSET])
    return out


def dedupe(notes: np.ndarray) -> np.ndarray:
    """Merge notes with the same (onset, pitch), keeping the longest and its velocity ``(N, 4)``."""
    if len(notes) == 0:
        return empty_notes()
    order = np.lexsort((-notes[:, DURATION], notes[:, PITCH], notes[:, ONSET]))
    ordered = notes[order]
    key = ordered[:, ONSET] * PITCHES + ordered[:, PITCH]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    return sort_notes(ordered[first])


def notes_to_pr_mat(notes: np.ndarray) -> np.ndarray:
    """Note list of one segment ``(N, 4)`` -> ``pr_mat`` ``(32, 128)`` float32.

    Notes outside the segment are dropped, durations are cut at its end, and notes sharing an
    (onset, pitch) cell merge into the longest.
    """
    pr = np.zeros((STEPS, PITCHES), dtype=np.float32)
    clipped = dedupe(clip_to_segment(notes))
    pr[clipped[:, ONSET], clipped[:, PITCH]] = clipped[:, DURATION]
    return pr


def pr_mat_to_notes(pr_mat: np.ndarray, velocity: int = DEFAULT_VELOCITY) -> np.ndarray:
    """``pr_mat`` ``(32, 128)`` -> note list ``(N, 4)`` with the given velocity."""
    onsets, pitches = np.nonzero(pr_mat > 0)
    durations = np.rint(pr_mat[onsets, pitches]).astype(np.int32)
    rows = np.column_stack([onsets, pitches, np.maximum(durations, 1), np.full(len(onsets), velocity)])
    return sort_notes(rows.astype(np.int32))


def limit_polyphony(notes: np.ndarray, per_step: int = MAX_NOTES_PER_STEP) -> np.ndarray:
    """Keep the lowest ``per_step`` pitches of every onset step ``(N, 4)`` (input sorted)."""
    if len(notes) == 0:
        return notes
    onsets = notes[:, ONSET]
    starts = np.r_[0, np.flatnonzero(onsets[1:] != onsets[:-1]) + 1]
    rank = np.arange(len(notes)) - np.repeat(starts, np.diff(np.r_[starts, len(notes)]))
    return notes[rank < per_step]


def notes_to_grid(notes: np.ndarray) -> np.ndarray:
    """Note list of one segment ``(N, 4)`` -> PianoTree grid ``(32, 16, 6)`` int64."""
    grid = np.full((STEPS, SLOTS, 1 + DUR_BITS), DUR_PAD, dtype=np.int64)
    grid[:, :, 0] = PAD
    grid[:, 0, 0] = SOS
    kept = limit_polyphony(dedupe(clip_to_segment(notes)))
    counts = np.bincount(kept[:, ONSET], minlength=STEPS)
    if len(kept):
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        slot = 1 + np.arange(len(kept)) - starts[kept[:, ONSET]]
        grid[kept[:, ONSET], slot, 0] = kept[:, PITCH]
        bits = ((kept[:, DURATION, None] - 1) // _BIT_WEIGHTS) % 2
        grid[kept[:, ONSET], slot, 1:] = bits
    grid[np.arange(STEPS), counts + 1, 0] = EOS
    return grid


def grid_to_notes(grid: np.ndarray, velocity: int = DEFAULT_VELOCITY) -> np.ndarray:
    """PianoTree grid ``(32, S, 6)`` (with or without the SOS slot) -> note list ``(N, 4)``.

    Each step is read up to its first EOS; SOS and PAD tokens are skipped; durations are cut at
    the segment end.
    """
    tokens = grid[:, :, 0]
    before_eos = np.cumsum(tokens == EOS, axis=1) == 0
    is_note = before_eos & (tokens < PITCHES)
    steps, slots = np.nonzero(is_note)
    bits = np.clip(grid[steps, slots, 1:], 0, 1)
    durations = bits @ _BIT_WEIGHTS + 1
    rows = np.column_stack([steps, tokens[steps, slots], durations, np.full(len(steps), velocity)])
    return dedupe(clip_to_segment(rows.astype(np.int32)))


def transpose_notes(notes: np.ndarray, shift: int) -> np.ndarray:
    """Transpose a note list ``(N, 4)`` by ``shift`` semitones; notes leaving 0..127 are dropped."""
    out = notes.copy()
    out[:, PITCH] += shift
    return out[(out[:, PITCH] >= 0) & (out[:, PITCH] < PITCHES)]


def split_segments(notes: np.ndarray, n_steps: int, hop: int = STEPS // 2) -> list[np.ndarray]:
    """Cut a piece's note list ``(N, 4)`` into 2-bar windows every ``hop`` steps.

    A note belongs to the window its onset falls in (notes sounding into a window from before
    it are not repeated); durations are cut at the window end. Returns one ``(n, 4)`` array per
    window start ``0, hop, ...`` with ``start + 32 <= n_steps``.
    """
    out = []
    for start in range(0, n_steps - STEPS + 1, hop):
        shifted = notes.copy()
        shifted[:, ONSET] -= start
        out.append(clip_to_segment(shifted))
    return out


def join_segments(segments: list[np.ndarray], length: int = STEPS) -> np.ndarray:
    """Concatenate consecutive segments ``[(n_i, 4)]`` into one note list with absolute onsets."""
    parts = []
    for i, seg in enumerate(segments):
        shifted = seg.copy()
        shifted[:, ONSET] += i * length
        parts.append(shifted)
    return sort_notes(np.concatenate(parts)) if parts else empty_notes()
