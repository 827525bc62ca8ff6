"""vis2mus-eval: metric definitions and a full run on a generated prepared file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the evaluation tests need torch (pip install -e .[train]); the runtime runs without it")

from live.music.chords import progression_rows
from live.music.notes import make_notes
from model.dataset import Segments, synthetic_file
from export.model_card import main
from model import evaluate as model_evaluate
from model.evaluate import EvalSet, chord_tone_counts, descriptors, off_chord_counts, halve_durations, monotonic_share
from model.metrics import f1_from_counts, match_counts, pattern_counts
from model.polydis import CONFIGS
from model.train import Trainer, ship

torch.set_num_threads(1)
POP909 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "pop909"


def test_note_f1_counts():
    ref = make_notes([(0, 60, 4), (0, 64, 4), (8, 67, 2)])
    est = make_notes([(0, 60, 4), (0, 64, 2), (9, 67, 2), (12, 70, 1)])
    assert match_counts(ref, est).tolist() == [2, 4, 3]
    assert match_counts(ref, est, with_duration=True).tolist() == [1, 4, 3]
    assert f1_from_counts(match_counts(ref, ref)) == 1.0
    assert pattern_counts(ref, est).tolist() == [1, 3, 2]


def test_chord_tone_ratio_counts_only_beats_with_a_chord():
    chords = progression_rows("C G", 8)
    chords[6:] = 0
    notes = make_notes([(0, 60, 1), (1, 61, 1), (16, 55, 1), (17, 62, 1), (18, 60, 1), (25, 61, 1)])
    # C chord beats 0-3: 60 in, 61 out; G chord beats 4-5: 55 and 62 in, 60 out; beat 6 has no chord
    assert chord_tone_counts(notes, chords).tolist() == [3, 5]


def test_off_chord_onsets_are_checked_against_the_other_chords():
    chords = progression_rows("C G", 8)
    other = progression_rows("A G", 8)
    other[5] = 0
    notes = make_notes([(0, 60, 1), (1, 61, 1), (2, 62, 1), (16, 60, 1), (20, 64, 1)])
    # beats 0-3, C against A: 61 (C#) is off C and in A, 62 (D) is off both; beat 4, G against G:
    # 60 is off both; beat 5 has no other chord, so 64 there is not counted
    assert off_chord_counts(notes, chords, other).tolist() == [1, 3]


def test_descriptors_and_monotonic_share():
    notes = make_notes([(0, 48, 4), (0, 60, 4), (4, 64, 4)])
    assert descriptors(notes).tolist() == [1.5, 172 / 3, 1.5, 2 / 32, 16, 0.5]
    assert np.isnan(descriptors(make_notes([]))[1])
    series = np.array([[1, 1, 3], [2, 1, 3], [3, 2, 3]], dtype=float)
    # column 0 rises, column 1 rises weakly, column 2 stays flat (no net change)
    assert monotonic_share(series) == (2 / 3, 1)
    assert monotonic_share(-series) == (2 / 3, -1)


def test_halving_durations():
    notes = make_notes([(0, 60, 4), (4, 62, 1), (8, 64, 7)])
    assert halve_durations(notes, 1.0, np.random.default_rng(0))[:, 2].tolist() == [2, 1, 4]
    assert np.array_equal(halve_durations(notes, 0.0, np.random.default_rng(0)), notes)


def test_eval_cli_on_a_generated_file(tmp_path, capsys):
    data = tmp_path / "syn.npz"
    synthetic_file(str(data), n_songs=3, segments_per_song=6, seed=1)
    trainer = Trainer(Segments(str(data)), CONFIGS["tiny"], tmp_path / "run", batch_size=4, greedy_segments=2)
    for _ in range(3):
        trainer.train_batch()
    trainer.end_epoch()
    ship(tmp_path / "run", tmp_path / "w" / "tiny.pt")
    out = tmp_path / "eval.json"
    rc = main(["--data", str(data), "--weights", str(tmp_path / "w" / "tiny.pt"), "--json", str(out),
               "--limit", "6", "--response-limit", "4", "--threads", "1", "--update-card"])
    assert rc == 0
    result = json.loads(out.read_text())
    assert result["segments"] == 6 and result["songs"] == 1
    assert set(result["disentanglement"]["transpose"]) == {str(i) for i in range(1, 13)}
    # chords are pitch classes: an octave leaves z_chd exactly where it was
    assert result["disentanglement"]["transpose"]["12"]["z_chd"] == 0.0
    assert 0.0 <= result["chord_swap"]["chord_tone_ceiling"] <= 1.0
    assert 0.0 <= result["chord_swap"]["off_chord_in_a_chance"] <= 1.0
    assert len(result["response"]["brightness"]["per_alpha"]["notes_per_bar"]) == 7
    assert {"brightness_best_monotonic", "contrast_best_monotonic"} <= set(result["targets"])
    assert "targets" in json.loads((tmp_path / "w" / "tiny.json").read_text())["evaluation"]
    rec, dd = result["reconstruction"], result["durations"]
    assert rec["length_ratio"] == pytest.approx(rec["mean_length_decoded"] / rec["mean_length_original"])
    assert 0.0 <= rec["long_note_f1"] <= 1.0 and len(dd["bit_accuracy"]) == 5
    # a length within one sixteenth includes every exact one
    assert all(b["free_exact"] <= b["free_near"] <= 1.0 for b in dd["buckets"].values())
    assert dd["free_exact"] <= dd["free_near"] <= 1.0
    # every note of the evaluated segments falls in exactly one length bucket
    segs = Segments(str(data))
    val = [segs.notes(i) for i in segs.indices(1)]
    assert sum(b["notes"] for b in dd["buckets"].values()) == sum(len(n) for n in val)
    assert result["targets"]["length_ratio"]["target"] == "0.85..1.2"
    assert "chord-tone ratio" in capsys.readouterr().out
    assert main(["--data", str(data), "--weights", str(tmp_path / "missing.pt")]) == 2
    # model/ alone (no live transforms handed in) reports parts 1-4 and says part 5 is left out
    bare = tmp_path / "bare.json"
    assert model_evaluate.main(["--data", str(data), "--weights", str(tmp_path / "w" / "tiny.pt"), "--json", str(bare),
                                "--limit", "4", "--threads", "1"]) == 0
    assert "response" not in json.loads(bare.read_text()) and "5. response: left out" in capsys.readouterr().out


@pytest.mark.pop909
@pytest.mark.skipif(not POP909.is_dir(), reason="POP909 not available at ../shared/data/pop909")
def test_eval_set_reads_pop909_songs():
    data = EvalSet.from_pop909(str(POP909), songs=[1])
    assert len(data) > 20 and set(data.songs) == {1}
    assert data.chords.shape == (len(data), 8, 36)
    assert all(len(n) and n[:, 0].max() < 32 for n in data.notes)
