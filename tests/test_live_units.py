"""live.playback.clock, live.playback.recorder and the scheduler's music math, without MIDI hardware."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mido
import pytest

from live.music.notes import make_notes
from live.playback.clock import Clock, TempoEstimator, clamp_bpm
from live.playback.recorder import TICKS_PER_BEAT, Recorder
from live.playback.scheduler import follow_velocities, next_boundary


def test_clock_maps_beats_to_absolute_deadlines_and_keeps_position_across_tempo_changes():
    clock = Clock(120)
    assert clock.time_of(1.0) == float("inf")
    t0 = time.perf_counter()
    clock.start(beat=0.0, at=t0)
    assert clock.time_of(4.0) == pytest.approx(t0 + 2.0)
    assert clock.beat(t0 + 1.0) == pytest.approx(2.0)
    before = clock.beat()
    clock.set_bpm(60)
    after = clock.beat()
    assert after >= before and after - before < 0.01
    now = time.perf_counter()
    assert clock.time_of(clock.beat(now) + 1.0) == pytest.approx(now + 1.0, abs=1e-3)
    frozen = clock.stop()
    assert clock.beat() == frozen and clock.beat(time.perf_counter() + 10.0) == frozen


def test_clock_start_with_a_position_bumps_the_epoch():
    clock = Clock(100)
    clock.start(beat=0.0)
    epoch = clock.epoch
    clock.stop()
    clock.start()
    assert clock.epoch == epoch
    clock.start(beat=8.0)
    assert clock.epoch == epoch + 1


def test_tempo_clamped_and_nan_rejected():
    assert clamp_bpm(1000) == 300.0
    assert clamp_bpm(1) == 20.0
    with pytest.raises(ValueError):
        clamp_bpm(float("nan"))


def test_tempo_estimator_recovers_bpm_from_tick_intervals():
    est = TempoEstimator()
    bpm = None
    for i in range(48):
        bpm = est.tick(i * 60.0 / (137.0 * 24))
    assert bpm == pytest.approx(137.0, rel=1e-6)


def test_next_boundary_per_quantum():
    assert next_boundary(0, "beat") == 0
    assert next_boundary(5, "beat") == 8
    assert next_boundary(17, "bar") == 32
    assert next_boundary(33, "segment") == 64


def test_follow_velocities_takes_nearest_reference_onset():
    generated = make_notes([(0, 60, 2, 80), (7, 64, 2, 80), (30, 67, 2, 80)])
    reference = make_notes([(0, 48, 4, 40), (8, 52, 4, 90), (28, 55, 4, 110)])
    out = follow_velocities(generated, reference)
    assert out[:, 3].tolist() == [40, 90, 110]
    assert follow_velocities(generated, make_notes([]), default=70)[:, 3].tolist() == [70, 70, 70]


def test_recorder_writes_a_valid_file_at_every_flush(tmp_path):
    path = tmp_path / "rec" / "take.mid"
    rec = Recorder(path, bpm=90)
    assert mido.MidiFile(path).tracks[0][-1].type == "end_of_track"
    rec.position = 1.0
    rec.event([0x91, 60, 100])
    rec.position = 1.5
    rec.event([0x81, 60, 0])
    rec.event([0xF8])
    rec.flush()
    mid = mido.MidiFile(path)
    assert mid.ticks_per_beat == TICKS_PER_BEAT
    notes = [m for m in mid.tracks[0] if m.type in ("note_on", "note_off")]
    assert [(m.type, m.channel, m.note) for m in notes] == [("note_on", 1, 60), ("note_off", 1, 60)]
    assert notes[0].time == TICKS_PER_BEAT and notes[1].time == TICKS_PER_BEAT // 2
    assert any(m.type == "set_tempo" and round(mido.tempo2bpm(m.tempo)) == 90 for m in mid.tracks[0])
    rec.set_tempo(150)
    rec.close()
    rec.event([0x91, 62, 100])
    mid = mido.MidiFile(path)
    assert sum(m.type == "set_tempo" for m in mid.tracks[0]) == 2
    assert not any(m.type == "note_on" and m.note == 62 for m in mid.tracks[0])


def test_recording_survives_sigkill_up_to_the_last_flush(tmp_path):
    path = tmp_path / "killed.mid"
    script = (
        "import sys, time\n"
        "from live.playback.recorder import Recorder\n"
        f"rec = Recorder({str(path)!r})\n"
        "for bar in range(1000):\n"
        "    for i in range(8):\n"
        "        rec.position = bar * 4 + i * 0.5\n"
        "        rec.event([0x91, 60 + i, 90]); rec.event([0x81, 60 + i, 0])\n"
        "    rec.flush()\n"
        "    if bar in (3, 6): print('bar', bar, flush=True)\n"
        "    time.sleep(0.01)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.stdout.readline().strip() == "bar 3"
    assert proc.stdout.readline().strip() == "bar 6", "still writing when it is killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    mid = mido.MidiFile(path)
    ons = [m for m in mid.tracks[0] if m.type == "note_on"]
    assert len(ons) >= 4 * 8 and len(ons) % 8 == 0


def test_every_midi_api_the_config_accepts_is_known_to_midiout(monkeypatch):
    import rtmidi

    from live.app.config import MIDI_APIS
    from live.midiports import api_candidates

    names = {rtmidi.API_LINUX_ALSA: "alsa", rtmidi.API_UNIX_JACK: "jack", rtmidi.API_MACOSX_CORE: "coremidi",
             rtmidi.API_WINDOWS_MM: "winmm"}
    for api in MIDI_APIS[1:]:
        assert [names[a] for a in api_candidates(api)] == [api]
    compiled = rtmidi.get_compiled_api()
    monkeypatch.setenv("JACK_DEFAULT_SERVER", "anyname")
    auto = api_candidates("auto")
    assert MIDI_APIS[0] == "auto" and auto and set(auto) <= set(compiled) and len(set(auto)) == len(auto)
    assert auto[0] == rtmidi.API_UNIX_JACK, "a named JACK server puts JACK first"
    monkeypatch.delenv("JACK_DEFAULT_SERVER")
    assert sorted(api_candidates("auto")) == sorted(auto)
    with pytest.raises(ValueError):
        api_candidates("portmidi")
