"""Musical time: the internal tempo clock and an external MIDI clock follower.

Positions are in beats (quarter notes) as floats; a sixteenth step is ``0.25`` beat and a MIDI
clock tick (24 ppqn) is ``1/24`` beat. Times are ``time.perf_counter()`` seconds. The clock maps
positions to absolute deadlines, so a tempo change moves every later deadline at once and no
rounding error accumulates from summed sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import numpy as np

from live.music.notes import TEMPO_RANGE

log = logging.getLogger(__name__)

PPQN = 24
MIDI_TICK = 0xF8
MIDI_START = 0xFA
MIDI_CONTINUE = 0xFB
MIDI_STOP = 0xFC


def clamp_bpm(bpm: float) -> float:
    """Clamp a tempo to ``TEMPO_RANGE``; NaN or inf raise ``ValueError``."""
    if not np.isfinite(bpm):
        raise ValueError(f"tempo must be a finite number, got {bpm!r}")
    return float(min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], bpm)))


class Clock:
    """Tempo clock: ``beat(t)`` and its inverse ``time_of(beat)``, with a running/stopped state.

    While stopped the position is frozen. Tempo changes re-anchor the mapping at the current
    position, so the beat never jumps. Thread-safe.
    """

    def __init__(self, bpm: float = 120.0) -> None:
        self._lock = threading.Lock()
        self._bpm = clamp_bpm(bpm)
        self._t0 = time.perf_counter()
        self._b0 = 0.0
        self._running = False
        self._epoch = 0

    @property
    def epoch(self) -> int:
        """Bumped each time ``start`` relocates the position (schedulers restart from it)."""
        return self._epoch

    @property
    def bpm(self) -> float:
        return self._bpm

    @property
    def running(self) -> bool:
        return self._running

    def beat(self, t: float | None = None) -> float:
        """The position in beats at time ``t`` (now by default)."""
        with self._lock:
            return self._beat_locked(time.perf_counter() if t is None else t)

    def _beat_locked(self, t: float) -> float:
        if not self._running:
            return self._b0
        return self._b0 + (t - self._t0) * self._bpm / 60.0

    def time_of(self, beat: float) -> float:
        """The ``perf_counter`` time at which position ``beat`` is reached (inf while stopped)."""
        with self._lock:
            if not self._running:
                return float("inf")
            return self._t0 + (beat - self._b0) * 60.0 / self._bpm

    def set_bpm(self, bpm: float) -> float:
        """Change the tempo from now on; returns the clamped value."""
        bpm = clamp_bpm(bpm)
        with self._lock:
            now = time.perf_counter()
            self._b0 = self._beat_locked(now)
            self._t0 = now
            self._bpm = bpm
        return bpm

    def start(self, beat: float | None = None, at: float | None = None) -> None:
        """Run from position ``beat`` (the frozen position by default) at time ``at`` (now)."""
        with self._lock:
            self._t0 = time.perf_counter() if at is None else at
            if beat is not None:
                self._b0 = beat
                self._epoch += 1
            self._running = True

    def stop(self) -> float:
        """Freeze the position; returns it."""
        with self._lock:
            self._b0 = self._beat_locked(time.perf_counter())
            self._running = False
            return self._b0

    def locate(self, beat: float, t: float, bpm: float | None = None) -> None:
        """Re-anchor: position ``beat`` happens at time ``t`` (used to follow an external clock)."""
        with self._lock:
            self._b0 = beat
            self._t0 = t
            if bpm is not None:
                self._bpm = clamp_bpm(bpm)


class TempoEstimator:
    """Tempo from MIDI clock tick arrival times: the mean interval over the last ``window`` ticks."""

    def __init__(self, window: int = 24) -> None:
        self._times: deque[float] = deque(maxlen=window + 1)

    def reset(self) -> None:
        self._times.clear()

    def tick(self, t: float) -> float | None:
        """Add a tick time; returns the tempo in BPM once two ticks are known."""
        self._times.append(t)
        if len(self._times) < 2:
            return None
        span = self._times[-1] - self._times[0]
        if span <= 0:
            return None
        interval = span / (len(self._times) - 1)
        return 60.0 / (interval * PPQN)


class ExternalClock:
    """Follow a MIDI clock on an input port: Start/Continue/Stop and the tempo from tick intervals.

    Each tick locates ``clock`` so that the beat at the tick's arrival is ``ticks / 24``; between
    ticks the clock runs at the estimated tempo. ``on_transport(kind)`` is called with ``"start"``,
    ``"continue"`` or ``"stop"``.
    """

    def __init__(self, clock: Clock, port_name: str, api: str = "auto", on_transport=None) -> None:
        from live.playback.midiout import api_candidates, quiet_stderr

        import rtmidi

        self.clock = clock
        self.port_name = port_name
        self._on_transport = on_transport
        self._estimator = TempoEstimator()
        self._ticks = 0
        self._follow = False
        self.midi_in = None
        errors = []
        for api_id in api_candidates(api):
            try:
                with quiet_stderr():
                    midi_in = rtmidi.MidiIn(api_id, name="Vis2Mus clock")
                    ports = midi_in.get_ports()
                match = [i for i, p in enumerate(ports) if port_name in p]
                if not match:
                    errors.append(f"no input port matching {port_name!r} among {ports}")
                    midi_in.delete()
                    continue
                midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
                midi_in.set_callback(self._on_message)
                midi_in.open_port(match[0], "clock in")
                self.midi_in = midi_in
                break
            except Exception as exc:  # rtmidi raises its own SystemError subclasses per backend
                errors.append(str(exc))
        if self.midi_in is None:
            raise RuntimeError(f"--clock-in {port_name}: " + "; ".join(errors))

    def _on_message(self, event, _data=None) -> None:
        message, _delta = event
        if not message:
            return
        now = time.perf_counter()
        status = message[0]
        if status == MIDI_START:
            self._ticks = 0
            self._estimator.reset()
            self._follow = True
            self.clock.start(beat=0.0, at=now)
            self._notify("start")
        elif status == MIDI_CONTINUE:
            self._estimator.reset()
            self._follow = True
            self.clock.start(beat=self._ticks / PPQN, at=now)
            self._notify("continue")
        elif status == MIDI_STOP:
            self._follow = False
            self.clock.stop()
            self._notify("stop")
        elif status == MIDI_TICK and self._follow:
            self._ticks += 1
            bpm = self._estimator.tick(now)
            self.clock.locate(self._ticks / PPQN, now, bpm)

    def _notify(self, kind: str) -> None:
        if self._on_transport is not None:
            try:
                self._on_transport(kind)
            except Exception as exc:
                log.warning(f"clock-in {kind} handler failed: {exc}")

    def close(self) -> None:
        if self.midi_in is not None:
            self.midi_in.close_port()
            self.midi_in.delete()
            self.midi_in = None
