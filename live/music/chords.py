"""Chord labels, the model's 36-d chord rows, performer progressions and chord recognition.

A chord row ``(36,)`` is ``[root one-hot (12) | chroma (12) | bass one-hot (12)]``, all absolute
pitch classes. The bass is stored absolute (not relative to the root), so transposing a row rolls
all three blocks by the same amount and the bass stays the bass (spec trap T8). "No chord" (``N``)
is the all-zero row; transposition leaves it zero and the chord loss masks it out (trap T9).

Labels use the Harte syntax of POP909's ``chord_midi.txt``: ``root:quality[/inversion]`` such as
``C#:maj7/5``, ``Bb:min/b3`` or ``N``.
"""

from __future__ import annotations

import re

import numpy as np

from live.music.notes import DURATION, ONSET, PITCH

NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_LETTER_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "dim7": (0, 3, 6, 9),
    "hdim7": (0, 3, 6, 10),
    "minmaj7": (0, 3, 7, 11),
    "sus4(b7)": (0, 5, 7, 10),
}

DEGREES: dict[str, int] = {
    "1": 0, "b2": 1, "2": 2, "b3": 3, "3": 4, "4": 5, "#4": 6, "b5": 6, "5": 7, "#5": 8,
    "b6": 8, "6": 9, "bb7": 9, "b7": 10, "7": 11, "9": 2, "b9": 1, "11": 5, "13": 9,
}
_DEGREE_OF = {0: "1", 1: "b2", 2: "2", 3: "b3", 4: "3", 5: "4", 6: "b5", 7: "5", 8: "#5", 9: "6",
              10: "b7", 11: "7"}

ROW = 36
NO_CHORD = "N"


class ChordError(ValueError):
    """A chord label or progression that cannot be read."""


SHOWN_CHARS = 24


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut to ``SHOWN_CHARS`` characters."""
    return repr(text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "...")


# A note name: a letter (either case) and any number of sharps (#) or flats (b). The one spelling
# rule for roots and basses, in Harte labels and pop symbols alike.
NOTE_PATTERN = r"[A-Ga-g][#b]*"
_NOTE = re.compile(NOTE_PATTERN)


def parse_root(name: str) -> int:
    """Pitch class of a note name such as ``C``, ``F#``, ``Bb`` or ``Cb``."""
    if not _NOTE.fullmatch(name):
        raise ChordError(f"not a note name: {_shown(name)}")
    accidentals = name[1:]
    return (_LETTER_PC[name[0].upper()] + accidentals.count("#") - accidentals.count("b")) % 12


def parse_label(label: str) -> tuple[int, tuple[int, ...], int] | None:
    """Harte label -> ``(root pc, intervals above the root, absolute bass pc)``; ``None`` for N."""
    text = label.strip()
    if text in (NO_CHORD, "X", ""):
        return None
    root_text, _, rest = text.partition(":")
    quality, _, inversion = (rest or "maj").partition("/")
    root = parse_root(root_text)
    if quality not in QUALITIES:
        raise ChordError(f"unknown chord quality {_shown(quality)} in {_shown(label)}")
    if inversion and inversion not in DEGREES:
        raise ChordError(f"unknown bass degree {_shown(inversion)} in {_shown(label)}")
    intervals = QUALITIES[quality]
    bass_interval = DEGREES[inversion] if inversion else 0
    if bass_interval not in intervals:
        intervals = tuple(sorted(intervals + (bass_interval,)))
    return root, intervals, (root + bass_interval) % 12


def label_to_row(label: str) -> np.ndarray:
    """Harte label -> chord row ``(36,)`` float32 (all zeros for ``N``)."""
    row = np.zeros(ROW, dtype=np.float32)
    parsed = parse_label(label)
    if parsed is None:
        return row
    root, intervals, bass = parsed
    row[root] = 1
    row[12 + (root + np.asarray(intervals)) % 12] = 1
    row[24 + bass] = 1
    return row


def row_to_label(row: np.ndarray) -> str:
    """Chord row ``(36,)`` -> Harte label; the inverse of :func:`label_to_row`.

    Works on exact rows and on decoder outputs (root and bass by argmax, chroma thresholded at
    0.5). An all-zero root block reads as ``N``.
    """
    if row[:12].max() <= 0:
        return NO_CHORD
    root = int(np.argmax(row[:12]))
    bass = int(np.argmax(row[24:36])) if row[24:36].max() > 0 else root
    chroma = tuple(sorted({(pc - root) % 12 for pc in np.flatnonzero(row[12:24] > 0.5)}))
    bass_interval = (bass - root) % 12
    quality = _closest_quality(chroma, bass_interval)
    name = f"{NOTE_NAMES[root]}:{quality}"
    return name if bass_interval == 0 else f"{name}/{_DEGREE_OF[bass_interval]}"


def _closest_quality(intervals: tuple[int, ...], bass_interval: int) -> str:
    """The quality whose intervals (plus an added bass) match ``intervals`` best; on a tie, the
    quality that already contains the bass (``C:7/b7`` rather than ``C:maj/b7``)."""
    target = set(intervals)

    def cost(name: str) -> tuple[int, bool]:
        quality = set(QUALITIES[name])
        return len((quality | {bass_interval}) ^ target), bass_interval not in quality

    return min(QUALITIES, key=cost)


