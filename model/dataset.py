"""Training examples from the prepared POP909 file (format: docs/architecture.md).

An example is one 2-bar segment transposed by ``shift`` semitones (notes leaving 0..127 are
dropped, chord rows roll with the bass absolute): chord rows ``(8, 36)``, ``pr_mat`` ``(32, 128)``
and the PianoTree grid ``(32, 16, 6)``. A batch cuts the grid's slot axis to the longest step in
the batch (SOS + notes + EOS), which is what makes vectorised training fast.

A cross-shifted example feeds the texture encoder the segment ``offset`` semitones away from the
chord rows and the target (``texture_offsets``): the decoder must put the texture on the chords it is
given, which is what a chord swap asks of it, with the true answer known.

The order and transpositions of an epoch depend only on ``(seed, epoch)``, so a run can resume at
any batch and see exactly the batches it would have seen.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from live.music.chords import progression_rows, transpose_chord_rows
from live.music.notes import ONSET, PITCH, make_notes, notes_to_grid, notes_to_pr_mat, transpose_notes
from model.pop909 import load_prepared, segment_notes

SHIFT_LOW, SHIFT_HIGH = -6, 5
CROSS_SHIFT_MAX = 5
TRAIN, VALIDATION = 0, 1


class Segments:
    """The prepared file in memory: accompaniment notes and chord rows per segment."""

    def __init__(self, path: str):
        self.data = load_prepared(path)
        self.meta: dict = self.data["meta"]
        self.split = self.data["split"]
        self.song = self.data["song"]

    def __len__(self) -> int:
        return len(self.split)

    def indices(self, split: int) -> np.ndarray:
        """Segment indices of a split (``TRAIN`` or ``VALIDATION``), ascending."""
        return np.flatnonzero(self.split == split)

    def notes(self, index: int) -> np.ndarray:
        """Accompaniment note list ``(N, 4)`` of a segment."""
        return segment_notes(self.data, int(index), "acc")

    def chords(self, index: int) -> np.ndarray:
        """Chord rows ``(8, 36)`` float32 of a segment."""
        return self.data["chords"][int(index)].astype(np.float32)

    def example(self, index: int, shift: int = 0,
                offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Chord rows ``(8, 36)`` and grid ``(32, 16, 6)`` of a segment transposed by ``shift``, and
        its ``pr_mat`` ``(32, 128)`` transposed by ``shift + offset``."""
        notes = self.notes(index)
        target = transpose_notes(notes, shift)
        texture = transpose_notes(notes, shift + offset) if offset else target
        return (transpose_chord_rows(self.chords(index), shift), notes_to_pr_mat(texture),
                notes_to_grid(target))

    def batch(self, indices, shifts=None, offsets=None) -> dict[str, torch.Tensor]:
        """Stack examples into tensors ``chords (B, 8, 36)``, ``pr_mat (B, 32, 128)`` and
        ``grid (B, 32, S, 6)`` with ``S`` = the batch's longest step (SOS + notes + EOS);
        ``offsets`` (default none) cross-shift the ``pr_mat`` of each example."""
        shifts = np.zeros(len(indices), int) if shifts is None else shifts
        offsets = np.zeros(len(indices), int) if offsets is None else offsets
        return collate([self.example(i, int(s), int(o)) for i, s, o in zip(indices, shifts, offsets)])


