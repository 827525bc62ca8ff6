"""Anchor folders: the shipped anchors, the generator that wrote them, and validation errors."""

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pytest
from PIL import Image

from live.music.chords import root_quality
from live.music.midifile import write_midi
from live.music.notes import make_notes
from live.texture.anchors import AnchorError, content_pieces, default_anchors, find, load_anchor

REPO = Path(__file__).resolve().parents[1]
TEXTURES = {"block_chords", "arpeggios", "pop_comping", "sparse_ballad", "broken_chords", "stride"}


def test_six_texture_anchors_and_two_content_pieces_ship():
    anchors = default_anchors()
    assert TEXTURES <= set(anchors)
    for anchor in anchors.values():
        assert anchor.n_segments == 4 and anchor.chords.shape == (32, 36)
        assert anchor.image.dtype == np.uint8 and anchor.image.ndim == 3
        for index in range(4):
            seg = anchor.segment("accompaniment", index)
            assert len(seg) > 0 and seg[:, 0].max() < 32 and (seg[:, 0] + seg[:, 2]).max() <= 32
        assert 20 <= anchor.bpm <= 300
    content = content_pieces()
    assert len(content) >= 2
    for piece in content.values():
        assert len(piece.melody) > 0 and len(piece.accompaniment) == 0
        assert piece.n_segments == 4 and np.all(piece.chords[:, :12].sum(axis=1) == 1)


def test_textures_differ_in_density():
    anchors = default_anchors()
    counts = {name: len(anchors[name].accompaniment) for name in TEXTURES}
    assert counts["sparse_ballad"] < counts["block_chords"] < counts["arpeggios"]
    assert len(set(counts.values())) == len(counts)


def test_generator_is_deterministic_and_matches_the_shipped_files(tmp_path):
    script = REPO / "tools" / "compose_anchors.py"
    for out in ("a", "b"):
        subprocess.run([sys.executable, str(script), "--out", str(tmp_path / out)], check=True, capture_output=True)
    for kind in ("anchors", "content"):
        for name in os.listdir(tmp_path / "a" / kind):
            files = sorted(os.listdir(tmp_path / "a" / kind / name))
            match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a" / kind / name, tmp_path / "b" / kind / name,
                                                       files, shallow=False)
            assert mismatch == [] and errors == []
            match, mismatch, errors = filecmp.cmpfiles(tmp_path / "a" / kind / name, REPO / "live" / "texture" / "data" / kind / name,
                                                       files, shallow=False)
            assert mismatch == [] and errors == [], f"live/texture/data/{kind}/{name} is out of date: rerun the generator"


def make_anchor(folder: Path, bars: int = 4, toml: str | None = None, image: bool = True, chords: str | None = None,
                rows=None) -> Path:
    folder.mkdir(parents=True)
    if rows is None:
        rows = [(bar * 16 + k * 4, (60, 64, 67, 72)[k], 4) for bar in range(bars) for k in range(4)]
        rows += [(bar * 16, 36, 16) for bar in range(bars)]
    write_midi(folder / "accompaniment.mid", [("acc", 1, make_notes(rows))], 100.0)
    if image:
        Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(folder / "image.png")
    (folder / "anchor.toml").write_text(toml if toml is not None else 'title = "test"\ntempo = 100\n')
    if chords is not None:
        (folder / "chords.txt").write_text(chords)
    return folder


def test_a_minimal_anchor_loads_with_recognised_chords(tmp_path):
    anchor = load_anchor(make_anchor(tmp_path / "mini"))
    assert anchor.n_segments == 2 and anchor.bpm == 100.0 and anchor.title == "test"
    assert {root_quality(x) for x in anchor.chord_labels} == {"C:maj"}
    assert len(anchor.melody) == 0