def labels_to_rows(labels: list[str]) -> np.ndarray:
    """Per-beat labels -> chord rows ``(n_beats, 36)``."""
    return np.stack([label_to_row(x) for x in labels]) if labels else np.zeros((0, ROW), np.float32)


def transpose_chord_rows(rows: np.ndarray, shift: int) -> np.ndarray:
    """Transpose chord rows ``(..., 36)`` by ``shift`` semitones (no-chord rows stay zero)."""
    blocks = rows.reshape(rows.shape[:-1] + (3, 12))
    return np.roll(blocks, shift, axis=-1).reshape(rows.shape)


def root_quality(label: str) -> str:
    """``root:quality`` without the inversion and with a canonical root spelling (``N`` kept)."""
    parsed = parse_label(label)
    if parsed is None:
        return NO_CHORD
    quality = label.partition(":")[2].partition("/")[0] or "maj"
    return f"{NOTE_NAMES[parsed[0]]}:{quality}"


# Performer progressions: "C Am F G", "F#m7 B7 | Emaj7", "G/B", "N".

_SYMBOL = re.compile(rf"^({NOTE_PATTERN})([^/]*)(?:/({NOTE_PATTERN}))?$")
_POP_QUALITIES = {
    "": "maj", "maj": "maj", "M": "maj", "m": "min", "min": "min", "-": "min",
    "7": "7", "dom7": "7", "maj7": "maj7", "M7": "maj7", "m7": "min7", "min7": "min7", "-7": "min7",
    "6": "maj6", "m6": "min6", "dim": "dim", "o": "dim", "dim7": "dim7", "o7": "dim7",
    "m7b5": "hdim7", "ø": "hdim7", "ø7": "hdim7", "aug": "aug", "+": "aug", "sus2": "sus2",
    "sus4": "sus4", "sus": "sus4", "7sus4": "sus4(b7)", "mmaj7": "minmaj7", "mM7": "minmaj7",
}


def symbol_to_label(symbol: str) -> str:
    """Pop chord symbol (``Am``, ``F#m7``, ``G/B``, ``Bbmaj7``, ``N``) or Harte label -> Harte label."""
    if symbol == NO_CHORD or ":" in symbol:
        parse_label(symbol)
        return symbol
    match = _SYMBOL.match(symbol)
    if not match or match.group(2) not in _POP_QUALITIES:
        raise ChordError(f"cannot read chord {_shown(symbol)} (try C, Am, F#m7, Bbmaj7, Dsus4, G/B, N)")
    root_name, kind, bass_name = match.groups()
    root = parse_root(root_name)
    label = f"{NOTE_NAMES[root]}:{_POP_QUALITIES[kind]}"
    if bass_name:
        interval = (parse_root(bass_name) - root) % 12
        label += f"/{_DEGREE_OF[interval]}"
    return label


# A comment runs from a "#" at a line's start or after whitespace to the line's end; a "#" inside
# a token is a sharp (C#:min7, F#m).
_COMMENT = re.compile(r"(?:^|(?<=\s))#.*$")


def chord_file_labels(text: str) -> list[str]:
    """The chords of a chord file (``chords.txt``) -> one Harte label per token.

    Tokens are separated by whitespace; each is a Harte label or a pop symbol
    (:func:`symbol_to_label`). ``ChordError`` names the line of a chord that cannot be read.
    """
    labels: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for token in _COMMENT.sub("", line).split():
            try:
                labels.append(symbol_to_label(token))
            except ChordError as exc:
                raise ChordError(f"line {number}: {exc}") from None
    return labels


