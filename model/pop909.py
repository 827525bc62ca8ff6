"""POP909 -> 2-bar training segments (numpy only).

Each song folder ``NNN/`` holds ``NNN.mid`` (tracks MELODY, BRIDGE, PIANO), ``beat_midi.txt``
(time, beat flag, downbeat flag) and ``chord_midi.txt`` (start, end, Harte label).

- Bars are the 4-beat units that start at the downbeat flags of ``beat_midi.txt``; songs whose
  bars are not duple (3-beat measures) are skipped.
- Note times are quantised beat-synchronously: each beat is split into four equal sixteenths and
  a time snaps to the nearest sixteenth (tempo drift is absorbed). A note that snaps to zero
  length lasts one sixteenth.
- Accompaniment = PIANO + BRIDGE, melody = MELODY. Chords are taken per beat: the label whose
  span contains the beat time.
- A segment starts at every bar ``i`` whose bars ``i`` and ``i+1`` both have four beats and whose
  accompaniment is not empty; notes belong to the bar of their onset and are cut at the segment
  end (notes sounding in from before the segment are not repeated).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import BinaryIO

import mido
import numpy as np

from live.music.chords import ChordError, label_to_row
from live.music.notes import DURATION, MAX_NOTES_PER_STEP, ONSET, STEPS, STEPS_PER_BEAT, dedupe, sort_notes

ACCOMPANIMENT_TRACKS = ("PIANO", "BRIDGE")
MELODY_TRACK = "MELODY"
BEATS_PER_BAR = 4
SPLIT_SEED = 3345
VALIDATION_SHARE = 0.1


class SongError(ValueError):
    """A song folder that cannot be used; the message is one line."""


@dataclass
class Song:
    """One POP909 song on its beat grid.

    ``accompaniment`` and ``melody`` are note lists ``(N, 4)`` with onsets in song sixteenths
    (``4 * beat index + sub-beat``); ``chords`` is ``(n_beats, 36)``; ``bar_starts`` holds the beat
    index of every 4-beat bar that can start a segment's bar.
    """

    number: int
    accompaniment: np.ndarray
    melody: np.ndarray
    chords: np.ndarray
    downbeats: np.ndarray
    n_beats: int
    stats: dict[str, int] = field(default_factory=dict)


def _read_table(path: str, columns: int) -> list[list[str]]:
    if not os.path.isfile(path):
        raise SongError(f"missing {os.path.basename(path)}")
    rows = [line.split() if columns != 3 or "\t" not in line else line.rstrip("\n").split("\t")
            for line in open(path, encoding="utf-8", errors="replace")]
    return [r for r in rows if len(r) >= columns]


def _track_notes_seconds(path: str) -> dict[str, np.ndarray]:
    """Notes of every named track as float rows ``(start s, end s, pitch, velocity)``."""
    try:
        mid = mido.MidiFile(path, clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise SongError(f"unreadable MIDI ({exc.__class__.__name__})") from None
    tempo_changes = sorted((tick, msg.tempo) for track in mid.tracks
                           for tick, msg in _absolute(track) if msg.type == "set_tempo")
    ticks = np.asarray([0] + [t for t, _ in tempo_changes], dtype=float)
    tempos = np.asarray([500000] + [v for _, v in tempo_changes], dtype=float)
    seconds_at = np.concatenate([[0.0], np.cumsum(np.diff(ticks) * tempos[:-1] / 1e6 / mid.ticks_per_beat)])

    def to_seconds(tick: float) -> float:
        i = np.searchsorted(ticks, tick, side="right") - 1
        return seconds_at[i] + (tick - ticks[i]) * tempos[i] / 1e6 / mid.ticks_per_beat

    tracks: dict[str, np.ndarray] = {}
    for track in mid.tracks:
        name, rows, pending = track.name.strip(), [], {}
        for tick, msg in _absolute(track):
            if msg.type == "note_on" and msg.velocity > 0:
                pending.setdefault(msg.note, []).append((tick, msg.velocity))
            elif msg.type in ("note_on", "note_off") and pending.get(msg.note):
                start, velocity = pending[msg.note].pop(0)
                rows.append((to_seconds(start), to_seconds(tick), msg.note, velocity))
        if name:
            tracks[name] = np.asarray(rows, dtype=float).reshape(-1, 4)
    return tracks


def _absolute(track):
    tick = 0
    for msg in track:
        tick += msg.time
        yield tick, msg


def _quantise(times: np.ndarray, beat_times: np.ndarray) -> np.ndarray:
    """Seconds -> nearest sixteenth index on the beat grid (linear beyond the first/last beat)."""
    beats = np.arange(len(beat_times), dtype=float)
    first = np.diff(beat_times[:2])[0]
    last = np.diff(beat_times[-2:])[0]
    inside = np.interp(times, beat_times, beats)
    inside = np.where(times < beat_times[0], (times - beat_times[0]) / first, inside)
    inside = np.where(times > beat_times[-1], len(beat_times) - 1 + (times - beat_times[-1]) / last, inside)
    return np.rint(inside * STEPS_PER_BEAT).astype(np.int64)


def _grid_notes(rows: np.ndarray, beat_times: np.ndarray, stats: dict[str, int]) -> np.ndarray:
    """Float note rows -> note list ``(N, 4)`` on the song's sixteenth grid."""
    if len(rows) == 0:
        return np.zeros((0, 4), np.int32)
    onsets = _quantise(rows[:, 0], beat_times)
    offsets = _quantise(rows[:, 1], beat_times)
    stats["zero_length_lengthened"] += int(np.sum(offsets <= onsets))
    keep = onsets >= 0
    stats["before_first_beat"] += int(np.sum(~keep))
    notes = np.column_stack([onsets, rows[:, 2], np.maximum(offsets - onsets, 1), rows[:, 3]])
    return sort_notes(notes[keep].astype(np.int32))