def test_recognition_finds_the_composed_chords_of_a_shipped_anchor(tmp_path):
    shipped = REPO / "live" / "texture" / "data" / "anchors" / "block_chords"
    copy = tmp_path / "block_chords"
    copy.mkdir()
    for name in ("accompaniment.mid", "image.png"):
        (copy / name).write_bytes((shipped / name).read_bytes())
    (copy / "anchor.toml").write_text("tempo = 66\n")
    recognised = load_anchor(copy).chord_labels
    composed = default_anchors()["block_chords"].chord_labels
    agree = sum(root_quality(a) == root_quality(b) for a, b in zip(recognised, composed))
    assert agree >= 30


def write_meter(path: Path, numerator: int) -> None:
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("time_signature", numerator=numerator, denominator=4, time=0))
    for _ in range(12):
        track.append(mido.Message("note_on", note=60, velocity=80, time=0))
        track.append(mido.Message("note_off", note=60, velocity=0, time=480))
    mid.tracks.append(track)
    mid.save(path)


@pytest.mark.parametrize(
    "setup,message",
    [
        (lambda f: f.mkdir(), "no anchor.toml"),
        (lambda f: make_anchor(f, image=False), "image file image.png is missing"),
        (lambda f: (make_anchor(f), (f / "image.png").write_bytes(b"not a png")), "image.png is not a readable image"),
        (lambda f: (make_anchor(f), write_meter(f / "accompaniment.mid", 3)), "time signature 3/4"),
        (lambda f: make_anchor(f, bars=3), "has 3 bars; an anchor needs an even number"),
        (lambda f: (make_anchor(f), (f / "accompaniment.mid").write_bytes(b"MThd")), "not a readable MIDI file"),
        (lambda f: make_anchor(f, rows=[(0, 60, 4), (70, 60, 4), (120, 60, 8)]),
         "accompaniment is empty in segment 1 (bars 3-4)"),
        (lambda f: make_anchor(f, chords="C:maj " * 15), "chords.txt has 15 chords; the piece has 16 beats"),
        (lambda f: make_anchor(f, chords="C:maj H:min " * 8), "chords: not a note name"),
        (lambda f: make_anchor(f, toml="tempo = 900\n"), "tempo must be a number of BPM in 20..300"),
        (lambda f: make_anchor(f, toml="tempo = \n"), "anchor.toml is not valid TOML"),
        (lambda f: make_anchor(f, toml='[files]\nmelody = "tune.mid"\n'), "melody file tune.mid is missing"),
        (lambda f: make_anchor(f, toml='colour = "red"\n'), "unknown keys ['colour']"),
    ],
)
def test_validation_errors_say_exactly_what_is_wrong(tmp_path, setup, message):
    folder = tmp_path / "broken"
    setup(folder)
    with pytest.raises(AnchorError) as info:
        load_anchor(folder)
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "broken" in str(info.value)


def test_empty_midi_and_content_without_chords(tmp_path):
    folder = make_anchor(tmp_path / "empty")
    write_midi(folder / "accompaniment.mid", [("acc", 1, make_notes([]))], 100.0)
    with pytest.raises(AnchorError, match="contains no notes"):
        load_anchor(folder)
    content = tmp_path / "tune"
    content.mkdir()
    write_midi(content / "melody.mid", [("mel", 0, make_notes([(k * 4, 72, 4) for k in range(32)]))], 90.0)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(content / "image.png")
    (content / "anchor.toml").write_text('title = "tune"\n')
    with pytest.raises(AnchorError, match="needs chords"):
        load_anchor(content)
    (content / "anchor.toml").write_text('title = "tune"\nchords = "C Am"\n')
    piece = load_anchor(content)
    assert piece.chord_labels[:8] == ("C:maj",) * 4 + ("A:min",) * 4 and len(piece.chord_labels) == 32


def test_find_by_name_or_path(tmp_path):
    assert find("stride").name == "stride"
    assert find("lullaby", content=True).melody.shape[1] == 4
    assert find(str(make_anchor(tmp_path / "mine"))).name == "mine"
    with pytest.raises(AnchorError, match="unknown anchor 'nope'"):
        find("nope")
