import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from live.music.chords import (NOTE_NAMES, QUALITIES, ChordError, label_to_row, labels_to_rows, progression_labels,
                         progression_rows, recognize_chords, root_quality, row_to_label, symbol_to_label,
                         transpose_chord_rows)
from live.music.notes import make_notes

INVERSIONS = {"maj": ["", "/3", "/5"], "min": ["", "/b3", "/5"], "7": ["", "/3", "/5", "/b7"],
              "maj7": ["", "/3", "/5", "/7"], "min7": ["", "/5", "/b7"]}


def pop909_style_labels():
    labels = ["N"]
    for root in ["C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B"]:
        for quality in QUALITIES:
            for inversion in INVERSIONS.get(quality, [""]):
                labels.append(f"{root}:{quality}{inversion}")
    return labels


@pytest.mark.parametrize("label", pop909_style_labels())
def test_label_row_label_round_trip(label):
    row = label_to_row(label)
    back = row_to_label(row)
    assert np.array_equal(label_to_row(back), row)
    assert root_quality(back) == root_quality(label)
    assert back.partition("/")[2] == label.partition("/")[2]


def test_row_layout_has_absolute_bass():
    row = label_to_row("A:min/b3")
    assert np.flatnonzero(row[:12]).tolist() == [9]
    assert np.flatnonzero(row[12:24]).tolist() == [0, 4, 9]
    assert np.flatnonzero(row[24:]).tolist() == [0]
    assert not label_to_row("N").any()


@given(st.sampled_from(pop909_style_labels()), st.integers(-6, 5))
def test_transposition_keeps_rows_consistent(label, shift):
    row = label_to_row(label)
    moved = transpose_chord_rows(row[None], shift)[0]
    if label == "N":
        assert not moved.any()
        return
    root = int(np.argmax(row[:12]))
    expected = f"{NOTE_NAMES[(root + shift) % 12]}:{label.split(':')[1]}"
    assert np.array_equal(moved, label_to_row(expected))
    assert np.array_equal(transpose_chord_rows(moved[None], -shift)[0], row)


def test_bad_labels_raise_one_line_errors():
    for bad in ["H:maj", "C:power", "C:maj/9x"]:
        with pytest.raises(ChordError) as err:
            label_to_row(bad)
        assert "\n" not in str(err.value)


def test_progressions():
    assert progression_labels("C Am F G") == ["C:maj"] * 4 + ["A:min"] * 4 + ["F:maj"] * 4 + ["G:maj"] * 4
    assert progression_labels("C G | Am") == ["C:maj", "C:maj", "G:maj", "G:maj"] + ["A:min"] * 4
    assert progression_labels("C F G | N") [:4] == ["C:maj", "C:maj", "F:maj", "G:maj"]
    assert symbol_to_label("G/B") == "G:maj/3"
    assert symbol_to_label("F#m7") == "F#:min7"
    assert symbol_to_label("Bbmaj7") == "Bb:maj7"
    assert symbol_to_label("Eb:min") == "Eb:min"
    rows = progression_rows("C Am", 12)
    assert rows.shape == (12, 36)
    assert np.array_equal(rows[8], label_to_row("C:maj"))
    for bad in ["", "C | C D E F G", "Q7"]:
        with pytest.raises(ChordError):
            progression_labels(bad)


def test_recognition_on_composed_progression():
    labels = ["C:maj", "A:min", "F:maj", "G:7", "D:min7", "E:maj/3", "C:maj/5", "G:sus4"]
    rows = labels_to_rows(labels)
    notes = []
    for bar, row in enumerate(rows):
        pcs = np.flatnonzero(row[12:24])
        bass = int(np.argmax(row[24:]))
        notes.append((bar * 16, 36 + bass, 16))
        for beat in range(4):
            for k, pc in enumerate(pcs):
                notes.append((bar * 16 + beat * 4 + k, 60 + pc, 2))
    found = recognize_chords(make_notes(notes), 32)
    per_bar = [found[4 * i + 1] for i in range(8)]
    assert per_bar == labels
    assert recognize_chords(make_notes([]).reshape(0, 4), 4) == ["N"] * 4
