"""Anchors: an image paired with music, loaded from a folder (format in ``docs/anchors.md``).

A texture anchor has an accompaniment (its texture drives the music); a content piece has a
melody and chords (for style transfer) and may have no accompaniment. Every problem with a folder
raises :class:`AnchorError` with one line naming the folder and what is wrong.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePath

import numpy as np
from PIL import Image, UnidentifiedImageError

from live.music.chords import ChordError, chord_file_labels, labels_to_rows, progression_labels, recognize_chords
from live.music.midifile import MidiFormatError, read_midi
from live.music.notes import BEATS_PER_SEGMENT, ONSET, STEPS, TEMPO_RANGE, empty_notes

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_ANCHORS = DATA / "anchors"
DEFAULT_CONTENT = DATA / "content"
_FILE_KEYS = ("image", "accompaniment", "melody", "chords")
_DEFAULT_FILES = {"image": "image.png", "accompaniment": "accompaniment.mid", "melody": "melody.mid",
                  "chords": "chords.txt"}


class AnchorError(ValueError):
    """An anchor folder that cannot be used; ``str()`` is one line."""


@dataclass(frozen=True, eq=False)
class Anchor:
    """One image-music pair.

    ``image`` ``(H, W, 3)`` uint8; ``accompaniment`` and ``melody`` note lists ``(N, 4)`` with
    absolute onsets over ``n_segments * 32`` steps (either may be empty, not both); ``chords``
    ``(n_segments * 8, 36)`` one row per beat; ``chord_labels`` the matching Harte labels;
    ``digest`` a SHA-256 of the music and image, for caches.
    """

    name: str
    title: str
    path: str
    image: np.ndarray
    accompaniment: np.ndarray
    melody: np.ndarray
    chords: np.ndarray
    chord_labels: tuple[str, ...]
    bpm: float
    n_segments: int
    digest: str = field(repr=False)

    def segment(self, part: str, index: int) -> np.ndarray:
        """Notes ``(n, 4)`` of ``part`` ("accompaniment" or "melody") in 2-bar segment ``index``,
        onsets 0..31 (notes are assigned by onset; durations cut at the segment end)."""
        notes = getattr(self, part)
        start = index * STEPS
        inside = (notes[:, ONSET] >= start) & (notes[:, ONSET] < start + STEPS)
        out = notes[inside].copy()
        out[:, ONSET] -= start
        out[:, 2] = np.minimum(out[:, 2], STEPS - out[:, ONSET])
        return out


def _fail(folder: Path, reason: str) -> AnchorError:
    return AnchorError(f"anchor {folder.name!r} ({folder}): {reason}")


def _inside(folder: Path, name: object, what: str) -> Path:
    """``folder / name``, or :class:`AnchorError` unless it stays inside ``folder`` (a resolved
    path): no absolute path, no ``..``, no symbolic link that leads out. The message names the
    entry, never the contents of what it points at."""
    if not isinstance(name, str) or not name.strip():
        raise _fail(folder, f"{what} must be a file name inside the anchor folder")
    relative = PurePath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise _fail(folder, f"{what} {name!r} must name a file inside the anchor folder (no absolute path, no '..')")
    path = folder / relative
    if not path.resolve().is_relative_to(folder):
        raise _fail(folder, f"{what} {name!r} is a link that leads outside the anchor folder")
    return path


def _read_toml(folder: Path) -> dict:
    if not folder.is_dir():
        raise AnchorError(f"anchor folder {folder} does not exist")
    path = _inside(folder, "anchor.toml", "anchor.toml")
    if not path.is_file():
        raise _fail(folder, "no anchor.toml")
    try:
        with open(path, "rb") as f:
            meta = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise _fail(folder, f"anchor.toml is not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(folder, f"anchor.toml cannot be read ({exc.__class__.__name__})") from None
    unknown = set(meta) - {"title", "tempo", "files", "chords"}
    if unknown:
        raise _fail(folder, f"anchor.toml has unknown keys {sorted(unknown)} (title, tempo, files, chords)")
    return meta


def _file(folder: Path, meta: dict, key: str, required: bool) -> Path | None:
    """The path of a file named in ``[files]`` (or its default name), None when optional and absent."""
    files = meta.get("files", {})
    if not isinstance(files, dict) or set(files) - set(_FILE_KEYS):
        raise _fail(folder, f"[files] may only name {', '.join(_FILE_KEYS)}")
    named = key in files
    path = _inside(folder, files.get(key, _DEFAULT_FILES[key]), f"[files] {key}" if named else key)
    if path.is_file():
        return path
    if required or named:
        raise _fail(folder, f"{key} file {path.relative_to(folder)} is missing")
    return None


def _read_image(folder: Path, path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            image = np.asarray(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise _fail(folder, f"{path.name} is not a readable image ({exc.__class__.__name__})") from None
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise _fail(folder, f"{path.name} is {image.shape[1]}x{image.shape[0]} pixels; at least 2x2 needed")
    return image


def _read_notes(folder: Path, path: Path, part: str) -> tuple[np.ndarray, int, float]:
    """Notes of all tracks, length in bars (up to the end of the last note) and tempo of a MIDI file."""
    try:
        piece = read_midi(path)
    except MidiFormatError as exc:
        raise _fail(folder, f"{part}: {exc.reason}") from None
    return piece.notes(), piece.n_bars, piece.bpm


def _length_in_bars(folder: Path, bars: dict[str, int], names: dict[str, str]) -> int:
    """The piece's length in bars: the accompaniment's (even), which a shorter melody is padded to
    with rests; a content piece's melody is padded to an even number of bars."""
    if "accompaniment" not in bars:
        return bars["melody"] + bars["melody"] % 2
    n_bars = bars["accompaniment"]
    if n_bars % 2:
        raise _fail(folder, f"accompaniment {names['accompaniment']} has {n_bars} bars; an anchor needs an even "
                            "number (2-bar segments)")
    if bars.get("melody", 0) > n_bars:
        raise _fail(folder, f"melody has {bars['melody']} bars but the accompaniment has {n_bars} "
                            "(a shorter melody is padded with rests, a longer one is not cut)")
    return n_bars


