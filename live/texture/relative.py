"""Relative decoding: the anchor, changed note by note as the model changes its decode.

The model never reconstructs an anchor exactly, and greedy decoding is chaotic: the smallest edit
of the feature map swaps the anchor for another decode. So feel mode does not play decodes. At
load, each anchor segment is decoded unedited (``reference``) and at growing |alpha| on one side
of a fader (``decodes``); :func:`moves` compares them, by ``(onset, pitch)``:

- **additions**: notes a decode has that neither the reference nor the anchor has, leaving out
  those that would sound together with an anchor note (or an earlier addition) of the same pitch;
- **removals**: anchor notes a decode no longer *supports* (no note at the same onset with the
  same pitch class). Notes the reference supported (the edit really took them away) come before
  notes the model never reproduced. On a side that thins the texture (darker), the other anchor
  notes follow, so it thins even where the model only adds. On a side that fills the texture
  (brighter), anchor notes doubled an octave up follow the model's additions, so it fills even
  where the model names few new notes.

Each list is ordered by the first alpha at which the change appears; additions then by how far
they lie outside the anchor segment's pitch span (inside first, so the register widens step by
step), removals by tier; then by how many of the decodes make the change (steady ones first),
then by metre (additions on strong positions first, removals on weak ones first), then higher
pitches first (brighter adds high notes first, darker takes high notes away first). A side that
lightens the texture (``upward``) puts additions below the anchor segment's lowest note last. :func:`apply` plays the first ``share(u)`` of each list
(``live.texture.calibration.share``), so a fader move adds to or takes back from the same
changes: the music at ``u`` holds the music at any smaller ``|u|`` on that side, and unchanged
notes keep the anchor's pitches, lengths and velocities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from live.music.notes import DURATION, ONSET, PITCH, PITCHES, STEPS_PER_BAR, STEPS_PER_BEAT, empty_notes, sort_notes
from live.texture.calibration import share


@dataclass(frozen=True)
class Moves:
    """The ordered changes of one fader side on one anchor segment: ``additions`` ``(A, 4)`` new
    notes, ``removals`` ``(R, 4)`` anchor notes."""

    additions: np.ndarray
    removals: np.ndarray


NO_MOVES = Moves(empty_notes(), empty_notes())


def note_keys(notes: np.ndarray) -> np.ndarray:
    """``onset * 128 + pitch`` of a note list ``(N, 4)`` -> ``(N,)`` int64."""
    return notes[:, ONSET].astype(np.int64) * PITCHES + notes[:, PITCH]


def metric_weight(onsets: np.ndarray) -> np.ndarray:
    """Metric strength of sixteenth steps ``(N,)``: 4 on a bar's downbeat, 3 on its half, 2 on a
    beat, 1 on an eighth, 0 on the other sixteenths."""
    onsets = np.asarray(onsets)
    return sum((onsets % size == 0).astype(int)
               for size in (STEPS_PER_BAR, STEPS_PER_BAR // 2, STEPS_PER_BEAT, STEPS_PER_BEAT // 2))


def supported(anchor: np.ndarray, decoded: np.ndarray) -> np.ndarray:
    """``(M,)`` bool: has ``decoded`` ``(N, 4)`` a note at each anchor note's onset with its pitch
    class?"""
    return np.isin(_chroma_keys(anchor), _chroma_keys(decoded))


def _chroma_keys(notes: np.ndarray) -> np.ndarray:
    return notes[:, ONSET].astype(np.int64) * 12 + notes[:, PITCH] % 12


def moves(anchor: np.ndarray, reference: np.ndarray, decodes: list[np.ndarray], add_cap: float,
          remove_cap: float, thin: bool = False, upward: bool = False, fill: bool = False,
          top: int = PITCHES - 1) -> Moves:
    """The ordered changes (module docstring) of one anchor segment ``(M, 4)`` from its
    ``reference`` decode and the ``decodes`` at growing |alpha|, each ``(N_k, 4)``; at most
    ``add_cap`` and ``remove_cap`` times ``M`` of each kind (at least one of a kind whose cap is
    not 0). ``thin``: after the removals the model makes, every other anchor note is a removal
    candidate too (weak metre and high pitch first), so a side that must thin the texture can even
    where the model only adds. ``upward``: additions below the anchor segment's lowest note come
    after all others (a side that lightens the texture adds above its bass first). ``fill``: after
    the model's additions, anchor notes an octave up to pitch ``top`` (:func:`doublings`) are
    addition candidates too, so a side that must fill the texture can even where the model names
    few new notes."""
    n_add, n_rem = (max(1, int(round(cap * len(anchor)))) if cap > 0 else 0 for cap in (add_cap, remove_cap))
    candidates = _additions(anchor, reference, decodes, upward)
    if fill:
        candidates = np.concatenate([candidates, doublings(anchor, top)])
    return Moves(_without_overlaps(candidates, anchor)[:n_add],
                 _removals(anchor, reference, decodes, thin)[:n_rem])


def _additions(anchor: np.ndarray, reference: np.ndarray, decodes: list[np.ndarray], upward: bool) -> np.ndarray:
    """The model's addition candidates ``(A, 4)`` in order, before :func:`_without_overlaps`."""
    known = set(note_keys(reference).tolist()) | set(note_keys(anchor).tolist())
    first: dict[int, tuple[int, np.ndarray]] = {}
    count: dict[int, int] = {}
    for k, decoded in enumerate(decodes):
        for key, note in zip(note_keys(decoded).tolist(), decoded):
            if key in known:
                continue
            first.setdefault(key, (k, note))
            count[key] = count.get(key, 0) + 1
    if not first:
        return empty_notes()
    keys = list(first)
    notes = np.stack([first[key][1] for key in keys]).astype(np.int32)
    low, high = (anchor[:, PITCH].min(), anchor[:, PITCH].max()) if len(anchor) else (60, 60)
    outside = np.maximum(low - notes[:, PITCH], 0) + np.maximum(notes[:, PITCH] - high, 0)
    below = (notes[:, PITCH] < low) & upward
    order = np.lexsort((-notes[:, PITCH], -metric_weight(notes[:, ONSET]), [-count[key] for key in keys], outside,
                        [first[key][0] for key in keys], below))
    return notes[order]


