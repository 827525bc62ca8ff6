"""Anchor folders composed for tests (nothing from POP909): a chord a beat over a held bass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from live.music.midifile import write_midi
from live.music.notes import make_notes


def compose(folder: Path, root: int = 60, bars: int = 4, melody: bool = False, accompaniment: bool = True) -> Path:
    """An anchor folder written from scratch: a chord a beat over a held bass, a grey image."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(bar * 16 + k * 4, root + (0, 4, 7, 12)[k], 4) for bar in range(bars) for k in range(4)]
    rows += [(bar * 16, root - 24, 16) for bar in range(bars)]
    if accompaniment:
        write_midi(folder / "accompaniment.mid", [("acc", 1, make_notes(rows))], 96.0)
    if melody:
        tune = [(bar * 16 + k * 8, root + 12 + 2 * k, 8) for bar in range(bars) for k in range(2)]
        write_midi(folder / "melody.mid", [("tune", 0, make_notes(tune))], 96.0)
    Image.fromarray(np.full((8, 8, 3), 40 + root, np.uint8)).save(folder / "image.png")
    toml = "tempo = 96\n" if accompaniment else 'tempo = 96\nchords = "C G"\n'
    (folder / "anchor.toml").write_text(toml)
    return folder