def _read_labels(folder: Path, meta: dict, n_beats: int, accompaniment: np.ndarray) -> list[str]:
    """Per-beat Harte labels: ``chords`` in anchor.toml, else chords.txt, else recognised."""
    path = _file(folder, meta, "chords", required=False)
    try:
        if "chords" in meta:
            if not isinstance(meta["chords"], str):
                raise _fail(folder, "chords in anchor.toml must be a progression string such as \"C Am F G\"")
            labels = progression_labels(meta["chords"])
            return [labels[i % len(labels)] for i in range(n_beats)]
    except ChordError as exc:
        raise _fail(folder, f"chords in anchor.toml: {exc}") from None
    if path is not None:
        name = path.relative_to(folder)
        try:
            labels = chord_file_labels(path.read_text(encoding="utf-8"))
        except ChordError as exc:
            raise _fail(folder, f"{name} {exc}") from None
        except (UnicodeDecodeError, OSError):
            raise _fail(folder, f"{name} is not a readable text file") from None
        if len(labels) != n_beats:
            raise _fail(folder, f"{name} has {len(labels)} chords; the piece has {n_beats} beats (one chord per beat)")
        return labels
    if len(accompaniment) == 0:
        raise _fail(folder, "a content piece without accompaniment needs chords (chords.txt or chords = ...)")
    return recognize_chords(accompaniment, n_beats)


