"""``vis2mus-eval``: evaluate poly-dis weights on POP909 songs (default: the validation split).

All parts use posterior means; decoding is greedy with early exit.

1. Teacher-forced losses (pitch CE, duration CE, recon = pitch + 0.5 dur, KL per latent, chord)
   beside the upstream reference (spec §3.4).
2. Reconstruction note F1 on (onset, pitch) and (onset, pitch, duration).
3. Chord swap: texture of A with the chords of B. Chord-tone ratio = share of decoded onsets whose
   pitch class is in B's chord at that beat (beats without a chord are not counted); B's own notes
   give the ceiling. Of the decoded onsets outside B's chord (beats where A and B both have one),
   the share in A's chord shows how much of A's harmony the texture latent carries; B's own
   off-chord notes against A's chords give the chance level. Texture onset F1 = per-step
   onset/no-onset pattern against A.
4. Disentanglement: mean |delta mu| of z_chd and z_txt when the input is transposed by 1..12
   semitones, and when note durations are halved with probability 0.25..1 (also divided by the
   mean |delta mu| between two random segments, so the two latents are comparable).
5. Brightness/contrast response: per alpha, the feature map is edited per channel by the edit
   functions the caller hands in (``vis2mus-eval`` passes the live transforms, eq. 1/2 clamped at 0,
   see ``export/model_card.py``) and decoded; descriptors per alpha and the share of segments in
   which each descriptor moves monotonically with alpha (weakly, in the direction of the median
   change, with a net change between alpha -1 and 1). Without edits the part is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from live.music.chords import transpose_chord_rows
from live.music.notes import DURATION, ONSET, PITCH, notes_to_grid, notes_to_pr_mat, transpose_notes
from model.dataset import VALIDATION, Segments, collate
from model.metrics import f1_from_counts, grids_to_notes, match_counts, pattern_counts
from model.polydis import PolyDis, card_path, load_model, losses
from model.pop909 import SongError, read_song, song_folders, song_segments, split_songs

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "polydis-small.pt"
UPSTREAM = {"recon": 0.533, "pitch": 0.423, "dur": 0.219, "chord": 0.015, "kl_chd": 0.344, "kl_txt": 0.853}
TARGETS = {"recon": 0.53, "chord": 0.05, "note_f1": 0.80, "note_f1_dur": 0.60, "length_ratio": (0.85, 1.2),
           "chord_tone_ratio": 0.93, "texture_onset_f1": 0.90, "monotonic_share": 0.90}
LONG_NOTE = 8
ALPHAS = (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
SHIFTS = tuple(range(1, 13))
HALVING = (0.25, 0.5, 0.75, 1.0)
DESCRIPTORS = ("notes_per_bar", "mean_pitch", "polyphony", "onset_density", "pitch_range", "empty_bars")

Edit = Callable[[np.ndarray, float], np.ndarray]
"""A feature-map edit: maps ``(B, 10, 8, 29)`` and alpha in [-1, 1] -> edited maps, same shape."""


class EvalSet:
    """Segments to evaluate: accompaniment note lists and chord rows ``(S, 8, 36)``."""

    def __init__(self, notes: list[np.ndarray], chords: np.ndarray, songs: list[int]):
        self.notes = notes
        self.chords = chords.astype(np.float32)
        self.songs = songs

    @classmethod
    def from_pop909(cls, root: str, songs: list[int] | None = None, warn=print) -> "EvalSet":
        """Read songs from POP909 folders (default: the seeded validation split)."""
        folders = song_folders(root)
        numbers = [int(Path(f).name) for f in folders]
        wanted = set(songs) if songs else split_songs(numbers)
        notes, chords, ids = [], [], []
        for folder, number in zip(folders, numbers):
            if number not in wanted:
                continue
            try:
                segments = song_segments(read_song(folder))
            except (SongError, ValueError, IndexError) as exc:
                warn(f"skipped song {number}: {exc}")
                continue
            for seg in segments:
                notes.append(seg["accompaniment"])
                chords.append(seg["chords"])
                ids.append(number)
        if not notes:
            raise ValueError("no segments in the selected songs")
        return cls(notes, np.asarray(chords), ids)

    @classmethod
    def from_prepared(cls, path: str, songs: list[int] | None = None) -> "EvalSet":
        """Segments of the prepared file: the given songs, or its validation split."""
        data = Segments(path)
        idx = np.flatnonzero(np.isin(data.song, songs)) if songs else data.indices(VALIDATION)
        if len(idx) == 0:
            raise ValueError("no segments in the selected songs")
        return cls([data.notes(i) for i in idx], data.data["chords"][idx], [int(s) for s in data.song[idx]])

    def __len__(self) -> int:
        return len(self.notes)

    def subset(self, limit: int | None) -> np.ndarray:
        """Evenly spaced indices, at most ``limit`` of them."""
        n = len(self) if limit is None else min(limit, len(self))
        return np.unique(np.linspace(0, len(self) - 1, n).astype(int))


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


@torch.no_grad()
def teacher_forced(model: PolyDis, data: EvalSet, batch_size: int = 128) -> dict[str, float]:
    """Mean teacher-forced loss terms over all segments (posterior means, no transposition)."""
    sums: dict[str, float] = {}
    for sel in _batches(len(data), batch_size):
        examples = [(c, notes_to_pr_mat(n), notes_to_grid(n)) for n, c in zip(data.notes[sel], data.chords[sel])]
        batch = collate(examples)
        out = model(batch["chords"], batch["pr_mat"], batch["grid"], sample=False)
        for k, v in losses(out, batch["chords"], batch["grid"]).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(examples)
    return {k: v / len(data) for k, v in sums.items()}


@torch.no_grad()
def encode(model: PolyDis, notes: list[np.ndarray], chords: np.ndarray, batch_size: int = 128
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means ``z_chd`` and ``z_txt`` ``(S, 256)`` of note lists and chord rows."""
    z_c, z_t = [], []
    for sel in _batches(len(notes), batch_size):
        pr = torch.from_numpy(np.stack([notes_to_pr_mat(n) for n in notes[sel]]))
        mu_c, _, mu_t, _ = model.encode(torch.from_numpy(np.asarray(chords[sel], np.float32)), pr)
        z_c.append(mu_c)
        z_t.append(mu_t)
    return torch.cat(z_c), torch.cat(z_t)