def doublings(anchor: np.ndarray, top: int = PITCHES - 1) -> np.ndarray:
    """The anchor segment's notes ``(M, 4)`` an octave up, those that stay at or under ``top``
    (the register's highest pitch), ordered strong metre first, then low pitch first (the register rises
    step by step) -> ``(D, 4)``."""
    notes = anchor.astype(np.int32)
    notes[:, PITCH] += 12
    notes = notes[notes[:, PITCH] <= top]
    return notes[np.lexsort((notes[:, PITCH], -metric_weight(notes[:, ONSET])))]


def _without_overlaps(candidates: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """The candidates ``(A, 4)``, in order, that do not sound together with an anchor note or an
    earlier candidate of the same pitch (a key cannot be struck while it is held)."""
    held: dict[int, list[tuple[int, int]]] = {}
    for onset, pitch, duration in anchor[:, [ONSET, PITCH, DURATION]].tolist():
        held.setdefault(pitch, []).append((onset, onset + duration))
    keep = np.zeros(len(candidates), dtype=bool)
    for i, (onset, pitch, duration) in enumerate(candidates[:, [ONSET, PITCH, DURATION]].tolist()):
        spans = held.setdefault(pitch, [])
        if all(end <= onset or onset + duration <= start for start, end in spans):
            keep[i] = True
            spans.append((onset, onset + duration))
    return candidates[keep]


def _removals(anchor: np.ndarray, reference: np.ndarray, decodes: list[np.ndarray], every: bool) -> np.ndarray:
    if len(anchor) == 0 or not decodes:
        return empty_notes()
    lost = np.stack([~supported(anchor, decoded) for decoded in decodes])
    candidate = lost.any(axis=0) | every
    first_lost = np.where(lost.any(axis=0), np.argmax(lost, axis=0), len(decodes))
    tier = (~supported(anchor, reference)).astype(int) + 2 * (~lost.any(axis=0))
    order = np.lexsort((-anchor[:, PITCH], metric_weight(anchor[:, ONSET]), -lost.sum(axis=0), first_lost, tier))
    return anchor[order[candidate[order]]]


def apply(notes: np.ndarray, side_moves: Moves, u: float) -> np.ndarray:
    """``notes`` ``(N, 4)`` with the first ``share(u)`` removals taken out and additions put in."""
    removals = side_moves.removals[: share(u, len(side_moves.removals))]
    additions = side_moves.additions[: share(u, len(side_moves.additions))]
    kept = notes[~np.isin(note_keys(notes), note_keys(removals))]
    new = additions[~np.isin(note_keys(additions), note_keys(kept))]
    return sort_notes(np.concatenate([kept, new]).astype(np.int32)) if len(new) else kept
