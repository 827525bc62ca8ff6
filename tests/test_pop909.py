import os

import mido
import numpy as np
import pytest

from live.music.chords import label_to_row, recognize_chords, root_quality, row_to_label
from model.data_cli import main as data_main
from model.pop909 import load_prepared, read_song, segment_notes, song_folders, song_segments, split_songs

POP909 = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "pop909")


def write_song(folder, number, n_bars=6, beat_s=0.5, jitter=0.0, meter=4, chords=("C:maj", "A:min", "F:maj", "G:7")):
    """A generated POP909-style song: MIDI tracks in seconds, beat and chord tables."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(number)
    n_beats = n_bars * meter
    beats = np.cumsum(np.r_[0.3, np.full(n_beats - 1, beat_s) + rng.uniform(-jitter, jitter, n_beats - 1)])
    with open(os.path.join(folder, "beat_midi.txt"), "w") as f:
        for i, t in enumerate(beats):
            f.write(f"{t} {float(i % 2 == 0 if meter == 4 else i % 3 == 0)} {float(i % meter == 0)}\n")
    with open(os.path.join(folder, "chord_midi.txt"), "w") as f:
        for bar in range(n_bars):
            start = beats[bar * meter]
            end = beats[bar * meter + meter] if bar * meter + meter < n_beats else beats[-1] + beat_s
            f.write(f"{start:.6f}\t{end:.6f}\t{chords[bar % len(chords)]}\n")
    mid = mido.MidiFile(ticks_per_beat=480)
    tempo = mido.bpm2tempo(100)
    sec_to_tick = lambda s: int(round(mido.second2tick(s, 480, tempo)))
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    mid.tracks.append(meta)
    def sub(beat, j):
        b = int(beat)
        return beats[b] + (j / 4) * (beats[b + 1] - beats[b] if b + 1 < n_beats else beat_s)
    for name, notes in (("MELODY", [(bar * meter, 0, 72 + bar % 3, 2) for bar in range(n_bars)]),
                        ("BRIDGE", []),
                        ("PIANO", [(bar * meter + k, 0, p, 4) for bar in range(n_bars)
                                   for k in range(meter) for p in (48, 55, 64)])):
        events = []
        for beat, j, pitch, length in notes:
            start = sub(beat, j)
            end = sub(beat + length // 4, length % 4) if beat + length // 4 < n_beats else start + beat_s * length / 4
            events += [(sec_to_tick(start), 1, pitch), (sec_to_tick(end) - 1, 0, pitch)]
        track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
        now = 0
        for tick, on, pitch in sorted(events):
            track.append(mido.Message("note_on" if on else "note_off", note=pitch, velocity=80 if on else 0,
                                      time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(os.path.join(folder, f"{os.path.basename(folder)}.mid"))


def test_read_song_quantises_beat_synchronously(tmp_path):
    write_song(tmp_path / "001", 1, jitter=0.04)
    song = read_song(str(tmp_path / "001"))
    assert song.n_beats == 24
    piano_onsets = np.unique(song.accompaniment[:, 0])
    assert piano_onsets.tolist() == list(range(0, 96, 4))
    assert (song.accompaniment[:, 2] == 4).all()
    segments = song_segments(song)
    assert [s["bar"] for s in segments] == [0, 1, 2, 3, 4]
    first = segments[0]
    assert first["accompaniment"].shape == (24, 4)
    assert [row_to_label(r) for r in first["chords"]] == ["C:maj"] * 4 + ["A:min"] * 4
    assert first["melody"][:, :3].tolist() == [[0, 72, 2], [16, 73, 2]]


def test_prepare_writes_segments_split_and_skips_bad_songs(tmp_path, capsys):
    root = tmp_path / "pop"
    for n in range(1, 11):
        write_song(root / f"{n:03d}", n)
    write_song(root / "011", 11, meter=3)
    os.makedirs(root / "012")
    (root / "012" / "012.mid").write_bytes(b"junk")
    out = tmp_path / "prep.npz"
    assert data_main(["prepare", "--pop909", str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "skipped song 011: not in duple meter" in printed.err
    assert "skipped song 012: missing beat_midi.txt" in printed.err
    data = load_prepared(str(out))
    assert data["meta"]["segments"] == 50 and data["chords"].shape == (50, 8, 36)
    assert set(data["split"].tolist()) == {0, 1}
    for song in np.unique(data["song"]):
        assert len(set(data["split"][data["song"] == song].tolist())) == 1
    assert segment_notes(data, 0)[:, 0].tolist()[:3] == [0, 0, 0]
    assert np.array_equal(data["chords"][0, 0], label_to_row("C:maj"))


def test_split_is_seeded_and_song_level():
    numbers = list(range(1, 910))
    assert split_songs(numbers) == split_songs(list(reversed(numbers)))
    assert len(split_songs(numbers)) == 91
    assert split_songs(numbers) != split_songs(numbers, seed=1)


@pytest.mark.pop909
@pytest.mark.skipif(not os.path.isdir(POP909), reason="POP909 not found at ../shared/data/pop909")
def test_real_songs_read_and_recognition_agrees():
    folders = song_folders(POP909)[:6]
    agree = total = 0
    for folder in folders:
        song = read_song(folder)
        segments = song_segments(song)
        assert len(segments) > 40
        labels = recognize_chords(song.accompaniment, song.n_beats)
        for guess, row in zip(labels, song.chords):
            if row.any():
                total += 1
                agree += root_quality(guess) == root_quality(row_to_label(row))
    assert agree / total > 0.7


def test_prepare_writes_exactly_the_out_path_given(tmp_path, capsys):
    root = tmp_path / "pop"
    for n in range(1, 4):
        write_song(root / f"{n:03d}", n)
    out = tmp_path / "data.out"
    assert data_main(["prepare", "--pop909", str(root), "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.out", "pop"]
    assert load_prepared(str(out))["meta"]["segments"] == 15
    assert f"wrote {out}" in capsys.readouterr().out


def test_prepare_refuses_an_unwritable_out_before_the_work(tmp_path, capsys):
    root = tmp_path / "pop"
    write_song(root / "001", 1)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert data_main(["prepare", "--pop909", str(root), "--out", str(blocker / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write --out") and "songs:" not in err
    assert data_main(["prepare", "--pop909", str(root), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