def collate(examples: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Examples ``(chords, pr_mat, grid)`` -> batch tensors with the slot axis cut to the longest
    step (see :meth:`Segments.batch`)."""
    chords = torch.from_numpy(np.stack([e[0] for e in examples]))
    pr_mat = torch.from_numpy(np.stack([e[1] for e in examples]))
    grid = torch.from_numpy(np.stack([e[2] for e in examples]))
    slots = int((grid[..., 0] < 128).sum(-1).max()) + 2
    return {"chords": chords, "pr_mat": pr_mat, "grid": grid[:, :, :slots].contiguous()}


def epoch_plan(indices: np.ndarray, epoch: int, seed: int, transpose: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled segment order ``(n,)`` and per-example shifts ``(n,)`` in ``-6..5`` for one epoch,
    a pure function of ``(seed, epoch)``."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(indices)
    shifts = rng.integers(SHIFT_LOW, SHIFT_HIGH + 1, len(order)) if transpose else np.zeros(len(order), int)
    return order, shifts


def texture_offsets(n: int, epoch: int, seed: int, share: float) -> np.ndarray:
    """Texture offsets ``(n,)`` for one epoch: a ``share`` of the examples get ``±1..±CROSS_SHIFT_MAX``
    semitones, the rest 0; a pure function of ``(seed, epoch, share)``, drawn apart from
    :func:`epoch_plan` so the order and shifts stay those of a run without them."""
    rng = np.random.default_rng([seed, epoch, 1])
    chosen = rng.random(n) < share
    size = rng.integers(1, CROSS_SHIFT_MAX + 1, n) * rng.choice([-1, 1], n)
    return np.where(chosen, size, 0)


def synthetic_file(path: str, n_songs: int = 6, segments_per_song: int = 8, seed: int = 0) -> dict:
    """Write a small file in the prepared format from composed accompaniment patterns (block
    chords, arpeggios, bass + offbeat chords over I-vi-IV-V style progressions); song 0 is the
    validation song. For tests and smoke runs; returns its meta."""
    rng = np.random.default_rng(seed)
    progressions = ["C Am F G", "F G Em Am", "D Bm G A", "Bb Gm Eb F", "E C#m A B", "G D Em C"]
    acc, chords, songs, bars = [], [], [], []
    for song in range(n_songs):
        for bar in range(segments_per_song):
            prog = progressions[int(rng.integers(len(progressions)))]
            rows = progression_rows(prog, 16)[:8] if bar % 2 == 0 else progression_rows(prog, 16)[8:]
            acc.append(_pattern(rows, int(rng.integers(3)), rng))
            chords.append(rows)
            songs.append(song)
            bars.append(bar)
    split = np.asarray([VALIDATION if s == 0 else TRAIN for s in songs], np.uint8)
    meta = {"songs": n_songs, "segments": len(acc), "split_seed": seed, "synthetic": True}
    offsets = np.r_[0, np.cumsum([len(a) for a in acc])].astype(np.int64)
    empty = np.zeros((0, 4), np.int16)
    np.savez_compressed(path, acc_notes=np.concatenate(acc).astype(np.int16), acc_offsets=offsets,
                        mel_notes=empty, mel_offsets=np.zeros(len(acc) + 1, np.int64),
                        chords=np.asarray(chords, np.uint8), song=np.asarray(songs, np.int16),
                        bar=np.asarray(bars, np.int32), split=split, meta=np.asarray(json.dumps(meta)))
    return meta


def _pattern(rows: np.ndarray, kind: int, rng: np.random.Generator) -> np.ndarray:
    """Accompaniment ``(N, 4)`` for 8 beats of chord rows: 0 block chords on each beat, 1 rising
    arpeggio in eighths, 2 bass on beats 1 and 3 with chords on the off-beats."""
    out = []
    for beat in range(8):
        row = rows[beat]
        if row[:12].max() == 0:
            continue
        pcs = np.flatnonzero(row[12:24])
        bass = 36 + int(np.argmax(row[24:])) + 12 * int(rng.integers(2))
        voicing = sorted(60 + (pcs - 60) % 12)
        step = 4 * beat
        if kind == 0:
            out += [(step, p, 4) for p in voicing] + ([(step, bass, 8)] if beat % 2 == 0 else [])
        elif kind == 1:
            out += [(step + 2 * k, voicing[k % len(voicing)], 2) for k in range(2)]
            if beat % 2 == 0:
                out.append((step, bass, 8))
        else:
            out += [(step, bass, 2)] if beat % 2 == 0 else [(step + 2, p, 2) for p in voicing]
    notes = make_notes(out)
    keep = (notes[:, ONSET] < 32) & (notes[:, PITCH] < 128)
    return notes[keep]
