"""live.playback.midiout + live.playback.scheduler against a real JACK server and a JACK MIDI peer."""

from __future__ import annotations

import logging
import os
import time

import mido
import numpy as np
import pytest

from live.music.notes import ACCOMPANIMENT_CHANNEL, Segment, make_notes
from live.playback.clock import Clock
from live.playback.midiout import MidiOut
from live.playback.recorder import Recorder
from live.playback.scheduler import Scheduler
from tests.support.jackrig import JackServer, Peer, jackd_available
from tests.support.polling import wait_until

pytestmark = [pytest.mark.jack,
              pytest.mark.skipif(not jackd_available(), reason="jackd not installed (apt-get install jackd2)")]


@pytest.fixture
def jack():
    with JackServer(f"v2mlive{os.getpid()}") as server:
        yield server


def pattern(pitches: list[int], every: int = 4, length: int = 2) -> Segment:
    """A segment with a note every ``every`` steps cycling through ``pitches``."""
    rows = [(onset, pitches[i % len(pitches)], length) for i, onset in enumerate(range(0, 32, every))]
    return Segment(make_notes(rows), make_notes([]))


def wait_steps(scheduler: Scheduler, step: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while scheduler.next_step < step:
        assert time.monotonic() < deadline, f"send thread stuck at step {scheduler.next_step}"
        time.sleep(0.01)


def wait_notes(peer: Peer, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(peer.note_ons()) < count:
        assert time.monotonic() < deadline, f"only {len(peer.note_ons())} note-ons arrived"
        time.sleep(0.02)


def test_stream_arrives_at_the_set_tempo_and_every_note_on_has_its_note_off(jack, tmp_path):
    peer = Peer("peer")
    rec = Recorder(tmp_path / "take.mid", bpm=150)
    midi = MidiOut(api="jack", port=peer.port, recorder=rec)
    assert midi.connected, midi.description
    clock = Clock(150)
    sch = Scheduler(clock, midi, [pattern([60, 64, 67]), pattern([62, 65, 69], length=6)], recorder=rec)
    sch.start()
    clock.start(beat=0.0)
    wait_steps(sch, 64 + 5)
    sch.shutdown()
    rec.close()
    assert wait_until(lambda: peer.held() == set(), 3), "the last note-offs reach the peer"
    ons = peer.note_ons()
    assert len(ons) >= 16
    times = np.array([t for t, *_ in ons])
    intervals = np.diff(times)
    assert np.median(intervals) == pytest.approx(60.0 / 150, abs=0.01)
    assert all(ch == ACCOMPANIMENT_CHANNEL for _, ch, _, _ in ons)
    assert peer.held() == set()
    assert midi.open_notes() == []
    mid = mido.MidiFile(tmp_path / "take.mid")
    recorded = [m for m in mid.tracks[0] if m.type == "note_on" and m.velocity > 0]
    assert len(recorded) == len(ons)
    peer.close()


def test_closing_repeats_the_last_panic_to_the_port_but_records_it_once(jack, tmp_path):
    peer = Peer("peer")
    rec = Recorder(tmp_path / "take.mid", bpm=120)
    midi = MidiOut(api="jack", port=peer.port, recorder=rec)
    assert midi.connected, midi.description
    for pitch in (48, 55, 64):
        midi.note_on(ACCOMPANIMENT_CHANNEL, pitch, 90)
    assert midi.panic() == 3  # what the send thread's shutdown does before the port closes
    midi.close()
    rec.close()

    def offs(pitch: int) -> int:
        return sum(len(m) == 3 and m[0] == 0x80 | ACCOMPANIMENT_CHANNEL and m[1] == pitch
                   for _, m in peer.snapshot())

    assert wait_until(lambda: all(offs(p) == 2 for p in (48, 55, 64)), 3), peer.snapshot()
    cc123 = [m for _, m in peer.snapshot() if len(m) == 3 and m[0] & 0xF0 == 0xB0 and m[1] == 123]
    assert len(cc123) >= 2
    recorded = [m for m in mido.MidiFile(tmp_path / "take.mid").tracks[0] if m.type == "note_off"]
    assert sorted(m.note for m in recorded) == [48, 55, 64]
    peer.close()


def test_splice_lands_on_the_next_beat_and_cuts_sounding_notes(jack):
    peer = Peer("peer")
    midi = MidiOut(api="jack", port=peer.port)
    clock = Clock(240)
    long_notes = Segment(make_notes([(0, 50, 32), (8, 52, 24), (16, 54, 16)]), make_notes([]))
    sch = Scheduler(clock, midi, [long_notes], quantum="beat", max_note_steps=64)
    sch.start()
    clock.start(beat=0.0)
    wait_steps(sch, 34 + 1)
    splice = sch.install({0: pattern([72, 74])})
    assert splice % 4 == 0 and splice >= 34
    wait_steps(sch, splice + 9)
    sch.shutdown()
    assert wait_until(lambda: peer.held() == set(), 3), "shutdown closes every note"
    messages = peer.snapshot()
    splice_time = clock.time_of(splice / 4)
    old_after = [m for t, m in messages if m[0] & 0xF0 == 0x90 and m[1] in (50, 52, 54) and t > splice_time + 0.003]
    new_before = [m for t, m in messages if m[0] & 0xF0 == 0x90 and m[1] in (72, 74) and t < splice_time - 0.003]
    assert old_after == [] and new_before == []
    offs_at_splice = [m[1] for t, m in messages
                      if m[0] & 0xF0 == 0x80 and abs(t - splice_time) < 0.02 and m[1] in (50, 52, 54)]
    assert offs_at_splice, "notes sounding across the splice must end at the splice"
    peer.close()


def test_peer_killed_and_restarted_stream_resumes(jack):
    peer = Peer("peer")
    midi = MidiOut(api="jack", port=peer.port)
    clock = Clock(240)
    sch = Scheduler(clock, midi, [pattern([60, 62])])
    sch.start()
    clock.start(beat=0.0)
    wait_notes(peer, 1)
    peer.close()
    midi.check()
    assert midi.connected, "one listing without the peer is not enough to drop it"
    midi.check()
    assert not midi.connected
    peer = Peer("peer")
    midi.check()
    assert midi.connected
    wait_notes(peer, 3)
    sch.shutdown()
    peer.close()


def test_jack_server_gone_keeps_recording_and_reconnects_when_it_returns(tmp_path):
    name = f"v2mgone{os.getpid()}"
    rec = Recorder(tmp_path / "gone.mid")
    with JackServer(name):
        midi = MidiOut(api="jack", recorder=rec)
        assert midi.connected
        midi.note_on(1, 60, 90)
    midi.check()
    assert not midi.connected and "lost" in midi.description
    midi.note_on(1, 62, 90)
    midi.note_off(1, 62)
    with JackServer(name):
        midi.check()
        assert midi.connected
        midi.close()
    rec.close()
    notes = [(m.type, m.note) for m in mido.MidiFile(tmp_path / "gone.mid").tracks[0] if m.type.startswith("note")]
    assert notes == [("note_on", 60), ("note_off", 60), ("note_on", 62), ("note_off", 62)]


def test_no_backend_says_how_to_fix_and_plays_into_the_recording(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mnone{os.getpid()}")
    rec = Recorder(tmp_path / "none.mid")
    with caplog.at_level(logging.WARNING, logger="live.playback.midiout"):
        midi = MidiOut(api="jack", recorder=rec)
    lines = [r.getMessage() for r in caplog.records if r.name == "live.playback.midiout"]
    assert not midi.connected
    assert len(lines) == 1 and "JACK" in lines[0] and "recording" in lines[0]
    midi.note_on(1, 60, 90)
    assert midi.panic() == 1
    rec.close()
    types = [m.type for m in mido.MidiFile(tmp_path / "none.mid").tracks[0]]
    assert "note_on" in types and "note_off" in types and "control_change" in types
