"""Compose the default anchors and content pieces by code, deterministically.

    python tools/compose_anchors.py [--out live/texture/data]

Writes ``anchors/<name>/`` (six texture anchors: accompaniment + chords + image) and
``content/<name>/`` (two content pieces: melody + chords + a sketch-like image) in the folder
format of ``docs/anchors.md``. All music and pictures are made here from chord progressions,
texture rules and drawing primitives (no external material). Running it twice gives identical
files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from live.music.chords import parse_label, progression_labels  # noqa: E402
from live.music.midifile import write_midi  # noqa: E402
from live.music.notes import DURATION, ONSET, make_notes  # noqa: E402

BEATS = 32
SIZE = 256


def chord_pitches(label: str) -> tuple[int, list[int]]:
    """Harte label -> (bass pitch class, pitch classes of the chord)."""
    root, intervals, bass = parse_label(label)
    return bass, [(root + i) % 12 for i in intervals]


def voicing(pcs: list[int], low: int, count: int) -> list[int]:
    """The ``count`` lowest pitches >= ``low`` whose pitch classes are in ``pcs`` (close position)."""
    out = []
    pitch = low
    while len(out) < count:
        if pitch % 12 in pcs:
            out.append(pitch)
        pitch += 1
    return out


def bass_note(pc: int, low: int) -> int:
    """The lowest pitch >= ``low`` with pitch class ``pc``."""
    return low + (pc - low) % 12


def per_bar(labels: list[str]) -> list[list[str]]:
    """Per-beat labels -> 8 bars of 4 labels."""
    return [labels[i : i + 4] for i in range(0, BEATS, 4)]


# Textures: each maps per-beat chord labels to rows (onset, pitch, duration, velocity).

def sustained_blocks(labels: list[str]) -> list[tuple]:
    rows = []
    for bar, beats in enumerate(per_bar(labels)):
        for half in (0, 2):
            if half == 2 and beats[2] == beats[0]:
                continue
            length = 16 if beats[2] == beats[0] else 8
            onset = bar * 16 + half * 4
            bass, pcs = chord_pitches(beats[half])
            low = bass_note(bass, 36)
            rows += [(onset, low, length, 62), (onset, low + 12, length, 58)]
            rows += [(onset, p, length, 66) for p in voicing(pcs, 55, 4)]
    return rows


def arpeggios(labels: list[str]) -> list[tuple]:
    rows = []
    for bar, beats in enumerate(per_bar(labels)):
        bass, pcs = chord_pitches(beats[0])
        rows.append((bar * 16, bass_note(bass, 38), 16, 70))
        for beat, label in enumerate(beats):
            _, pcs = chord_pitches(label)
            figure = voicing(pcs, 50, 6)
            shape = figure[:4] if beat % 2 == 0 else figure[2:6][::-1]
            for k, pitch in enumerate(shape):
                rows.append((bar * 16 + beat * 4 + k, pitch, 2, 60 + 8 * (k == 0)))
    return rows


def syncopated_comping(labels: list[str]) -> list[tuple]:
    rows = []
    pattern = [(0, 3, 84), (3, 3, 72), (6, 2, 78), (10, 3, 74), (12, 2, 70), (14, 2, 80)]
    for bar, beats in enumerate(per_bar(labels)):
        for onset, length, velocity in pattern:
            bass, pcs = chord_pitches(beats[onset // 4])
            rows += [(bar * 16 + onset, p, length, velocity) for p in voicing(pcs, 58, 3)]
        bass, _ = chord_pitches(beats[0])
        low = bass_note(bass, 36)
        rows += [(bar * 16, low, 6, 88), (bar * 16 + 6, low, 2, 76), (bar * 16 + 10, low + 7, 6, 80)]
    return rows


def sparse_ballad(labels: list[str]) -> list[tuple]:
    rows = []
    for bar, beats in enumerate(per_bar(labels)):
        bass, pcs = chord_pitches(beats[0])
        rows.append((bar * 16, bass_note(bass, 36), 16, 52))
        top = voicing(pcs, 60, 3)
        rows += [(bar * 16 + 8, top[0], 8, 44), (bar * 16 + 8, top[2], 8, 46)]
        if bar % 2 == 1:
            rows.append((bar * 16 + 14, top[1] + 12, 2, 40))
    return rows


def broken_chords(labels: list[str]) -> list[tuple]:
    rows = []
    for bar, beats in enumerate(per_bar(labels)):
        for half in (0, 2):
            bass, pcs = chord_pitches(beats[half])
            low = bass_note(bass, 43)
            mid, _, top = voicing(pcs, low + 1, 3)
            onset = bar * 16 + half * 4
            for k, pitch in enumerate((low, top, mid, top)):
                rows.append((onset + 2 * k, pitch, 2, 70 if k == 0 else 60))
    return rows


def stride(labels: list[str]) -> list[tuple]:
    rows = []
    for bar, beats in enumerate(per_bar(labels)):
        for beat, label in enumerate(beats):
            bass, pcs = chord_pitches(label)
            onset = bar * 16 + beat * 4
            if beat % 2 == 0:
                low = bass_note(bass if beat == 0 else (pcs[2] if len(pcs) > 2 else bass), 31)
                rows += [(onset, low, 3, 86), (onset, low + 12, 3, 80)]
            else:
                rows += [(onset, p, 2, 74) for p in voicing(pcs, 55, 4)]
    return rows


# Images: 256 x 256 RGB, drawn with numpy and PIL.

def _grid() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / SIZE
    return yy, xx


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def image_blocks(rng: np.random.Generator) -> Image.Image:
    """Calm horizontal bands of muted blue-grey, soft edges: long sustained chords."""
    yy, _ = _grid()
    base = np.stack([90 + 40 * yy, 110 + 30 * yy, 150 + 20 * yy], axis=-1)
    img = _to_image(base + rng.normal(0, 3, base.shape))
    draw = ImageDraw.Draw(img)
    for k, (y, shade) in enumerate([(40, 170), (110, 135), (180, 115)]):
        draw.rectangle([24 + 8 * k, y, 232 - 8 * k, y + 48], fill=(shade - 30, shade - 10, shade + 20))
    return img.filter(ImageFilter.GaussianBlur(3))


def image_arpeggios(rng: np.random.Generator) -> Image.Image:
    """Flowing sine waves in teal and gold on a light ground: rising and falling figures."""
    yy, xx = _grid()
    base = np.stack([200 + 20 * xx, 220 - 10 * yy, 210 + 0 * xx], axis=-1)
    for k in range(7):
        wave = 0.15 + 0.11 * k + 0.05 * np.sin(2 * np.pi * (3 * xx + 0.15 * k))
        line = np.exp(-((yy - wave) ** 2) / 0.00012)
        colour = np.array([30, 140, 150]) if k % 2 == 0 else np.array([210, 150, 40])
        base = base * (1 - line[..., None]) + colour * line[..., None]
    return _to_image(base + rng.normal(0, 4, base.shape))


def image_comping(rng: np.random.Generator) -> Image.Image:
    """Bold saturated diagonal stripes with offbeat breaks: punchy syncopation."""
    yy, xx = _grid()
    phase = ((xx + yy) * 8) % 1.0
    stripe = (phase < 0.45).astype(float)
    gaps = ((xx * 8).astype(int) % 3 == 1) & ((yy * 8).astype(int) % 2 == 0)
    stripe[gaps] = 1 - stripe[gaps]
    hot = np.array([235, 60, 90])
    cool = np.array([40, 50, 160])
    base = stripe[..., None] * hot + (1 - stripe[..., None]) * cool
    return _to_image(base + rng.normal(0, 6, base.shape))


def image_ballad(rng: np.random.Generator) -> Image.Image:
    """A dark night with one small pale moon and a few faint stars: sparse and quiet."""
    yy, xx = _grid()
    base = np.stack([18 + 20 * yy, 20 + 22 * yy, 45 + 35 * yy], axis=-1)
    moon = np.exp(-(((xx - 0.7) ** 2 + (yy - 0.28) ** 2) / 0.0025))
    base = base + moon[..., None] * np.array([200, 200, 170])
    img = base + rng.normal(0, 2, base.shape)
    for y, x in rng.integers(10, SIZE - 10, (14, 2)):
        img[y, x] = [150, 150, 170]
    return _to_image(img).filter(ImageFilter.GaussianBlur(0.6))


def image_broken(rng: np.random.Generator) -> Image.Image:
    """A staggered grid of round dots in warm colours: evenly broken, repeating figures."""
    img = _to_image(np.full((SIZE, SIZE, 3), [245, 235, 215], float) + rng.normal(0, 3, (SIZE, SIZE, 3)))
    draw = ImageDraw.Draw(img)
    for row in range(8):
        for col in range(8):
            x = 16 + col * 32 + (16 if row % 2 else 0)
            y = 16 + row * 32
            radius = 7 + 3 * ((row + col) % 3)
            colour = (200, 90 + 20 * (col % 3), 50) if (row + col) % 2 else (120, 60, 40)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
    return img


def image_stride(rng: np.random.Generator) -> Image.Image:
    """Alternating heavy low blocks and light high blocks in black, white and mustard: oom-pah."""
    img = _to_image(np.full((SIZE, SIZE, 3), [235, 225, 200], float) + rng.normal(0, 3, (SIZE, SIZE, 3)))
    draw = ImageDraw.Draw(img)
    for k in range(8):
        x = k * 32
        if k % 2 == 0:
            draw.rectangle([x + 3, 150, x + 29, 250], fill=(25, 25, 30))
        else:
            draw.rectangle([x + 3, 40, x + 29, 110], fill=(215, 170, 40))
    draw.line([0, 130, SIZE, 130], fill=(25, 25, 30), width=4)
    return img


# Content pieces: melody over chords, and a pencil sketch.

def melody_from_plan(plan: list[tuple[int, int, int]], velocity: int = 96) -> list[tuple]:
    """``plan``: (onset step, pitch, duration) rows -> note rows with a fixed velocity."""
    return [(onset, pitch, duration, velocity) for onset, pitch, duration in plan]


def lullaby() -> list[tuple]:
    """A stepwise tune in C major, mostly quarters and halves, over C Am F G C F G C."""
    plan, t = [], 0
    phrase = [(72, 4), (71, 4), (69, 4), (67, 4), (69, 4), (72, 4), (72, 8),
              (77, 4), (76, 4), (74, 4), (72, 4), (74, 8), (71, 8),
              (72, 4), (74, 4), (76, 4), (72, 4), (69, 4), (72, 4), (77, 8),
              (76, 4), (74, 4), (71, 4), (74, 4), (72, 16)]
    for pitch, length in phrase:
        plan.append((t, pitch, length))
        t += length
    assert t == BEATS * 4
    return melody_from_plan(plan)


def folk_tune() -> list[tuple]:
    """A dotted, leaping dance tune in G major over G D Em C G C D G."""
    plan, t = [], 0
    phrase = [(67, 6), (71, 2), (74, 4), (71, 4), (69, 6), (66, 2), (62, 8),
              (64, 4), (67, 4), (71, 6), (69, 2), (67, 4), (64, 4), (72, 8),
              (71, 6), (74, 2), (79, 4), (74, 4), (72, 4), (76, 4), (72, 8),
              (69, 4), (66, 4), (62, 4), (66, 4), (67, 16)]
    for pitch, length in phrase:
        plan.append((t, pitch, length))
        t += length
    assert t == BEATS * 4
    return melody_from_plan(plan)


def _sketch_canvas(rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    paper = np.full((SIZE, SIZE, 3), [250, 248, 240], float) + rng.normal(0, 2.5, (SIZE, SIZE, 3))
    img = _to_image(paper)
    return img, ImageDraw.Draw(img)


def _pencil(draw: ImageDraw.ImageDraw, rng: np.random.Generator, points: list[tuple[float, float]]) -> None:
    """A wobbly pencil polyline drawn twice with small jitter."""
    for _ in range(2):
        jittered = [(x + rng.normal(0, 1.2), y + rng.normal(0, 1.2)) for x, y in points]
        draw.line(jittered, fill=(60, 60, 70), width=2)


def sketch_house(rng: np.random.Generator) -> Image.Image:
    """Pencil sketch of a house with a moon: the lullaby."""
    img, draw = _sketch_canvas(rng)
    _pencil(draw, rng, [(60, 200), (60, 120), (196, 120), (196, 200), (60, 200)])
    _pencil(draw, rng, [(50, 124), (128, 60), (206, 124)])
    _pencil(draw, rng, [(112, 200), (112, 160), (144, 160), (144, 200)])
    _pencil(draw, rng, [(76, 136), (100, 136), (100, 156), (76, 156), (76, 136)])
    angles = np.linspace(0.6, 5.7, 24)
    _pencil(draw, rng, [(210 + 18 * np.cos(a), 40 + 18 * np.sin(a)) for a in angles])
    _pencil(draw, rng, [(20, 220), (236, 220)])
    return img


def sketch_boat(rng: np.random.Generator) -> Image.Image:
    """Pencil sketch of a sailing boat on waves: the dance tune."""
    img, draw = _sketch_canvas(rng)
    _pencil(draw, rng, [(60, 170), (196, 170), (176, 196), (80, 196), (60, 170)])
    _pencil(draw, rng, [(128, 170), (128, 50)])
    _pencil(draw, rng, [(132, 56), (190, 160), (132, 160)])
    _pencil(draw, rng, [(124, 70), (80, 160), (124, 160)])
    for y in (210, 228):
        _pencil(draw, rng, [(x, y + 5 * np.sin(x / 12.0)) for x in range(10, 250, 8)])
    return img


@dataclass
class Piece:
    name: str
    title: str
    tempo: float
    progression: str
    image: Callable[[np.random.Generator], Image.Image]
    accompaniment: Callable[[list[str]], list[tuple]] | None = None
    melody: Callable[[], list[tuple]] | None = None


ANCHORS = [
    Piece("block_chords", "Sustained block chords", 66, "C G Am F C G F C", image_blocks, sustained_blocks),
    Piece("arpeggios", "Flowing arpeggios", 92, "D A Bm G D Em A D", image_arpeggios, arpeggios),
    Piece("pop_comping", "Syncopated pop comping", 112, "G D Em C G D C G", image_comping, syncopated_comping),
    Piece("sparse_ballad", "Sparse ballad", 60, "F Dm Bb C F Gm C F", image_ballad, sparse_ballad),
    Piece("broken_chords", "Broken chords", 88, "Am Dm G C F Dm E Am", image_broken, broken_chords),
    Piece("stride", "Bass-and-chords stride", 126, "Bb Gm Eb F Bb Eb F Bb", image_stride, stride),
]

CONTENT = [
    Piece("lullaby", "Lullaby (house at night)", 76, "C Am F G C F G C", sketch_house, melody=lullaby),
    Piece("folk_tune", "Folk dance (sailing boat)", 104, "G D Em C G C D G", sketch_boat, melody=folk_tune),
]


def write_piece(folder: str, piece: Piece, seed: int) -> None:
    """Write one anchor folder: anchor.toml, image.png, chords.txt and the MIDI file(s)."""
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    labels = progression_labels(piece.progression)
    assert len(labels) == BEATS
    files = ['image = "image.png"', 'chords = "chords.txt"']
    if piece.accompaniment is not None:
        notes = make_notes(piece.accompaniment(labels))
        notes[:, DURATION] = np.minimum(notes[:, DURATION], BEATS * 4 - notes[:, ONSET])
        write_midi(os.path.join(folder, "accompaniment.mid"), [("accompaniment", 1, notes)], piece.tempo)
        files.append('accompaniment = "accompaniment.mid"')
    if piece.melody is not None:
        notes = make_notes(piece.melody())
        write_midi(os.path.join(folder, "melody.mid"), [("melody", 0, notes)], piece.tempo)
        files.append('melody = "melody.mid"')
    with open(os.path.join(folder, "chords.txt"), "w") as f:
        f.write(f"# one chord per beat; composed as: {piece.progression} (one chord a bar)\n")
        f.write("\n".join(labels) + "\n")
    with open(os.path.join(folder, "anchor.toml"), "w") as f:
        f.write(f'title = "{piece.title}"\ntempo = {piece.tempo}\n\n[files]\n' + "\n".join(files) + "\n")
    piece.image(np.random.default_rng(seed)).save(os.path.join(folder, "image.png"), optimize=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "live", "texture", "data"))
    args = parser.parse_args(argv)
    for kind, pieces in (("anchors", ANCHORS), ("content", CONTENT)):
        for seed, piece in enumerate(pieces):
            folder = os.path.join(args.out, kind, piece.name)
            write_piece(folder, piece, seed)
            print(f"wrote {os.path.normpath(folder)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
