import mido
import numpy as np
import pytest

from live.music.midifile import MidiFormatError, read_midi, write_midi
from live.music.notes import make_notes


def test_file_round_trip_is_exact(tmp_path):
    piano = make_notes([(0, 48, 16, 70), (0, 60, 4, 90), (4, 64, 4, 91), (8, 67, 8, 92), (31, 72, 33, 50)])
    melody = make_notes([(0, 76, 6, 100), (6, 74, 2, 100), (16, 72, 16, 100)])
    path = tmp_path / "a.mid"
    write_midi(path, [("MELODY", 0, melody), ("PIANO", 1, piano)], bpm=96)
    piece = read_midi(path)
    assert np.array_equal(piece.tracks["PIANO"], piano)
    assert np.array_equal(piece.tracks["MELODY"], melody)
    assert piece.bpm == pytest.approx(96, abs=1e-3)
    assert piece.n_steps == 64 and piece.n_bars == 4
    write_midi(tmp_path / "b.mid", [(n, c, piece.tracks[n]) for n, c in (("MELODY", 0), ("PIANO", 1))], piece.bpm)
    assert read_midi(tmp_path / "b.mid").tracks["PIANO"].tolist() == piano.tolist()


def test_tempo_changes_do_not_move_notes(tmp_path):
    mid = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack()
    track += [mido.MetaMessage("set_tempo", tempo=600000, time=0),
              mido.Message("note_on", note=60, velocity=80, time=0),
              mido.MetaMessage("set_tempo", tempo=300000, time=48),
              mido.Message("note_off", note=60, velocity=0, time=48),
              mido.Message("note_on", note=62, velocity=80, time=26),
              mido.Message("note_off", note=62, velocity=0, time=46)]
    mid.tracks.append(track)
    mid.save(tmp_path / "t.mid")
    piece = read_midi(tmp_path / "t.mid")
    assert piece.notes()[:, :3].tolist() == [[0, 60, 4], [5, 62, 2]]
    assert piece.bpm == pytest.approx(100)


def test_rejects_non_4_4_empty_corrupt_and_missing(tmp_path):
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    track += [mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0),
              mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=480)]
    mid.tracks.append(track)
    mid.save(tmp_path / "waltz.mid")
    empty = mido.MidiFile()
    empty.tracks.append(mido.MidiTrack())
    empty.save(tmp_path / "empty.mid")
    (tmp_path / "junk.mid").write_bytes(b"RIFF\x00\x01not midi at all")
    (tmp_path / "cut.mid").write_bytes((tmp_path / "waltz.mid").read_bytes()[:20])
    cases = {"waltz.mid": "time signature 3/4", "empty.mid": "contains no notes", "junk.mid": "not a readable MIDI",
             "cut.mid": "not a readable MIDI", "none.mid": "no such file"}
    for name, reason in cases.items():
        with pytest.raises(MidiFormatError) as err:
            read_midi(tmp_path / name)
        message = str(err.value)
        assert name in message and reason in message and "\n" not in message


def test_two_four_is_accepted(tmp_path):
    mid = mido.MidiFile()
    track = mido.MidiTrack()
    track += [mido.MetaMessage("time_signature", numerator=2, denominator=4, time=0),
              mido.Message("note_on", note=60, velocity=80, time=0), mido.Message("note_off", note=60, time=480)]
    mid.tracks.append(track)
    mid.save(tmp_path / "march.mid")
    assert read_midi(tmp_path / "march.mid").n_steps == 16
