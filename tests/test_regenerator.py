"""live.playback.scheduler.Regenerator pacing: a fader flood costs one render per boundary, and the
first change after a quiet spell is rendered at once (the real send thread, clock, anchors and
the server's anchor renderer; MIDI goes into a recording only)."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest

from live.app.renderer import Renderer, panic_key, render_key
from live.control.params import State
from live.playback.clock import Clock
from live.playback.midiout import MidiOut
from live.playback.recorder import Recorder
from live.playback.scheduler import Regenerator, Scheduler
from live.texture.anchors import content_pieces, default_anchors
from tests.support.polling import wait_until

BPM = 240.0


@pytest.fixture
def rig(tmp_path, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mabsent{os.getpid()}")  # no backend: recording only
    anchors = default_anchors()
    renderer = Renderer(anchors, content_pieces())
    state = State(anchor="arpeggios", tempo=BPM)
    recorder = Recorder(tmp_path / "take.mid", bpm=BPM)
    midi = MidiOut(api="jack", recorder=recorder)
    clock = Clock(BPM)
    _, sections = renderer(state, list(range(renderer.count(state))))
    scheduler = Scheduler(clock, midi, sections, recorder=recorder)
    regenerator = Regenerator(scheduler, renderer, renderer.count, render_key, panic_key)
    regenerator.last_ms = 5.0
    scheduler.start()
    clock.start(beat=0.0)
    regenerator.start(state)
    yield scheduler, regenerator, state, renderer.count(state)
    regenerator.stop()
    scheduler.shutdown()
    midi.close()


def test_a_flood_of_changes_costs_one_render_per_boundary(rig):
    scheduler, regenerator, state, n_segments = rig
    start_step = scheduler.next_step
    t0 = time.monotonic()
    sent = 0
    while time.monotonic() - t0 < 2.0:  # 8 beats at 240 BPM, a change every millisecond
        sent += 1
        regenerator.submit(replace(state, alpha_b=(sent % 200) / 200))
        time.sleep(0.001)
    beats = (scheduler.next_step - start_step) / 4
    assert sent > 500 and beats >= 6
    firsts = regenerator.renders / (n_segments - 1)  # each first render (2 segments) brings n - 2 more
    assert firsts <= beats + 2, f"{regenerator.renders} renders for {sent} changes over {beats:g} beats"


def test_a_change_after_a_quiet_spell_is_rendered_at_once(rig):
    scheduler, regenerator, state, _ = rig
    time.sleep(0.3)  # the quiet spell under test: no change submitted for more than a beat
    before = regenerator.renders
    regenerator.submit(replace(state, alpha_b=0.5))
    beat_s = 60.0 / BPM
    assert wait_until(lambda: regenerator.renders > before, beat_s / 2), "the render waited"
