"""live.control.params: validation, clamping, subscriptions, presets, actions and thread safety."""

from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.control.params import Params, Preset, State

ANCHORS = ["rain", "sunset", "city"]
CONTENTS = ["cat", "tree"]


def make(**kwargs) -> Params:
    presets = {1: Preset("sunset", alpha_b=0.5, alpha_c=-0.25, tempo=96),
               2: Preset("city", content="cat", alpha_b=-0.3)}
    return Params(ANCHORS, CONTENTS, presets, **kwargs)


def test_defaults_start_on_the_first_anchor():
    state = make().snapshot()
    assert state.anchor == "rain"
    assert (state.alpha_b, state.alpha_c, state.content, state.chords) == (0.0, 0.0, None, None)
    assert state.source == "osc" and state.quantum == "beat"


@pytest.mark.parametrize("call, message", [
    (lambda p: p.set_brightness(math.nan), "finite"),
    (lambda p: p.set_contrast(math.inf), "finite"),
    (lambda p: p.set_tempo("fast"), "number"),
    (lambda p: p.set_brightness(True), "number"),
    (lambda p: p.set_anchor("nowhere"), "unknown anchor"),
    (lambda p: p.set_anchor(3), "out of range"),
    (lambda p: p.set_style("dog", "rain"), "unknown content"),
    (lambda p: p.set_style("cat", "nowhere"), "unknown anchor"),
    (lambda p: p.set_quantum("phrase"), "quantum"),
    (lambda p: p.set_source("midi"), "source"),
    (lambda p: p.set_chords("C Hm F"), "cannot read chord"),
    (lambda p: p.set_chords("C D E F G | A"), "a bar needs"),
    (lambda p: p.set_chords(5), "text"),
    (lambda p: p.recall(9), "no preset 9"),
    (lambda p: p.recall(1.0), "integer"),
    (lambda p: p.set_velocity(math.nan), "finite"),
])
def test_invalid_input_raises_one_line_and_changes_nothing(call, message):
    params = make()
    seen = []
    params.subscribe(lambda state, changed: seen.append(changed))
    before = params.snapshot()
    with pytest.raises(ValueError) as error:
        call(params)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert params.snapshot() == before
    assert seen == []


def test_continuous_values_are_clamped_with_a_note():
    params = make()
    update = params.set_brightness(1.7)
    assert update.state.alpha_b == 1.0 and "clamped to 1" in update.note
    assert params.set_tempo(5).state.tempo == 20.0
    assert params.set_tempo(400).state.tempo == 300.0
    assert params.set_velocity(0).state.velocity == 1
    assert params.set_velocity(300.4).state.velocity == 127
    assert params.set_contrast(-0.5).note is None


def test_subscribers_get_the_snapshot_and_the_changed_fields():
    params = make()
    seen: list[tuple[State, frozenset]] = []
    unsubscribe = params.subscribe(lambda state, changed: seen.append((state, changed)))
    params.set_brightness(0.25)
    params.set_brightness(0.25)
    params.set_anchor(1)
    params.set_chords("  C   Am F G ")
    assert [changed for _, changed in seen] == [{"alpha_b"}, {"anchor"}, {"chords"}]
    assert seen[1][0].anchor == "sunset"
    assert seen[2][0].chords == "C Am F G"
    unsubscribe()
    params.set_brightness(-0.25)
    assert len(seen) == 3


def test_a_failing_subscriber_does_not_stop_the_others():
    params = make()
    seen = []

    def broken(state, changed):
        raise RuntimeError("boom")

    params.subscribe(broken)
    params.subscribe(lambda state, changed: seen.append(changed))
    params.set_contrast(0.5)
    assert seen == [{"alpha_c"}]


def test_camera_writes_only_while_the_camera_steers():
    params = make()
    assert params.set_alpha(0.4, 0.2, source="camera") is None
    assert params.snapshot().alpha_b == 0.0
    params.set_source("camera")
    update = params.set_alpha(0.4, 0.2, source="camera")
    assert update is not None and update.changed == {"alpha_b", "alpha_c"}
    assert (params.snapshot().alpha_b, params.snapshot().alpha_c) == (0.4, 0.2)


def test_style_mode_and_presets():
    params = make()
    params.set_style("tree", "city")
    assert (params.snapshot().content, params.snapshot().anchor) == ("tree", "city")
    params.style_off()
    assert params.snapshot().content is None
    state = params.recall(1).state
    assert (state.anchor, state.content, state.alpha_b, state.alpha_c, state.tempo, state.preset) == \
        ("sunset", None, 0.5, -0.25, 96.0, 1)
    state = params.recall(2).state
    assert (state.anchor, state.content, state.alpha_b, state.tempo) == ("city", "cat", -0.3, 96.0)


@pytest.mark.parametrize("presets, message", [
    ({1: Preset("nowhere")}, "unknown anchor"),
    ({1: Preset("rain", content="dog")}, "unknown content"),
    ({1: Preset("rain", alpha_b=2.0)}, "out of range"),
    ({1: Preset("rain", tempo=math.nan)}, "finite"),
    ({200: Preset("rain")}, "out of range"),
])
def test_bad_presets_are_refused_at_start(presets, message):
    with pytest.raises(ValueError, match=message):
        Params(ANCHORS, CONTENTS, presets)


def test_initial_state_is_validated():
    with pytest.raises(ValueError, match="unknown anchor"):
        Params(ANCHORS, initial=State(anchor="nowhere"))
    state = Params(ANCHORS, initial=State(anchor="city", alpha_b=4.0, chords="C G")).snapshot()
    assert (state.anchor, state.alpha_b, state.chords) == ("city", 1.0, "C G")


def test_actions_reach_their_callbacks_and_transport_sets_playing():
    params = make()
    fired = []
    for name in ("play", "stop", "panic", "state"):
        params.on_action(name, lambda state, name=name: fired.append((name, state.playing)))
    params.stop()
    params.panic()
    params.play()
    params.query()
    assert fired == [("stop", False), ("panic", False), ("play", True), ("state", True)]
    with pytest.raises(ValueError, match="unknown action"):
        params.on_action("rewind", lambda state: None)


def test_concurrent_writers_never_expose_a_torn_state():
    params = make()
    params.set_source("camera")
    torn = []
    params.subscribe(lambda state, changed: torn.append(state) if state.alpha_b != -state.alpha_c else None)

    def writer(sign: float) -> None:
        for i in range(500):
            params.set_alpha(sign * i / 500, -sign * i / 500, source="camera")

    threads = [threading.Thread(target=writer, args=(s,)) for s in (1.0, -1.0, 0.5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert torn == []
    final = params.snapshot()
    assert final.alpha_b == -final.alpha_c


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_is_either_refused_or_lands_in_range(value):
    params = make()
    try:
        state = params.set_brightness(value).state
    except ValueError:
        assert not math.isfinite(value)
        return
    assert -1.0 <= state.alpha_b <= 1.0
