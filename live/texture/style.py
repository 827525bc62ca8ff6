"""Style transfer helpers: content (melody + chords) onto a style anchor's texture.

Music side (Vis2Mus, spec section 5.4):

- :func:`register_shift`: the melody's mean pitch is moved to the mean of the highest quarter of
  the style accompaniment's notes. The shift is truncated toward 0 and then snapped, so that it is
  a unison, fourth or fifth modulo the octave.
- :func:`shifted_chords`: the content's chord rows are transposed with the melody, so that
  harmony and tune stay together.
- :func:`choose_tempo`: optionally adopt the style's tempo (Vis2Mus plays the result at the
  style piece's tempo).

Image side: :func:`blend_images` is an honest, non-neural picture of content x style. It takes
no learned style transfer. The sketch's tones are re-coloured with the style image's own colours
at the same luminance (a palette lookup), laid over a faint copy of the style picture's texture,
and the sketch's pencil lines are drawn in the style's darkest colour (its lightest when the style
is dark).
"""

from __future__ import annotations

import cv2
import numpy as np

from live.music.chords import transpose_chord_rows
from live.music.notes import PITCH

_SNAP = {1: -1, 2: -2, 3: 2, 4: 1, 6: 1, 8: -1, 9: -2, 10: 2, 11: 1}
_LUMA = np.array([0.299, 0.587, 0.114])


def register_shift(melody: np.ndarray, accompaniment: np.ndarray) -> int:
    """Semitones to move ``melody`` ``(N, 4)`` to the top of ``accompaniment`` ``(M, 4)``.

    ``shift = -int(mean(melody) - mean(top M // 4 accompaniment pitches))``. Then
    ``shift += d[shift mod 12]`` with ``d`` = {1:-1, 2:-2, 3:+2, 4:+1, 6:+1, 8:-1, 9:-2, 10:+2,
    11:+1}, so the result modulo 12 is 0, 5 or 7. The shift is 0 for an empty melody or for fewer
    than 4 accompaniment notes.
    """
    if len(melody) == 0 or len(accompaniment) < 4:
        return 0
    pitches = np.sort(accompaniment[:, PITCH])[::-1]
    top = pitches[: len(pitches) // 4].mean()
    shift = -int(float(melody[:, PITCH].mean()) - float(top))
    return shift + _SNAP.get(shift % 12, 0)


def octave_shift(shift: int) -> int:
    """The multiple of 12 nearest to ``shift``: the register move that keeps the key."""
    return 12 * int(np.round(shift / 12.0))


def shifted_chords(rows: np.ndarray, shift: int) -> np.ndarray:
    """Chord rows ``(n_beats, 36)`` transposed by ``shift`` (root, chroma and bass together)."""
    return transpose_chord_rows(rows, shift)


def choose_tempo(content_bpm: float, style_bpm: float, adopt_style_tempo: bool = True) -> float:
    """The tempo of a stylised piece: the style's (Vis2Mus' tempo transfer) or the content's."""
    return float(style_bpm if adopt_style_tempo else content_bpm)


def _luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ _LUMA.astype(np.float32)


def palette(style: np.ndarray, bins: int = 64) -> np.ndarray:
    """The style image's mean colour at each luminance level: ``(bins, 3)`` float32, rows ordered
    from dark to light. Levels are luminance quantiles, so every row is a colour the picture uses."""
    pixels = style.reshape(-1, 3).astype(np.float32)
    order = np.argsort(_luma(style).reshape(-1), kind="stable")
    chunks = np.array_split(pixels[order], bins)
    return np.stack([c.mean(axis=0) for c in chunks])


def blend_images(content: np.ndarray, style: np.ndarray, texture: float = 0.45) -> np.ndarray:
    """A picture of the content sketch in the style image's colours ``(H, W, 3)`` uint8.

    ``content`` and ``style`` are ``(H, W, 3)`` uint8 images (the style is resized to the
    content's size). Each content pixel takes the style palette colour at its own luminance. A
    ``texture`` share of the resized style picture is mixed in. Lines (dark strokes and edges of
    the sketch) are drawn in the palette's darkest colour, or its lightest on a dark style.
    """
    if content.ndim != 3 or content.shape[2] != 3 or style.ndim != 3 or style.shape[2] != 3:
        raise ValueError(f"blend_images needs two (H, W, 3) images, got {content.shape} and {style.shape}")
    height, width = content.shape[:2]
    lum = _luma(content) / 255.0
    colours = palette(style)
    level = np.clip((lum * (len(colours) - 1)).round().astype(int), 0, len(colours) - 1)
    tones = colours[level]
    backdrop = cv2.resize(style, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    base = (1.0 - texture) * tones + texture * backdrop
    gray = np.clip(lum * 255, 0, 255).astype(np.uint8)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 40, 120).astype(np.float32) / 255.0
    ink = np.clip((0.75 - lum) / 0.45, 0.0, 1.0)
    strokes = cv2.GaussianBlur(np.maximum(ink, 0.6 * edges), (3, 3), 0)[..., None]
    dark_ground = float(base.reshape(-1, 3).mean(axis=0) @ _LUMA) < 100.0
    ink = colours[-1] if dark_ground else colours[0] * 0.6
    out = base * (1.0 - strokes) + ink * strokes
    return np.clip(out, 0, 255).astype(np.uint8)
