"""Beat-quantised playback of a looping accompaniment: the send thread and the inference worker.

Time is counted in sixteenth steps from beat 0 (step ``s`` is beat ``s / 4``); a segment is 32
steps (2 bars). The loop plays ``material[segment % len(material)]``; each entry is a ``Segment``
with an accompaniment and a melody note list ``(N, 4)`` (onsets 0..31).

- ``Scheduler`` owns the **send thread**. It waits for each step's absolute deadline from the
  ``Clock`` (sleep, then a short spin), applies pending splices, sends the due note-offs, then the
  step's note-ons, and (with ``clock_out``) 24 ppqn MIDI clock. It never waits on inference.
- ``Regenerator`` owns the **inference worker**. When a control changes it renders the segment
  playing at the expected splice and the next one, hands them to ``Scheduler.install`` (they land
  at the next quantum boundary: beat, bar or segment), then renders the rest of the loop. The first
  change after a quiet spell is rendered at once; while a render already lands at the coming
  boundary, the next one starts as late as it can and still reach the boundary after (the slowest
  recent render times ``RENDER_SAFETY`` plus ``RENDER_MARGIN_S`` before it), taking the newest
  state then: a fader flood costs one render per boundary, not one render after another.

At a splice every sounding note ends at the boundary step, before that step's note-ons, so there
is no gap, no doubled key and no note left hanging. A note is never longer than ``max_note_steps``.
Velocity: a note's own velocity column when ``follow_velocity`` is set, else the live
``velocity`` attribute (set from the performance state, so it changes without re-rendering).
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from live.music.notes import (ACCOMPANIMENT_CHANNEL, BEATS_PER_BAR, DURATION, MELODY_CHANNEL, ONSET, PITCH, STEPS,
                              STEPS_PER_BAR, STEPS_PER_BEAT, VELOCITY, Segment)
from live.playback.clock import MIDI_START, MIDI_STOP, MIDI_TICK, PPQN

log = logging.getLogger(__name__)

TICKS_PER_STEP = PPQN // STEPS_PER_BEAT
QUANTUM_STEPS = {"beat": STEPS_PER_BEAT, "bar": STEPS_PER_BAR, "segment": STEPS}
SPIN_S = 0.0012
MAX_SLEEP_S = 0.01
LATE_S = 0.002
VERY_LATE_S = 0.010
SKIP_S = 0.5
RT_PRIORITY = 10
RENDER_SAFETY = 2.0
RENDER_MARGIN_S = 0.05
RECENT_RENDERS = 8


def follow_velocities(notes: np.ndarray, reference: np.ndarray, default: int = 80) -> np.ndarray:
    """Give ``notes`` ``(N, 4)`` the velocity of the nearest-onset note of ``reference`` ``(M, 4)``.

    Used to let generated notes follow the anchor's dynamics; ``default`` when the reference is empty.
    """
    out = notes.copy()
    if len(out) == 0:
        return out
    if len(reference) == 0:
        out[:, VELOCITY] = default
        return out
    distance = np.abs(out[:, ONSET][:, None] - reference[:, ONSET][None, :])
    out[:, VELOCITY] = reference[np.argmin(distance, axis=1), VELOCITY]
    return out


def next_boundary(step: int, quantum: str) -> int:
    """The first step ``>= step`` on a ``quantum`` boundary (``beat``, ``bar`` or ``segment``)."""
    size = QUANTUM_STEPS[quantum]
    return -(-step // size) * size


@dataclass
class _Install:
    boundary: int
    sections: dict[int, Segment]
    n_segments: int
    panic: bool


class Scheduler:
    """The send thread; see the module docstring.

    ``midi`` is a ``live.playback.midiout.MidiOut``, ``recorder`` a ``live.playback.recorder.Recorder`` or ``None``.
    ``material`` is the initial loop (list of ``Segment``). ``stats`` holds the timing figures:
    ``lateness`` (seconds after each step deadline, the last 10 000), ``late`` (count over
    ``LATE_S``), ``very_late`` (over ``VERY_LATE_S``), ``worst`` ``(seconds, step)``, ``steps``. ``beats`` is a queue of ``(bar, beat)`` put at every beat.
    """

    def __init__(self, clock, midi, material: list[Segment], recorder=None, quantum: str = "beat",
                 max_note_steps: int = 16, velocity: int = 80, follow_velocity: bool = False,
                 clock_out: bool = False) -> None:
        if not material:
            raise ValueError("the loop needs at least one section")
        self.clock = clock
        self.midi = midi
        self.recorder = recorder
        self.quantum = quantum
        self.max_note_steps = max(1, int(max_note_steps))
        self.velocity = velocity
        self.follow_velocity = follow_velocity
        self.clock_out = clock_out
        self.beats: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self.lateness: deque[float] = deque(maxlen=10_000)
        self.late = 0
        self.very_late = 0
        self.worst = (0.0, -1)
        self.steps = 0
        self._material = list(material)
        self._lock = threading.Lock()
        self._installs: list[_Install] = []
        self._offs: list[tuple[int, int, int, int, int]] = []
        self._seq = 0
        self._next_step = 0
        self._epoch = -1
        self._running = False
        self._thread: threading.Thread | None = None
        self.priority = "not started"

    # Control (any thread)

    @property
    def next_step(self) -> int:
        """The first step not yet played."""
        return self._next_step

    @property
    def n_segments(self) -> int:
        return len(self._material)

    def segment_at(self, step: int) -> int:
        """Loop index of the segment that plays at ``step``."""
        return (step // STEPS) % len(self._material)

    def install(self, sections: dict[int, Segment], n_segments: int | None = None, panic: bool = False,
                quantum: str | None = None) -> int:
        """Queue new sections for loop indices; returns the step where they take over.

        With ``n_segments`` different from the loop's length (an anchor switch) the loop is rebuilt
        at that length, keeping indices not given. Segments that do not play yet are swapped at the
        next step; if the segment playing then is among them, at the next ``quantum`` boundary
        (the scheduler's own quantum by default), where sounding notes end.
        """
        with self._lock:
            step = self._next_step
            length = n_segments or len(self._material)
            if panic or n_segments not in (None, len(self._material)) or (step // STEPS) % length in sections:
                step = next_boundary(step, quantum or self.quantum)
            self._installs.append(_Install(step, dict(sections), length, panic))
            return step

    def start(self) -> None:
        """Start the send thread (the clock decides when music runs)."""
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._run, name="vis2mus-send", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        """Stop the send thread, then all notes off plus CC 123."""
        self._running = False
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.panic()

    def panic(self) -> int:
        """All notes off now (note-offs for held keys, CC 123); returns how many notes were held.

        Safe from any thread: the note-offs still queued for those notes carry stale tokens, so the
        send thread drops them instead of cutting a later note on the same key.
        """
        return self.midi.panic(channels=(MELODY_CHANNEL, ACCOMPANIMENT_CHANNEL))

    def transport(self, kind: str) -> None:
        """Send MIDI Start or Stop when clock output is on (``kind`` ``start``/``stop``)."""
        if self.clock_out:
            self.midi.send([MIDI_START if kind == "start" else MIDI_STOP])

    # The send thread

    def _wait_until(self, target: Callable[[], float]) -> float | None:
        """Sleep, then spin, until ``target()`` (re-read for tempo changes); ``None`` if stopped."""
        while self._running:
            deadline = target()
            if math.isinf(deadline):
                time.sleep(MAX_SLEEP_S)
                return None
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return deadline
            if remaining > SPIN_S:
                time.sleep(min(remaining - SPIN_S, MAX_SLEEP_S))
        return None

    def _raise_priority(self) -> None:
        """Best effort: SCHED_FIFO for the send thread (needs RLIMIT_RTPRIO or CAP_SYS_NICE)."""
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
            self.priority = f"SCHED_FIFO {RT_PRIORITY}"
        except (AttributeError, OSError) as exc:
            self.priority = f"normal ({getattr(exc, 'strerror', None) or 'no SCHED_FIFO here'})"

    def _run(self) -> None:
        self._raise_priority()
        tick = 0
        while self._running:
            if self.clock.epoch != self._epoch:
                self._relocate()
                tick = self._next_step * TICKS_PER_STEP
            deadline = self._wait_until(lambda: self.clock.time_of(tick / PPQN))
            if deadline is None or self.clock.epoch != self._epoch:
                continue
            late = time.perf_counter() - deadline
            if late > SKIP_S:
                self._skip()
                tick = self._next_step * TICKS_PER_STEP
                continue
            if self.clock_out:
                self.midi.send([MIDI_TICK])
            if tick % TICKS_PER_STEP == 0:
                try:
                    self._play_step(tick // TICKS_PER_STEP)
                except Exception as exc:  # the music goes on; report the step that failed
                    log.warning(f"step {tick // TICKS_PER_STEP} failed: {exc}")
                    with self._lock:
                        self._next_step = tick // TICKS_PER_STEP + 1
                self.lateness.append(late)
                self.late += late > LATE_S
                self.very_late += late > VERY_LATE_S
                if late > self.worst[0]:
                    self.worst = (late, tick // TICKS_PER_STEP)
                self.steps += 1
            tick += 1 if self.clock_out else TICKS_PER_STEP

    def _relocate(self) -> None:
        """The clock was (re)started at a new position: close notes and continue from it."""
        with self._lock:
            self._offs.clear()
        self.midi.all_off()
        with self._lock:
            self._epoch = self.clock.epoch
            self._next_step = max(0, math.ceil(self.clock.beat() * STEPS_PER_BEAT - 1e-9))

    def _skip(self) -> None:
        """Far behind (the process was suspended): close notes and jump to the present."""
        log.warning(f"send thread fell behind by more than {SKIP_S:g} s; skipping to the present")
        self.late += 1
        self.panic()
        with self._lock:
            self._next_step = math.ceil(self.clock.beat() * STEPS_PER_BEAT)

    def _play_step(self, step: int) -> None:
        with self._lock:
            due = [i for i in self._installs if i.boundary <= step]
            if due:
                self._installs = [i for i in self._installs if i.boundary > step]
        if self.recorder is not None:
            self.recorder.position = step / STEPS_PER_BEAT
        for install in due:
            self._apply(install, step)
        offs = self._offs
        while offs and offs[0][0] <= step:
            _, _, channel, pitch, token = heapq.heappop(offs)
            self.midi.note_off(channel, pitch, token)
        section = self._material[(step // STEPS) % len(self._material)]
        onset = step % STEPS
        self._start_notes(section.melody, onset, step, MELODY_CHANNEL)
        self._start_notes(section.accompaniment, onset, step, ACCOMPANIMENT_CHANNEL)
        with self._lock:
            self._next_step = step + 1
        if step % STEPS_PER_BEAT == 0:
            beat = step // STEPS_PER_BEAT
            self.beats.put((beat // BEATS_PER_BAR, beat % BEATS_PER_BAR))

    def _apply(self, install: _Install, step: int) -> None:
        if install.panic:
            self.panic()
        material = self._material
        if install.n_segments != len(material):
            material = [material[i % len(material)] for i in range(install.n_segments)]
        else:
            material = list(material)
        for index, section in install.sections.items():
            material[index % install.n_segments] = section
        current = (step // STEPS) % install.n_segments
        if current in install.sections or install.n_segments != len(self._material):
            while self._offs:
                _, _, channel, pitch, token = heapq.heappop(self._offs)
                self.midi.note_off(channel, pitch, token)
        self._material = material

    def _start_notes(self, notes: np.ndarray, onset: int, step: int, channel: int) -> None:
        if len(notes) == 0:
            return
        rows = notes[notes[:, ONSET] == onset]
        for row in rows:
            velocity = int(row[VELOCITY]) if self.follow_velocity else self.velocity
            token = self.midi.note_on(channel, int(row[PITCH]), velocity)
            length = min(max(int(row[DURATION]), 1), self.max_note_steps)
            self._seq += 1
            heapq.heappush(self._offs, (step + length, self._seq, channel, int(row[PITCH]), token))


RenderFn = Callable[[object, list[int]], tuple[int, list[Segment]]]


class Regenerator:
    """The inference worker; see the module docstring.

    ``render(state, indices) -> (n_segments, sections)`` renders loop indices for a
    ``live.control.params.State`` (the server wires it to ``live.texture.vis2mus.Vis2Mus``); ``count(state)`` is the
    loop length in segments under that state. ``key(state)`` gives the
    part of the state that needs re-rendering (alphas, anchor, content, chords); ``panic_key(state)``
    the part whose change also sends all notes off (anchor, content). ``last_ms`` is the latest
    render time of the first (current + next) batch; ``errors`` counts failed renders.
    """

    def __init__(self, scheduler: Scheduler, render: RenderFn, count: Callable[[object], int],
                 key: Callable[[object], object], panic_key: Callable[[object], object]) -> None:
        self.scheduler = scheduler
        self._render = render
        self._count = count
        self._key = key
        self._panic_key = panic_key
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._recent: deque[float] = deque(maxlen=RECENT_RENDERS)
        self._landed = -1
        self._state = None
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self.last_ms = 0.0
        self.renders = 0
        self.errors = 0

    def submit(self, state) -> None:
        """Ask for the loop under ``state`` (a newer state replaces one not yet started)."""
        with self._lock:
            self._state = state
        self._wake.set()

    def start(self, state) -> None:
        self._running = True
        self._halt.clear()
        self._thread = threading.Thread(target=self._run, args=(state,), name="vis2mus-infer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._halt.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _take(self):
        with self._lock:
            state, self._state = self._state, None
            self._wake.clear()
        return state

    def _pending(self):
        with self._lock:
            return self._state

    def _run(self, played) -> None:
        rest: list[int] = []
        rest_state = None
        while self._running:
            if not rest:
                self._wake.wait()
            if not self._running:
                return
            pending = self._pending()
            if pending is not None and self._key(pending) != self._key(played):
                # Coalesce: one first render per boundary; every change until it must start is
                # folded into it.
                self._halt.wait(max(0.0, self._start_by() - time.perf_counter()))
                state = self._take()
                if not self._running:
                    return
                if state is None or self._key(state) == self._key(played):
                    continue
                rest, rest_state = self._first(state, played), state
                played = state
                continue
            self._take()
            if rest and rest_state is not None:
                index = rest.pop(0)
                self._safe_render(rest_state, [index], panic=False)

    def _budget_s(self) -> float:
        """Time to allow for a first render: the slowest of the recent ones, with a margin."""
        slowest = max(self._recent, default=self.last_ms / 1000.0)
        return slowest * RENDER_SAFETY + RENDER_MARGIN_S

    def _start_by(self) -> float:
        """When the next first render may start (``perf_counter``): as late as it can and still
        reach the boundary after the one the last first render landed on (at once when that time
        has passed: the first change after a quiet spell, or a stopped clock)."""
        sch = self.scheduler
        if self._landed > sch.next_step + QUANTUM_STEPS[sch.quantum]:
            return 0.0  # the clock was located back (external clock): the last landing says nothing
        at = sch.clock.time_of(next_boundary(self._landed + 1, sch.quantum) / STEPS_PER_BEAT)
        return at - self._budget_s() if math.isfinite(at) else 0.0

    def _expected_step(self) -> int:
        """Where the playback will be once a render of the last measured length is done."""
        sch = self.scheduler
        ahead = self.last_ms / 1000.0 * sch.clock.bpm / 60.0 * STEPS_PER_BEAT
        return sch.next_step + int(math.ceil(ahead))

    def _first(self, state, played) -> list[int]:
        """Render current + next, install them; returns the other indices still to render."""
        panic = self._panic_key(state) != self._panic_key(played)
        step = self._expected_step()
        try:
            n_segments = self._count(state)
        except Exception as exc:  # e.g. an anchor that failed to load
            self.errors += 1
            log.warning(f"render failed, keeping the current loop: {exc}")
            return []
        current = (step // STEPS) % n_segments
        first = [current] if n_segments == 1 else [current, (current + 1) % n_segments]
        t0 = time.perf_counter()
        landed = self._safe_render(state, first, panic=panic)
        if landed is None:
            return []
        self._landed = landed
        self.last_ms = (time.perf_counter() - t0) * 1000.0
        self._recent.append(self.last_ms / 1000.0)
        return [i for i in range(n_segments) if i not in first]

    def _safe_render(self, state, indices: list[int], panic: bool) -> int | None:
        """Render and install ``indices``; the step where they take over, ``None`` on failure."""
        try:
            n_segments, sections = self._render(state, indices)
        except Exception as exc:  # keep playing the current loop
            self.errors += 1
            log.warning(f"render failed, keeping the current loop: {exc}")
            return None
        self.renders += 1
        return self.scheduler.install(dict(zip(indices, sections)), n_segments=n_segments, panic=panic)