def read_song(folder: str) -> Song:
    """Read one POP909 song folder; raises :class:`SongError` with a one-line reason."""
    number = int(os.path.basename(os.path.normpath(folder)))
    beats = np.asarray(_read_table(os.path.join(folder, "beat_midi.txt"), 3), dtype=float)
    if len(beats) < 8:
        raise SongError("fewer than 8 beats in beat_midi.txt")
    beat_times = beats[:, 0]
    if np.any(np.diff(beat_times) <= 0):
        raise SongError("beat times are not increasing")
    measure_flags = np.flatnonzero(beats[:, 1] > 0)
    if len(measure_flags) > 2 and np.median(np.diff(measure_flags)) != 2:
        raise SongError("not in duple meter")
    downbeats = np.flatnonzero(beats[:, 2] > 0)
    midi_path = os.path.join(folder, f"{os.path.basename(os.path.normpath(folder))}.mid")
    if not os.path.isfile(midi_path):
        raise SongError(f"missing {os.path.basename(midi_path)}")
    tracks = _track_notes_seconds(midi_path)
    stats = {"zero_length_lengthened": 0, "before_first_beat": 0}
    acc_rows = [tracks[n] for n in ACCOMPANIMENT_TRACKS if n in tracks]
    if not acc_rows:
        raise SongError("no PIANO or BRIDGE track")
    accompaniment = _grid_notes(np.concatenate(acc_rows), beat_times, stats)
    melody = _grid_notes(tracks.get(MELODY_TRACK, np.zeros((0, 4))), beat_times, stats)
    chords = _beat_chords(os.path.join(folder, "chord_midi.txt"), beat_times)
    return Song(number, accompaniment, melody, chords, downbeats, len(beat_times), stats)


def _beat_chords(path: str, beat_times: np.ndarray) -> np.ndarray:
    """Chord rows ``(n_beats, 36)``: the label whose span contains each beat (``N`` outside)."""
    table = _read_table(path, 3)
    starts = np.asarray([float(r[0]) for r in table])
    ends = np.asarray([float(r[1]) for r in table])
    try:
        rows = np.stack([label_to_row(r[2]) for r in table]) if table else np.zeros((0, 36), np.float32)
    except ChordError as exc:
        raise SongError(str(exc)) from None
    out = np.zeros((len(beat_times), 36), np.float32)
    if len(table):
        index = np.searchsorted(starts, beat_times + 1e-3, side="right") - 1
        inside = (index >= 0) & (beat_times < ends[np.maximum(index, 0)] - 1e-3)
        out[inside] = rows[index[inside]]
    return out


def song_segments(song: Song) -> list[dict[str, np.ndarray | int]]:
    """All 2-bar segments of a song (hop one bar).

    Each item has ``bar`` (index of the first bar), ``accompaniment`` and ``melody`` note lists
    ``(N, 4)`` with onsets 0..31, and ``chords`` ``(8, 36)``. Segments with an empty
    accompaniment are left out and counted in ``song.stats['empty_segments']``.
    """
    starts = song.downbeats
    bar_beats = np.diff(np.r_[starts, song.n_beats])
    segments = []
    song.stats.setdefault("empty_segments", 0)
    for bar in range(len(starts) - 1):
        if bar_beats[bar] != BEATS_PER_BAR or bar_beats[bar + 1] != BEATS_PER_BAR:
            continue
        first_step = starts[bar] * STEPS_PER_BEAT
        acc = _window(song.accompaniment, first_step)
        if len(acc) == 0:
            song.stats["empty_segments"] += 1
            continue
        segments.append({
            "bar": bar,
            "accompaniment": acc,
            "melody": _window(song.melody, first_step),
            "chords": song.chords[starts[bar]:starts[bar] + 2 * BEATS_PER_BAR],
        })
    return segments