@torch.no_grad()
def decode(model: PolyDis, z_chd: torch.Tensor, z_txt: torch.Tensor, batch_size: int = 32) -> list[np.ndarray]:
    """Greedy decoding (early exit) of latents ``(S, 256)`` -> ``S`` note lists."""
    out: list[np.ndarray] = []
    for sel in _batches(len(z_chd), batch_size):
        out += grids_to_notes(model.decoder.greedy_decode(torch.cat([z_chd[sel], z_txt[sel]], -1)))
    return out


def _chord_membership(notes: np.ndarray, chords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per onset of ``(N, 4)`` against chord rows ``(8, 36)``: (its beat has a chord, its pitch class
    is in that chord), both ``(N,)`` bool."""
    rows = chords[notes[:, ONSET] // 4]
    has_chord = rows[:, :12].sum(-1) > 0
    in_chord = rows[np.arange(len(notes)), 12 + notes[:, PITCH] % 12] > 0
    return has_chord, in_chord


def chord_tone_counts(notes: np.ndarray, chords: np.ndarray) -> np.ndarray:
    """``[onsets whose pitch class is in the chord of their beat, onsets on beats with a chord]``."""
    has_chord, in_chord = _chord_membership(notes, chords)
    return np.array([np.sum(in_chord & has_chord), np.sum(has_chord)], dtype=np.int64)


def off_chord_counts(notes: np.ndarray, chords: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``[onsets outside the chord of their beat but in ``other``'s, onsets outside the chord]``.

    ``notes`` ``(N, 4)``; ``chords`` and ``other`` ``(8, 36)``; only beats where both have a chord count."""
    has_chord, in_chord = _chord_membership(notes, chords)
    other_has, in_other = _chord_membership(notes, other)
    off = has_chord & other_has & ~in_chord
    return np.array([np.sum(off & in_other), np.sum(off)], dtype=np.int64)


def long_notes(notes: np.ndarray) -> np.ndarray:
    """The notes of ``(N, 4)`` that last at least ``LONG_NOTE`` sixteenths."""
    return notes[notes[:, DURATION] >= LONG_NOTE]


def reconstruction(model: PolyDis, data: EvalSet, idx: np.ndarray) -> dict[str, float]:
    """Greedy note F1s, texture onset F1 and note lengths of reconstructions.

    ``length_ratio`` is the decoded mean note length over the original's (what a listener hears as
    held or staccato); ``long_note_f1`` is the (onset, pitch, duration) F1 of the notes of at least
    ``LONG_NOTE`` sixteenths, original against decoded."""
    notes = [data.notes[i] for i in idx]
    z_c, z_t = encode(model, notes, data.chords[idx])
    counts = np.zeros((4, 3), np.int64)
    lengths = np.zeros(4)
    for ref, est in zip(notes, decode(model, z_c, z_t)):
        counts += [match_counts(ref, est), match_counts(ref, est, True), pattern_counts(ref, est),
                   match_counts(long_notes(ref), long_notes(est), True)]
        lengths += [ref[:, DURATION].sum(), len(ref), est[:, DURATION].sum(), len(est)]
    mean_ref, mean_est = lengths[0] / max(lengths[1], 1), lengths[2] / max(lengths[3], 1)
    return {"note_f1": f1_from_counts(counts[0]), "note_f1_dur": f1_from_counts(counts[1]),
            "onset_f1": f1_from_counts(counts[2]), "long_note_f1": f1_from_counts(counts[3]),
            "mean_length_original": float(mean_ref), "mean_length_decoded": float(mean_est),
            "length_ratio": float(mean_est / mean_ref) if mean_ref else 0.0, "segments": len(idx)}


LENGTH_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 7), (8, 32))
NEAR_LENGTH = 1