def progression_labels(text: str, beats_per_bar: int = 4) -> list[str]:
    """A performer's progression -> one Harte label per beat, for one pass of the progression.

    Without ``|`` every symbol fills one bar (``"C Am F G"`` = 4 bars). With ``|`` the text is
    split into bars and the symbols of a bar share its beats (``"C G | Am"`` = C C G G A:min x4;
    three symbols in a bar get 2 + 1 + 1 beats).
    """
    text = text.strip()
    if not text:
        raise ChordError("empty chord progression")
    bars = [b.split() for b in text.split("|")] if "|" in text else [[s] for s in text.split()]
    labels: list[str] = []
    for bar in bars:
        if not bar or len(bar) > beats_per_bar:
            raise ChordError(f"a bar needs 1 to {beats_per_bar} chords, got {len(bar)} in {_shown(text)}")
        counts = [beats_per_bar // len(bar)] * len(bar)
        counts[0] += beats_per_bar - sum(counts)
        for symbol, count in zip(bar, counts):
            labels += [symbol_to_label(symbol)] * count
    return labels


def progression_rows(text: str, n_beats: int) -> np.ndarray:
    """A performer's progression looped to ``n_beats`` -> chord rows ``(n_beats, 36)``."""
    labels = progression_labels(text)
    rows = labels_to_rows(labels)
    return rows[np.arange(n_beats) % len(labels)]


# Chord recognition: template matching per beat with a change penalty (Viterbi).

_RECOGNISED = ("maj", "min", "sus2", "sus4", "7", "maj7", "min7", "maj6", "min6", "dim", "aug",
               "dim7", "hdim7", "minmaj7", "sus4(b7)")
_QUALITY_PRIOR = {"maj": 0.0, "min": 0.0, "sus2": -0.08, "sus4": -0.08, "7": -0.04, "maj7": -0.04,
                  "min7": -0.04, "maj6": -0.1, "min6": -0.1, "dim": -0.1, "aug": -0.12, "dim7": -0.1,
                  "hdim7": -0.08, "minmaj7": -0.14, "sus4(b7)": -0.1}


def _templates() -> tuple[list[tuple[int, str]], np.ndarray, np.ndarray]:
    names, masks, priors = [], [], []
    for quality in _RECOGNISED:
        for root in range(12):
            mask = np.zeros(12)
            mask[(root + np.asarray(QUALITIES[quality])) % 12] = 1
            names.append((root, quality))
            masks.append(mask)
            priors.append(_QUALITY_PRIOR[quality])
    return names, np.asarray(masks), np.asarray(priors)


_TEMPLATE_NAMES, _TEMPLATE_MASKS, _TEMPLATE_PRIORS = _templates()


def beat_chroma(notes: np.ndarray, n_beats: int, steps_per_beat: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Pitch-class weights of the notes sounding in each beat ``(n_beats, 12)`` and the lowest
    sounding pitch per beat ``(n_beats,)`` (-1 where silent)."""
    chroma = np.zeros((n_beats, 12))
    lowest = np.full(n_beats, 1000)
    for onset, pitch, duration in notes[:, [ONSET, PITCH, DURATION]]:
        for beat in range(onset // steps_per_beat, min(n_beats, -(-(onset + duration) // steps_per_beat))):
            start = max(onset, beat * steps_per_beat)
            end = min(onset + duration, (beat + 1) * steps_per_beat)
            weight = (end - start) * (1.5 if start == onset else 1.0) * (1.0 + 1.0 * (pitch < 55))
            chroma[beat, pitch % 12] += weight
            lowest[beat] = min(lowest[beat], pitch)
    lowest[lowest == 1000] = -1
    return chroma, lowest


def recognize_chords(notes: np.ndarray, n_beats: int, change_penalty: float = 0.18) -> list[str]:
    """One Harte label per beat for a note list ``(N, 4)`` with sixteenth-step onsets.

    Each beat's duration-weighted chroma (onsets and low notes weigh more) is scored against
    every (root, quality) template: covered weight minus uncovered weight minus missing chord
    tones, plus a small prior for common qualities. A Viterbi pass with a penalty for every
    chord change smooths the sequence. Silent beats take the previous chord (``N`` at the start).
    The bass is the lowest sounding pitch class when it belongs to the chord.
    """
    chroma, lowest = beat_chroma(notes, n_beats)
    total = chroma.sum(axis=1, keepdims=True)
    norm = np.divide(chroma, total, out=np.zeros_like(chroma), where=total > 0)
    present = (norm > 0.04).astype(float)
    covered = norm @ _TEMPLATE_MASKS.T
    missing = (1 - present) @ _TEMPLATE_MASKS.T / _TEMPLATE_MASKS.sum(axis=1)
    scores = covered - (1 - covered) - 0.45 * missing + _TEMPLATE_PRIORS
    bass_bonus = np.zeros_like(scores)
    for beat in np.flatnonzero(lowest >= 0):
        bass_pc = lowest[beat] % 12
        roots = np.asarray([r for r, _ in _TEMPLATE_NAMES])
        bass_bonus[beat] = 0.12 * (roots == bass_pc)
    scores = scores + bass_bonus
    silent = total[:, 0] == 0
    scores[silent] = 0.0
    path = _viterbi(scores, change_penalty)
    labels = []
    for beat, state in enumerate(path):
        if silent[: beat + 1].all():
            labels.append(NO_CHORD)
            continue
        root, quality = _TEMPLATE_NAMES[state]
        label = f"{NOTE_NAMES[root]}:{quality}"
        if lowest[beat] >= 0:
            interval = (lowest[beat] - root) % 12
            if interval != 0 and interval in QUALITIES[quality]:
                label += f"/{_DEGREE_OF[interval]}"
        labels.append(label)
    return labels


def _viterbi(scores: np.ndarray, penalty: float) -> list[int]:
    """Best state path through per-beat ``scores`` ``(T, K)`` with ``penalty`` per change."""
    n_beats, n_states = scores.shape
    if n_beats == 0:
        return []
    best = scores[0].copy()
    back = np.zeros((n_beats, n_states), dtype=np.int64)
    for t in range(1, n_beats):
        leader = int(np.argmax(best))
        switch = best[leader] - penalty
        stay = best >= switch
        back[t] = np.where(stay, np.arange(n_states), leader)
        best = np.where(stay, best, switch) + scores[t]
    path = [int(np.argmax(best))]
    for t in range(n_beats - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return path[::-1]
