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

from live.music.chords import ChordError, chord_file_labels, labels_to_rows, root_quality
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
        (lambda f: make_anchor(f, chords="C:maj H:min " * 8), "chords.txt line 1: not a note name: 'H'"),
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


# A verse and chorus as a guitarist writes them down: one chord per beat, comments after "#".
SONG_HARTE = """# Verse: one chord per beat
C#:min7 C#:min7 C#:min7 C#:min7   # bar 1
F#:maj F#:maj F#:7 F#:7
B:maj7 B:maj7 G#:min G#:min # chorus next
A:maj/3 A:maj/3 Eb:sus4(b7) Eb:sus4(b7)
"""


def test_chord_files_read_sharps_in_harte_and_pop_spellings_and_comments_only_after_whitespace():
    with pytest.raises(ChordError, match="line 4: unknown chord quality 'min#chorus'"):
        chord_file_labels(SONG_HARTE.replace("G#:min # chorus", "G#:min#chorus"))
    harte = SONG_HARTE
    pop = """\
# Verse, pop spelling
C#m7 C#m7 C#m7 C#m7 # bar 1
F# F# F#7 F#7
Bmaj7 Bmaj7 G#m G#m
A/C# A/C# D#7sus4 D#7sus4
"""
    labels = chord_file_labels(harte)
    assert labels[:2] == ["C#:min7", "C#:min7"] and labels[4] == "F#:maj" and labels[11] == "G#:min"
    assert len(labels) == 16
    assert np.array_equal(labels_to_rows(labels), labels_to_rows(chord_file_labels(pop)))
    assert [root_quality(x) for x in chord_file_labels("c#m F#m7 Bbmaj7 ebm")] == ["C#:min", "F#:min7", "Bb:maj7",
                                                                                   "Eb:min"]


def test_a_chords_txt_with_sharps_loads_as_written(tmp_path):
    chords = "\n".join(["# the song's chords, beat by beat", "C#m " * 8 + "  # bars 1-2", "F#:maj " * 4,
                        "A/C# " * 4])
    anchor = load_anchor(make_anchor(tmp_path / "sharps", chords=chords))
    assert [root_quality(x) for x in anchor.chord_labels[::4]] == ["C#:min", "C#:min", "F#:maj", "A:maj"]
    assert anchor.chord_labels[-1] == "A:maj/3"
    rows = anchor.chords
    assert np.flatnonzero(rows[0, :12]).tolist() == [1] and np.flatnonzero(rows[8, :12]).tolist() == [6]


def write_melody(folder: Path, bars_of_notes: int) -> None:
    rows = [(bar * 16 + k * 4, 72 + k, 4) for bar in range(bars_of_notes) for k in range(4)]
    write_midi(folder / "melody.mid", [("mel", 0, make_notes(rows))], 100.0)


def test_a_melody_ending_in_rests_is_padded_to_the_accompaniment(tmp_path):
    folder = make_anchor(tmp_path / "tune", bars=8)
    write_melody(folder, 5)
    anchor = load_anchor(folder)
    assert anchor.n_segments == 4 and len(anchor.melody) == 20
    assert len(anchor.segment("melody", 2)) == 4 and len(anchor.segment("melody", 3)) == 0
    write_melody(folder, 10)
    with pytest.raises(AnchorError, match="melody has 10 bars but the accompaniment has 8"):
        load_anchor(folder)
    content = tmp_path / "content"
    content.mkdir()
    write_melody(content, 7)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(content / "image.png")
    (content / "anchor.toml").write_text('chords = "C Am F G"\n')
    piece = load_anchor(content)
    assert piece.n_segments == 4 and len(piece.segment("melody", 3)) == 4


SECRET = "hunter2-do-not-echo"


@pytest.mark.parametrize("entry", ["../outside.txt", "{outside}", "sub/../../outside.txt", "link.txt", "linkdir/outside.txt"])
def test_files_entries_stay_inside_the_anchor_folder(tmp_path, entry):
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{SECRET} C:maj\n")
    folder = make_anchor(tmp_path / "anchors" / "sly", toml="")
    (folder / "link.txt").symlink_to(outside)
    (folder / "linkdir").symlink_to(tmp_path)
    name = entry.format(outside=outside)
    (folder / "anchor.toml").write_text(f'[files]\nchords = "{name}"\n')
    with pytest.raises(AnchorError) as info:
        load_anchor(folder)
    message = str(info.value)
    assert "\n" not in message and SECRET not in message and "hunter2" not in message
    assert "inside the anchor folder" in message or "outside the anchor folder" in message


def test_default_files_that_link_out_are_refused_and_links_inside_are_fine(tmp_path):
    folder = make_anchor(tmp_path / "linked")
    (folder / "sub").mkdir()
    (folder / "image.png").rename(folder / "sub" / "picture.png")
    (folder / "image.png").symlink_to(folder / "sub" / "picture.png")
    assert load_anchor(folder).image.shape == (8, 8, 3)
    (folder / "image.png").unlink()
    (folder / "image.png").symlink_to(REPO / "live" / "texture" / "data" / "anchors" / "stride" / "image.png")
    with pytest.raises(AnchorError, match="image 'image.png' is a link that leads outside the anchor folder"):
        load_anchor(folder)