@torch.no_grad()
def duration_bits_right(out: dict[str, torch.Tensor], grid: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The duration head of a teacher-forced pass (``PolyDis.forward`` output ``out`` on ``grid``
    ``(B, 32, S, 6)``) against the truth: which bits are right and the true bits, both ``(N, 5)``
    for the ``N`` real notes."""
    truth = grid[:, :, 1:, 1:][out["real"]]
    return (out["dur"].argmax(-1) == truth).numpy(), truth.numpy()


def duration_diagnosis(model: PolyDis, data: EvalSet, idx: np.ndarray, batch_size: int = 64) -> dict:
    """Where note lengths are lost, per original length bucket (sixteenths).

    - ``bit_accuracy``: per-bit accuracy MSB -> LSB of the duration head, decoder teacher-forced
      (true notes and true previous bits), so only the head is judged;
    - ``tf_exact``: share of notes whose 5 bits are all right in that setting;
    - ``free_exact`` / ``free_mean_length``: greedy free-running decode, among the notes whose
      (onset, pitch) came out right, the share with the right length and their mean decoded length
      against the original mean ``mean_length``; ``free_near``: the share within ``NEAR_LENGTH``
      sixteenths of the original (a miss by one sixteenth is often a performance detail of POP909's
      hand-played, quantised notes).
    """
    correct_bits = np.zeros(5)
    total = 0
    tf = {b: [0, 0] for b in LENGTH_BUCKETS}
    for sel in _batches(len(idx), batch_size):
        part = idx[sel]
        batch = collate([(data.chords[i], notes_to_pr_mat(data.notes[i]), notes_to_grid(data.notes[i]))
                         for i in part])
        out = model(batch["chords"], batch["pr_mat"], batch["grid"], sample=False)
        right, truth = duration_bits_right(out, batch["grid"])
        correct_bits += right.sum(0)
        total += len(right)
        lengths = (truth * (2 ** np.arange(4, -1, -1))).sum(-1) + 1
        for lo, hi in LENGTH_BUCKETS:
            inside = (lengths >= lo) & (lengths <= hi)
            tf[(lo, hi)][0] += int(right[inside].all(-1).sum())
            tf[(lo, hi)][1] += int(inside.sum())
    notes = [data.notes[i] for i in idx]
    z_c, z_t = encode(model, notes, data.chords[idx])
    pairs: list[tuple[int, int]] = []
    for ref, est in zip(notes, decode(model, z_c, z_t)):
        decoded = {(int(o), int(p)): int(d) for o, p, d in est[:, [ONSET, PITCH, DURATION]]}
        pairs += [(decoded[(int(o), int(p))], int(d)) for o, p, d in ref[:, [ONSET, PITCH, DURATION]]
                  if (int(o), int(p)) in decoded]
    got, orig = np.array(pairs, dtype=np.int64).reshape(-1, 2).T
    exact, near = got == orig, np.abs(got - orig) <= NEAR_LENGTH
    buckets = {}
    for lo, hi in LENGTH_BUCKETS:
        inside = (orig >= lo) & (orig <= hi)
        n_tf, n_free = tf[(lo, hi)][1], int(inside.sum())
        buckets[f"{lo}-{hi}" if lo != hi else str(lo)] = {
            "notes": n_tf, "tf_exact": tf[(lo, hi)][0] / max(n_tf, 1), "matched": n_free,
            "free_exact": int(exact[inside].sum()) / max(n_free, 1),
            "free_near": int(near[inside].sum()) / max(n_free, 1),
            "free_mean_length": int(got[inside].sum()) / max(n_free, 1),
            "mean_length": int(orig[inside].sum()) / max(n_free, 1)}
    all_tf = sum(v[0] for v in tf.values()) / max(total, 1)
    matched = max(len(got), 1)
    return {"bit_accuracy": (correct_bits / max(total, 1)).tolist(), "tf_exact": all_tf,
            "free_exact": int(exact.sum()) / matched, "free_near": int(near.sum()) / matched,
            "buckets": buckets, "segments": len(idx)}


def chord_swap(model: PolyDis, data: EvalSet, idx: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Texture of segment A with the chords of B (B = a seeded derangement of the subset)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(idx))
    partner = np.empty_like(idx)
    partner[order] = idx[np.roll(order, 1)]
    notes_a = [data.notes[i] for i in idx]
    _, z_t = encode(model, notes_a, data.chords[idx])
    z_c, _ = encode(model, [data.notes[j] for j in partner], data.chords[partner])
    tones = np.zeros(2, np.int64)
    ceiling = np.zeros(2, np.int64)
    leak, chance = np.zeros(2, np.int64), np.zeros(2, np.int64)
    onsets = np.zeros(3, np.int64)
    for a, b, est in zip(idx, partner, decode(model, z_c, z_t)):
        tones += chord_tone_counts(est, data.chords[b])
        ceiling += chord_tone_counts(data.notes[b], data.chords[b])
        leak += off_chord_counts(est, data.chords[b], data.chords[a])
        chance += off_chord_counts(data.notes[b], data.chords[b], data.chords[a])
        onsets += pattern_counts(data.notes[a], est)
    return {"chord_tone_ratio": tones[0] / max(tones[1], 1), "chord_tone_ceiling": ceiling[0] / max(ceiling[1], 1),
            "off_chord_in_a": leak[0] / max(leak[1], 1), "off_chord_in_a_chance": chance[0] / max(chance[1], 1),
            "texture_onset_f1": f1_from_counts(onsets), "segments": len(idx)}


def halve_durations(notes: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    """Halve (rounding up, at least 1) each note's duration with probability ``p``."""
    out = notes.copy()
    hit = rng.random(len(out)) < p
    out[hit, DURATION] = np.maximum((out[hit, DURATION] + 1) // 2, 1)
    return out


def disentanglement(model: PolyDis, data: EvalSet, idx: np.ndarray, seed: int = 0) -> dict:
    """Mean |delta mu| per latent under transposition and duration halving (raw, and relative to
    the mean |delta mu| between random pairs of segments)."""
    notes = [data.notes[i] for i in idx]
    chords = data.chords[idx]
    z_c, z_t = encode(model, notes, chords)
    perm = np.random.default_rng(seed).permutation(len(idx))
    scale_c = float((z_c - z_c[perm]).abs().mean())
    scale_t = float((z_t - z_t[perm]).abs().mean())

    def delta(new_notes, new_chords) -> dict[str, float]:
        c, t = encode(model, new_notes, new_chords)
        dc, dt = float((c - z_c).abs().mean()), float((t - z_t).abs().mean())
        return {"z_chd": dc, "z_txt": dt, "z_chd_rel": dc / scale_c, "z_txt_rel": dt / scale_t}

    transposed = {str(i): delta([transpose_notes(n, i) for n in notes], transpose_chord_rows(chords, i))
                  for i in SHIFTS}
    rng = np.random.default_rng(seed)
    halved = {str(p): delta([halve_durations(n, p, rng) for n in notes], chords) for p in HALVING}
    return {"random_pair": {"z_chd": scale_c, "z_txt": scale_t}, "transpose": transposed, "halve": halved,
            "segments": len(idx)}


def descriptors(notes: np.ndarray) -> np.ndarray:
    """``(6,)``: notes per bar, mean pitch (NaN if empty), notes per onset step, share of steps with
    an onset, pitch range, share of empty bars (of the 2)."""
    if len(notes) == 0:
        return np.array([0.0, np.nan, 0.0, 0.0, 0.0, 1.0])
    steps = np.unique(notes[:, ONSET])
    bars = np.bincount(notes[:, ONSET] // 16, minlength=2)
    return np.array([len(notes) / 2, notes[:, PITCH].mean(), len(notes) / len(steps), len(steps) / 32,
                     notes[:, PITCH].max() - notes[:, PITCH].min(), np.mean(bars == 0)])


@torch.no_grad()
def response(model: PolyDis, data: EvalSet, idx: np.ndarray, edits: Mapping[str, Edit], alphas=ALPHAS) -> dict:
    """Sweeps of each named edit (``{"brightness": f, "contrast": g}``): descriptor means per alpha
    and monotonic shares."""
    notes = [data.notes[i] for i in idx]
    z_c, _ = encode(model, notes, data.chords[idx])
    pr = torch.from_numpy(np.stack([notes_to_pr_mat(n) for n in notes]))
    maps = model.texture_cnn(pr).numpy()
    out = {}
    for name, edit in edits.items():
        values = np.zeros((len(alphas), len(idx), len(DESCRIPTORS)))
        for a, alpha in enumerate(alphas):
            edited = torch.from_numpy(np.ascontiguousarray(edit(maps, alpha), dtype=np.float32))
            z_t = torch.cat([model.texture_head(edited[sel])[0] for sel in _batches(len(idx), 128)])
            values[a] = [descriptors(n) for n in decode(model, z_c, z_t)]
        out[name] = {"alphas": list(alphas), "per_alpha": {}, "monotonic_share": {}, "direction": {}}
        for d, desc in enumerate(DESCRIPTORS):
            series = values[:, :, d]
            out[name]["per_alpha"][desc] = [float(np.nanmean(series[a])) if np.any(~np.isnan(series[a])) else None
                                            for a in range(len(alphas))]
            share, direction = monotonic_share(series)
            out[name]["monotonic_share"][desc] = share
            out[name]["direction"][desc] = direction
    return out


def sweeps(resp: dict) -> dict[str, dict]:
    """The per-edit sweeps of a part-5 result (name -> its dict), without its ``segments`` count."""
    return {name: part for name, part in resp.items() if name != "segments"}


def monotonic_share(series: np.ndarray) -> tuple[float, int]:
    """Share of segments (columns of ``series`` ``(n_alphas, S)``) whose values move weakly
    monotonically with alpha in the median direction with a net change; and that direction."""
    net = series[-1] - series[0]
    direction = int(np.sign(np.nanmedian(net))) if np.any(~np.isnan(net)) else 0
    if direction == 0:
        return 0.0, 0
    steps = np.diff(series, axis=0) * direction
    ok = np.all(steps >= 0, axis=0) & (net * direction > 0) & ~np.any(np.isnan(series), axis=0)
    return float(np.mean(ok)), direction


def evaluate(model: PolyDis, data: EvalSet, limit: int | None = 300, response_limit: int | None = 200,
             log=print, edits: Mapping[str, Edit] | None = None) -> dict:
    """Run parts 1-4, and part 5 when ``edits`` are given; returns the results dict (also what
    ``--json`` writes)."""
    started = time.monotonic()
    result = {"segments": len(data), "songs": len(set(data.songs))}
    log(f"teacher-forced losses on {len(data)} segments ...")
    result["losses"] = teacher_forced(model, data)
    idx = data.subset(limit)
    log(f"greedy reconstruction on {len(idx)} segments ...")
    result["reconstruction"] = reconstruction(model, data, idx)
    log("duration diagnosis ...")
    result["durations"] = duration_diagnosis(model, data, idx)
    log("chord swap ...")
    result["chord_swap"] = chord_swap(model, data, idx)
    log("disentanglement ...")
    result["disentanglement"] = disentanglement(model, data, idx)
    if edits:
        ridx = data.subset(response_limit)
        log(f"{'/'.join(edits)} response on {len(ridx)} segments ...")
        result["response"] = response(model, data, ridx, edits)
        result["response"]["segments"] = len(ridx)
    result["targets"] = targets(result)
    result["eval_wall_s"] = round(time.monotonic() - started, 1)
    return result


def targets(result: dict) -> dict[str, dict]:
    """Each issue target with its value and whether it is met."""
    checks = {
        "recon": (result["losses"]["recon"], "<=", TARGETS["recon"]),
        "chord": (result["losses"]["chord"], "<=", TARGETS["chord"]),
        "note_f1": (result["reconstruction"]["note_f1"], ">=", TARGETS["note_f1"]),
        "note_f1_dur": (result["reconstruction"]["note_f1_dur"], ">=", TARGETS["note_f1_dur"]),
        "length_ratio": (result["reconstruction"]["length_ratio"], "in", TARGETS["length_ratio"]),
        "chord_tone_ratio": (result["chord_swap"]["chord_tone_ratio"], ">=", TARGETS["chord_tone_ratio"]),
        "texture_onset_f1": (result["chord_swap"]["texture_onset_f1"], ">=", TARGETS["texture_onset_f1"]),
    }
    for name, part in sweeps(result.get("response", {})).items():
        checks[f"{name}_best_monotonic"] = (max(part["monotonic_share"].values()), ">=", TARGETS["monotonic_share"])
    def met(v: float, op: str, t) -> bool:
        if op == "in":
            return t[0] <= v <= t[1]
        return v <= t if op == "<=" else v >= t

    return {k: {"value": float(v), "target": f"{t[0]}..{t[1]}" if op == "in" else f"{op} {t}",
                "met": bool(met(v, op, t))} for k, (v, op, t) in checks.items()}


def table(result: dict) -> str:
    """The printed report."""
    lines = ["1. teacher-forced losses (validation, posterior means)      ours     upstream"]
    for k in ("pitch", "dur", "recon", "kl_chd", "kl_txt", "chord"):
        ref = UPSTREAM.get(k)
        lines.append(f"   {k:<10} {result['losses'][k]:>45.3f}   {ref if ref is not None else '':>8}")
    r = result["reconstruction"]
    lines.append(f"2. reconstruction ({r['segments']} segments): note F1 (onset, pitch) {r['note_f1']:.3f}, "
                 f"(onset, pitch, duration) {r['note_f1_dur']:.3f}, onset-pattern F1 {r['onset_f1']:.3f}")
    lines.append(f"   note length: decoded {r['mean_length_decoded']:.2f} / original {r['mean_length_original']:.2f} "
                 f"sixteenths = {r['length_ratio']:.3f}; F1 of notes >= {LONG_NOTE} sixteenths "
                 f"(onset, pitch, duration) {r['long_note_f1']:.3f}")
    dd = result["durations"]
    lines.append(f"   durations: bit accuracy MSB->LSB {' / '.join(f'{a:.3f}' for a in dd['bit_accuracy'])}; "
                 f"exact length teacher-forced {dd['tf_exact']:.3f}, free-running (matched notes) {dd['free_exact']:.3f}, "
                 f"within {NEAR_LENGTH} sixteenth {dd['free_near']:.3f}")
    for name, b in dd["buckets"].items():
        lines.append(f"     length {name:>4}: {b['notes']:5d} notes, exact tf {b['tf_exact']:.3f}, free {b['free_exact']:.3f} "
                     f"(near {b['free_near']:.3f}), decoded mean {b['free_mean_length']:.2f} vs {b['mean_length']:.2f}")
    s = result["chord_swap"]
    lines.append(f"3. chord swap: chord-tone ratio {s['chord_tone_ratio']:.3f} (ceiling, B's own notes "
                 f"{s['chord_tone_ceiling']:.3f}), texture onset F1 {s['texture_onset_f1']:.3f}")
    lines.append(f"   off-chord onsets in A's chord {s['off_chord_in_a']:.3f} (B's own off-chord notes: "
                 f"{s['off_chord_in_a_chance']:.3f})")
    d = result["disentanglement"]
    lines.append(f"4. disentanglement: mean |dz| (relative to random pairs: z_chd {d['random_pair']['z_chd']:.3f}, "
                 f"z_txt {d['random_pair']['z_txt']:.3f})")
    for label, part in (("transpose", d["transpose"]), ("halve p", d["halve"])):
        for key, v in part.items():
            lines.append(f"   {label} {key:>4}: z_chd {v['z_chd']:.3f} ({v['z_chd_rel']:.2f})  "
                         f"z_txt {v['z_txt']:.3f} ({v['z_txt_rel']:.2f})")
    resp = result.get("response")
    lines.extend(_response_lines(resp) if resp else ["5. response: left out (no edits given)"])
    lines.append("targets:")
    for k, v in result["targets"].items():
        lines.append(f"   {k:<26} {v['value']:.3f} {v['target']:<8} {'met' if v['met'] else 'MISSED'}")
    return "\n".join(lines)


def _response_lines(resp: dict) -> list[str]:
    lines = [f"5. response ({resp['segments']} segments), descriptor means per alpha "
             f"{', '.join(f'{a:g}' for a in ALPHAS)}; monotonic share"]
    for name, part in sweeps(resp).items():
        for desc in DESCRIPTORS:
            vals = " ".join(f"{v:6.2f}" if v is not None else "   nan" for v in part["per_alpha"][desc])
            lines.append(f"   {name:<10} {desc:<13} {vals}   {part['monotonic_share'][desc]:.2f}"
                         f" ({'+' if part['direction'][desc] > 0 else '-' if part['direction'][desc] < 0 else '0'})")
    return lines


def main(argv: list[str] | None = None, edits: Mapping[str, Edit] | None = None) -> int:
    """The ``vis2mus-eval`` command line; part 5 runs with the given ``edits``."""
    parser = argparse.ArgumentParser(prog="vis2mus-eval", description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--pop909", help="POP909 folder (song folders 001..909)")
    source.add_argument("--data", help="prepared .npz instead of the song folders (faster)")
    parser.add_argument("--songs", help="comma-separated song numbers (default: the validation split)")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--update-card", action="store_true", help="store the results in the weights' model card")
    parser.add_argument("--limit", type=int, default=300, help="segments for the greedy parts 2-4")
    parser.add_argument("--response-limit", type=int, default=200, help="segments for part 5")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        songs = [int(s) for s in args.songs.split(",")] if args.songs else None
        model = load_model(args.weights)
        if args.data:
            data = EvalSet.from_prepared(args.data, songs)
        else:
            data = EvalSet.from_pop909(args.pop909 or "../shared/data/pop909", songs)
    except (OSError, ValueError) as exc:
        print(f"vis2mus-eval: {exc}", file=sys.stderr)
        return 2
    result = evaluate(model, data, args.limit, args.response_limit, log=lambda m: print(m, file=sys.stderr),
                      edits=edits)
    result["weights"] = str(args.weights)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.update_card:
        card = card_path(args.weights)
        info = json.loads(card.read_text())
        info["evaluation"] = result
        card.write_text(json.dumps(info, indent=1))
    return 0
