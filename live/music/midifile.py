"""Standard MIDI files <-> note lists on a sixteenth grid.

Reading quantises note times from ticks (musical time: a quarter note is ``ticks_per_beat``
ticks, whatever the tempo map says), so a tempo change in the file moves no note off the grid;
the tempo map only gives the piece its BPM. Only 4/4 and 2/4 files are accepted (a 2-bar model
segment is 32 sixteenths; two bars of 2/4 make one of 4/4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import mido
import numpy as np

from live.music.notes import DURATION, ONSET, PITCH, STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, empty_notes, sort_notes

ALLOWED_METERS = ((4, 4), (2, 4))


class MidiFormatError(ValueError):
    """A MIDI file the project cannot use; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


@dataclass
class MidiPiece:
    """A MIDI file read onto the sixteenth grid.

    ``tracks`` maps a track name to its notes ``(N, 4)`` with absolute onsets; ``n_steps`` is the
    length rounded up to whole 4/4 bars; ``bpm`` is the first tempo of the file.
    """

    path: str
    tracks: dict[str, np.ndarray]
    bpm: float
    n_steps: int
    meters: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n_bars(self) -> int:
        """Number of 4/4 bars."""
        return self.n_steps // STEPS_PER_BAR

    def notes(self, names: list[str] | None = None) -> np.ndarray:
        """All notes ``(N, 4)`` of the named tracks (every track when ``names`` is None)."""
        chosen = [self.tracks[n] for n in (names or list(self.tracks)) if n in self.tracks]
        return sort_notes(np.concatenate(chosen)) if chosen else empty_notes()


def read_midi(path: str | os.PathLike) -> MidiPiece:
    """Read a 4/4 (or 2/4) MIDI file; raises :class:`MidiFormatError` with a one-line reason."""
    if not os.path.isfile(path):
        raise MidiFormatError(path, "no such file")
    try:
        mid = mido.MidiFile(os.fspath(path), clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise MidiFormatError(path, f"not a readable MIDI file ({exc.__class__.__name__}: {exc})") from None
    if mid.type == 2:
        raise MidiFormatError(path, "MIDI type 2 (independent sequences) is not supported")
    ticks_per_step = mid.ticks_per_beat / STEPS_PER_BEAT
    tempos: list[tuple[int, int]] = []
    meters: list[tuple[int, int]] = []
    tracks: dict[str, np.ndarray] = {}
    last_tick = 0
    for index, track in enumerate(mid.tracks):
        name, rows, end_tick = _read_track(track, ticks_per_step, tempos, meters)
        last_tick = max(last_tick, end_tick)
        if len(rows):
            key = name or f"track{index}"
            while key in tracks:
                key += "'"
            tracks[key] = rows
    for numerator, denominator in meters:
        if (numerator, denominator) not in ALLOWED_METERS:
            raise MidiFormatError(path, f"time signature {numerator}/{denominator}; only 4/4 and 2/4 are supported")
    if not tracks:
        raise MidiFormatError(path, "contains no notes")
    last_step = max(int(np.max(t[:, ONSET] + t[:, DURATION])) for t in tracks.values())
    n_steps = -(-max(last_step, 1) // STEPS_PER_BAR) * STEPS_PER_BAR
    bpm = mido.tempo2bpm(tempos[0][1]) if tempos else 120.0
    return MidiPiece(os.fspath(path), tracks, float(bpm), n_steps, meters or [(4, 4)])


def _read_track(track, ticks_per_step: float, tempos: list, meters: list) -> tuple[str, np.ndarray, int]:
    """One track's name, notes ``(N, 4)`` on the grid, and its last tick."""
    name = ""
    tick = 0
    open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
    rows: list[tuple[int, int, int, int]] = []

    def close(key: tuple[int, int], end: int) -> None:
        start, velocity = open_notes[key].pop(0)
        onset = int(round(start / ticks_per_step))
        duration = max(1, int(round(end / ticks_per_step)) - onset)
        rows.append((onset, key[1], duration, velocity))

    for msg in track:
        tick += msg.time
        if msg.type == "track_name" and not name:
            name = msg.name.strip()
        elif msg.type == "set_tempo":
            tempos.append((tick, msg.tempo))
        elif msg.type == "time_signature":
            meters.append((msg.numerator, msg.denominator))
        elif msg.type == "note_on" and msg.velocity > 0:
            open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
        elif msg.type in ("note_off", "note_on") and open_notes.get((msg.channel, msg.note)):
            close((msg.channel, msg.note), tick)
    for key, pending in open_notes.items():
        while pending:
            close(key, tick)
    notes = np.asarray(rows, dtype=np.int32).reshape(-1, 4)
    return name, sort_notes(notes), tick


def write_midi(
    path: str | os.PathLike,
    parts: list[tuple[str, int, np.ndarray]],
    bpm: float,
    ticks_per_beat: int = 480,
) -> None:
    """Write a type-1 MIDI file in 4/4 at ``bpm``.

    ``parts`` holds ``(track name, channel 0..15, notes (N, 4))`` with absolute sixteenth onsets.
    """
    mid = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    ticks_per_step = ticks_per_beat // STEPS_PER_BEAT
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    mid.tracks.append(meta)
    for name, channel, notes in parts:
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=name, time=0))
        events = []
        for onset, pitch, duration, velocity in notes[:, [ONSET, PITCH, DURATION, VELOCITY]]:
            events.append((int(onset + duration) * ticks_per_step, 0, int(pitch), 0))
            events.append((int(onset) * ticks_per_step, 1, int(pitch), int(velocity)))
        events.sort()
        now = 0
        for tick, is_on, pitch, velocity in events:
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(os.fspath(path))