def _window(notes: np.ndarray, first_step: int) -> np.ndarray:
    inside = (notes[:, ONSET] >= first_step) & (notes[:, ONSET] < first_step + STEPS)
    out = notes[inside].copy()
    out[:, ONSET] -= first_step
    out[:, DURATION] = np.minimum(out[:, DURATION], STEPS - out[:, ONSET])
    return dedupe(out)


def song_folders(root: str) -> list[str]:
    """Song folders (three-digit names) under ``root``, sorted."""
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: no such POP909 folder")
    return sorted(os.path.join(root, d) for d in os.listdir(root) if d.isdigit() and os.path.isdir(os.path.join(root, d)))


def split_songs(numbers: list[int], seed: int = SPLIT_SEED, share: float = VALIDATION_SHARE) -> set[int]:
    """The validation songs: a seeded song-level draw of ``share`` of ``numbers`` (pass every song
    folder's number, so that the split does not depend on which songs could be read)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(sorted(numbers))
    return {int(n) for n in order[: max(1, int(round(len(numbers) * share)))]}


def prepare(root: str, out: str | os.PathLike | BinaryIO, seed: int = SPLIT_SEED, progress=None, warn=print) -> dict:
    """Read every song under ``root`` and write the prepared ``.npz`` (format: docs/architecture.md).

    ``out`` is a path or a binary file object (written as it is). ``progress`` wraps the folder list
    (e.g. tqdm); ``warn`` receives one line per skipped song.
    Returns the summary that is also stored as ``meta``.
    """
    folders = song_folders(root)
    acc, mel, chords, song_ids, bars = [], [], [], [], []
    skipped: dict[str, str] = {}
    totals = {"zero_length_lengthened": 0, "before_first_beat": 0, "empty_segments": 0,
              "over_14_per_step": 0}
    for folder in (progress(folders) if progress else folders):
        try:
            song = read_song(folder)
            segments = song_segments(song)
        except (SongError, ValueError, IndexError) as exc:
            skipped[os.path.basename(folder)] = str(exc)
            warn(f"skipped song {os.path.basename(folder)}: {exc}")
            continue
        for key in totals:
            totals[key] += song.stats.get(key, 0)
        for seg in segments:
            acc.append(seg["accompaniment"])
            mel.append(seg["melody"])
            chords.append(seg["chords"])
            song_ids.append(song.number)
            bars.append(seg["bar"])
            totals["over_14_per_step"] += _overflow(seg["accompaniment"])
    numbers = sorted(set(song_ids))
    validation = split_songs([int(os.path.basename(f)) for f in folders], seed) & set(numbers)
    split = np.asarray([1 if s in validation else 0 for s in song_ids], dtype=np.uint8)
    meta = {
        "songs": len(numbers), "segments": len(acc), "train_segments": int(np.sum(split == 0)),
        "validation_segments": int(np.sum(split == 1)), "validation_songs": sorted(validation),
        "split_seed": seed, "skipped_songs": skipped, "accompaniment_notes": int(sum(len(a) for a in acc)),
        "notes": totals,
    }
    np.savez_compressed(
        out,
        acc_notes=_flat(acc), acc_offsets=_offsets(acc), mel_notes=_flat(mel), mel_offsets=_offsets(mel),
        chords=np.asarray(chords, dtype=np.uint8).reshape(-1, 8, 36), song=np.asarray(song_ids, np.int16),
        bar=np.asarray(bars, np.int32), split=split, meta=np.asarray(json.dumps(meta)),
    )
    return meta


def _overflow(notes: np.ndarray) -> int:
    counts = np.bincount(notes[:, ONSET], minlength=STEPS)
    return int(np.sum(np.maximum(counts - MAX_NOTES_PER_STEP, 0)))


def _flat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros((0, 4), np.int16)


def _offsets(parts: list[np.ndarray]) -> np.ndarray:
    return np.r_[0, np.cumsum([len(p) for p in parts])].astype(np.int64)


def load_prepared(path: str) -> dict[str, np.ndarray]:
    """Load a prepared ``.npz`` into memory; ``meta`` comes back as a dict."""
    with np.load(path) as data:
        out = {k: data[k] for k in data.files}
    out["meta"] = json.loads(str(out["meta"]))
    return out


def segment_notes(data: dict[str, np.ndarray], index: int, part: str = "acc") -> np.ndarray:
    """Note list ``(N, 4)`` int32 of segment ``index`` (``part`` is ``acc`` or ``mel``)."""
    start, end = data[f"{part}_offsets"][index], data[f"{part}_offsets"][index + 1]
    return data[f"{part}_notes"][start:end].astype(np.int32)

