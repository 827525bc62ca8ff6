"""vis2mus-render end to end: real engine, real files (MIDI, PNG, WAV), real fluidsynth."""

import json
import shutil
import wave
from pathlib import Path

import mido
import numpy as np
import pytest
from PIL import Image

from export import exporter
from live.inference.graphs import default_weights
from live.music.midifile import read_midi
from live.offline.render import main
from live.texture.anchors import content_pieces, default_anchors
from live.texture.transform import adjust
from tests.support.scratch import random_weights

HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return random_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(autouse=True)
def graph_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("VIS2MUS_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))


def check_midi(path: Path, bpm: float, melody: bool) -> None:
    mid = mido.MidiFile(path)
    channels = {}
    for track in mid.tracks:
        for msg in track:
            if msg.type in ("note_on", "note_off"):
                channels.setdefault(track.name, set()).add(msg.channel)
    assert channels["accompaniment"] == {1}
    assert (channels.get("melody") == {0}) if melody else ("melody" not in channels)
    piece = read_midi(path)
    assert piece.bpm == pytest.approx(bpm, abs=0.01)
    acc = piece.tracks["accompaniment"]
    assert np.all((acc[:, 1] >= 0) & (acc[:, 1] < 128))
    bars = set((acc[:, 0] // 16).tolist())
    assert bars == set(range(8)), f"empty bars in {path.name}: {sorted(set(range(8)) - bars)}"
    opened = sum(1 for t in mid.tracks for m in t if m.type == "note_on" and m.velocity > 0)
    closed = sum(1 for t in mid.tracks for m in t if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))
    assert opened == closed


def check_wav(path: Path, bpm: float) -> None:
    with wave.open(str(path)) as w:
        seconds = w.getnframes() / w.getframerate()
        assert w.getnchannels() == 2 and w.getframerate() == 44100
    assert seconds >= 32 * 60 / bpm


def test_brightness_sweep_writes_every_file(weights, tmp_path, capsys):
    out = tmp_path / "renders"
    assert main(["--anchor", "stride", "--brightness", "-1,0,0.5", "--out", str(out), "--weights", str(weights)]) == 0
    printed = capsys.readouterr().out
    assert "[1/3] brightness -1.00" in printed and "[3/3] brightness +0.50" in printed
    anchor = default_anchors()["stride"]
    for alpha in (-1.0, 0.0, 0.5):
        stem = f"stride_b{alpha:+.2f}_c+0.00"
        check_midi(out / f"{stem}.mid", anchor.bpm, melody=False)
        roll = Image.open(out / f"{stem}_roll.png")
        assert roll.width > 500 and roll.height > 100
        picture = np.asarray(Image.open(out / f"{stem}_image.png").convert("RGB"))
        np.testing.assert_array_equal(picture, adjust(anchor.image, alpha, 0.0))
        if HAS_FLUIDSYNTH:
            check_wav(out / f"{stem}.wav", anchor.bpm)
    zero = read_midi(out / "stride_b+0.00_c+0.00.mid").tracks["accompaniment"]
    np.testing.assert_array_equal(zero[:, :3], anchor.accompaniment[:, :3])


def test_style_transfer_render_has_melody_and_style_tempo(weights, tmp_path):
    out = tmp_path / "style"
    assert main(["--anchor", "sparse_ballad", "--content", "folk_tune", "--contrast", "0.5", "--out", str(out),
                 "--weights", str(weights), "--no-wav"]) == 0
    stem = "folk_tune+sparse_ballad_b+0.00_c+0.50"
    check_midi(out / f"{stem}.mid", default_anchors()["sparse_ballad"].bpm, melody=True)
    melody = read_midi(out / f"{stem}.mid").tracks["melody"]
    assert len(melody) == len(content_pieces()["folk_tune"].melody)
    assert not (out / f"{stem}.wav").exists()
    assert main(["--anchor", "sparse_ballad", "--content", "folk_tune", "--out", str(out), "--weights", str(weights),
                 "--no-wav", "--keep-content-tempo"]) == 0
    assert read_midi(out / "folk_tune+sparse_ballad_b+0.00_c+0.00.mid").bpm == pytest.approx(104.0, abs=0.01)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--anchor", "nope"], "unknown anchor 'nope'"),
        (["--anchor", "stride", "--brightness", "0.5,nan"], "--brightness must be a finite number"),
        (["--anchor", "stride", "--contrast", "x"], "--contrast: 'x' is not a number"),
        (["--anchor", "stride", "--weights", "/nonexistent/w.pt"], "weights not found"),
        (["--brightness", "0.5"], "--anchor NAME|PATH is required"),
        (["--anchor", "stride", "--register", "60-65"], "spanning an octave"),
        (["--anchor", "stride", "--register", "low"], "--register: 'low' is not LOW-HIGH"),
        (["--feel", "/nonexistent/anchors"], "--feel: /nonexistent/anchors is not a folder"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(tmp_path, capsys, args, message):
    assert main(args + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vis2mus-render: error: ") and message in err and "\n" not in err


def test_equivariance_report_on_every_anchor(weights, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["--equivariance", "--brightness", "-1,1", "--contrast", "-1,1", "--out", str(out),
                 "--weights", str(weights)]) == 0
    report = json.loads((out / "equivariance.json").read_text())
    assert set(report["anchors"]) == set(default_anchors())
    for entry in report["anchors"].values():
        assert [(r["transform"], r["alpha"]) for r in entry["rows"]] == [
            ("brightness", -1.0), ("brightness", 1.0), ("contrast", -1.0), ("contrast", 1.0)]
        assert set(entry["baseline"]) == {"notes_per_bar", "mean_pitch", "polyphony", "onset_density", "range",
                                          "luminance", "luminance_std"}
    assert report["summary"]["brightness"]["luminance"]["verdict"] == "consistent: increases"
    assert report["summary"]["contrast"]["luminance_std"]["verdict"] == "consistent: increases"
    printed = capsys.readouterr().out
    assert "Direction across anchors" in printed and (out / "equivariance.txt").is_file()


@pytest.mark.skipif(not default_weights().is_file(), reason=f"shipped weights {default_weights()} not present yet")
@pytest.mark.skipif(exporter() is None, reason="exporting the shipped weights into the test's own cache needs torch")
def test_shipped_weights_brightness_sweep(tmp_path):
    out = tmp_path / "shipped"
    assert main(["--anchor", "arpeggios", "--brightness", "-0.8,0.8", "--contrast", "0,0.6", "--out", str(out)]) == 0
    anchor = default_anchors()["arpeggios"]
    for b in (-0.8, 0.8):
        for c in (0.0, 0.6):
            stem = f"arpeggios_b{b:+.2f}_c{c:+.2f}"
            check_midi(out / f"{stem}.mid", anchor.bpm, melody=False)
            if HAS_FLUIDSYNTH:
                check_wav(out / f"{stem}.wav", anchor.bpm)


def test_spearman_direction_known_values():
    from live.offline.equivariance import music_descriptors, spearman

    assert spearman([-1, 0, 1], [1.0, 2.0, 5.0], 2.0) == pytest.approx(1.0)
    assert spearman([-1, 0, 1, 2], [4.0, 3.0, 3.0, 1.0], 3.0) == pytest.approx(-0.9486833)
    assert spearman([-1, 0, 1], [3.0, 1.0, 3.0], 1.0) == pytest.approx(0.0)
    assert spearman([-1, 0, 1], [50.0, 50.1, 50.2], 50.0) == 0.0
    assert spearman([-1, 0, 1], [None, 2.0, 3.0], 2.0) is None
    empty = music_descriptors(np.zeros((0, 4), np.int32), 128)
    assert empty["mean_pitch"] is None and empty["notes_per_bar"] == 0.0
    notes = np.array([[0, 60, 4, 80], [0, 64, 8, 80], [16, 67, 16, 80]], np.int32)
    d = music_descriptors(notes, 32)
    assert d == {"notes_per_bar": 1.5, "mean_pitch": pytest.approx(191 / 3), "polyphony": pytest.approx(28 / 24),
                 "onset_density": 2 / 32, "range": 7.0}