def _tempo(folder: Path, meta: dict, midi_bpm: float) -> float:
    tempo = meta.get("tempo", midi_bpm)
    if isinstance(tempo, bool) or not isinstance(tempo, (int, float)) or not (
        TEMPO_RANGE[0] <= tempo <= TEMPO_RANGE[1]
    ):
        raise _fail(folder, f"tempo must be a number of BPM in {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g}, got {tempo!r}")
    return round(float(tempo), 3)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        h.update(str(arr.shape).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _frozen(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def load_anchor(path: str | os.PathLike) -> Anchor:
    """Load and validate an anchor folder; raises :class:`AnchorError` (one line) on any problem."""
    folder = Path(path).expanduser().resolve()
    meta = _read_toml(folder)
    image = _read_image(folder, _file(folder, meta, "image", required=True))
    acc_path = _file(folder, meta, "accompaniment", required=False)
    mel_path = _file(folder, meta, "melody", required=False)
    if acc_path is None and mel_path is None:
        raise _fail(folder, "needs accompaniment.mid (a texture anchor) or melody.mid (a content piece)")
    parts: dict[str, np.ndarray] = {"accompaniment": empty_notes(), "melody": empty_notes()}
    bars: dict[str, int] = {}
    names: dict[str, str] = {}
    bpm = 120.0
    for part, part_path in (("melody", mel_path), ("accompaniment", acc_path)):
        if part_path is not None:
            parts[part], bars[part], bpm = _read_notes(folder, part_path, part)
            names[part] = str(part_path.relative_to(folder))
    n_segments = _length_in_bars(folder, bars, names) // 2
    if len(parts["accompaniment"]):
        per_segment = np.bincount(parts["accompaniment"][:, ONSET] // STEPS, minlength=n_segments)
        empty = np.flatnonzero(per_segment[:n_segments] == 0)
        if len(empty):
            first = int(empty[0])
            raise _fail(folder, f"accompaniment is empty in segment {first} (bars {2 * first + 1}-{2 * first + 2})")
    labels = _read_labels(folder, meta, n_segments * BEATS_PER_SEGMENT, parts["accompaniment"])
    chords = labels_to_rows(labels)
    title = meta.get("title", folder.name)
    if not isinstance(title, str):
        raise _fail(folder, "title must be a string")
    return Anchor(
        name=folder.name,
        title=title,
        path=str(folder),
        image=_frozen(image),
        accompaniment=_frozen(parts["accompaniment"]),
        melody=_frozen(parts["melody"]),
        chords=_frozen(chords),
        chord_labels=tuple(labels),
        bpm=_tempo(folder, meta, bpm),
        n_segments=n_segments,
        digest=_digest(parts["accompaniment"], parts["melody"], chords, image),
    )


def load_folder(root: str | os.PathLike) -> dict[str, Anchor]:
    """Every anchor in the subfolders of ``root`` that hold an ``anchor.toml``, by name (sorted)."""
    base = Path(root)
    return {p.name: load_anchor(p) for p in sorted(base.iterdir()) if (p / "anchor.toml").is_file()}


@functools.lru_cache(maxsize=1)
def default_anchors() -> dict[str, Anchor]:
    """The texture anchors shipped in ``live/texture/data/anchors`` (loaded once)."""
    return load_folder(DEFAULT_ANCHORS)


@functools.lru_cache(maxsize=1)
def content_pieces() -> dict[str, Anchor]:
    """The content pieces (melody + chords) shipped in ``live/texture/data/content`` (loaded once)."""
    return load_folder(DEFAULT_CONTENT)


def find(name_or_path: str, content: bool = False) -> Anchor:
    """A shipped anchor (or content piece) by name, or any anchor folder by path."""
    shipped = content_pieces() if content else default_anchors()
    if name_or_path in shipped:
        return shipped[name_or_path]
    if os.path.sep in name_or_path or os.path.isdir(name_or_path):
        return load_anchor(name_or_path)
    kind = "content piece" if content else "anchor"
    raise AnchorError(f"unknown {kind} {name_or_path!r}; shipped: {', '.join(shipped)} (or give a folder path)")
