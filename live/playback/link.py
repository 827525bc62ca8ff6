"""Ableton Link: tempo, bar phase and start/stop shared with the other peers of a Link session.

Optional (``pip install -e .[link]``, the LinkPython-extern wheels; Link itself is GPL-2.0-or-later,
so it stays an extra). ``LinkSync`` polls the session every ``POLL_S`` and keeps the server's
``Clock`` on it: the session's tempo, and the clock's position congruent with the session's beat
modulo the bar (``QUANTUM`` beats), by re-anchoring the clock (``Clock.locate``, no restart, so the
send thread just re-reads its deadline). Start/stop changes of the session reach ``on_transport``
(a change is a new start/stop timestamp: a peer that joins learns the session's tempo and beat but
not whether it plays, so the server starts playing in phase and follows the next start or stop);
the server's own tempo and transport changes go out to the session (``set_tempo``, ``set_playing``).
Link times are microseconds of its own monotonic clock; they are mapped to ``perf_counter`` by
sampling both clocks.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from live.children import Worker

log = logging.getLogger(__name__)

QUANTUM = 4.0
POLL_S = 0.005
TEMPO_EPSILON = 1e-3
PHASE_EPSILON = 2e-4  # beats (0.1 ms at 120 BPM)


def available() -> str | None:
    """``None`` when the Link package is importable, else the one-line reason."""
    try:
        import link  # noqa: F401
    except ImportError as error:
        return f"Ableton Link needs the optional extra: pip install -e .[link] ({error})"
    return None


class LinkSync:
    """Follows a Link session with ``clock`` (``live.playback.clock.Clock``); see the module docstring.

    ``on_tempo(bpm)`` is called when the session's tempo changes, ``on_transport("start"|"stop")``
    when its start/stop state does.
    """

    def __init__(self, clock, bpm: float, on_tempo: Callable[[float], None],
                 on_transport: Callable[[str], None]) -> None:
        import link

        self.clock = clock
        self.on_tempo = on_tempo
        self.on_transport = on_transport
        self._link = link.Link(float(bpm))
        self._link.startStopSyncEnabled = True
        self._link.enabled = True
        self._worker = Worker(self._run, "link")
        self._transport: tuple[bool, int] | None = None
        self._tempo = float(bpm)
        self.corrections = 0

    @property
    def peers(self) -> int:
        return int(self._link.numPeers())

    def _micros(self, t: float) -> int:
        """``perf_counter`` time ``t`` on the Link clock (microseconds)."""
        now = time.perf_counter()
        return int(self._link.clock().micros() + (t - now) * 1e6)

    def beat(self, t: float) -> float:
        """The session's beat at ``perf_counter`` time ``t``."""
        return float(self._link.captureAppSessionState().beatAtTime(self._micros(t), QUANTUM))

    def phase_start(self, t: float) -> float:
        """Where the server's clock must be at time ``t`` to be in phase: the session's position
        within the bar (0 <= beat < ``QUANTUM``)."""
        return self.beat(t) % QUANTUM

    @property
    def playing(self) -> bool:
        return bool(self._link.captureAppSessionState().isPlaying())

    def set_tempo(self, bpm: float) -> None:
        """Send a tempo change to the session (no-op when it already has that tempo)."""
        state = self._link.captureAppSessionState()
        if abs(state.tempo() - bpm) > TEMPO_EPSILON:
            state.setTempo(float(bpm), self._link.clock().micros())
            self._link.commitAppSessionState(state)
            self._tempo = float(bpm)

    def set_playing(self, playing: bool) -> None:
        """Start or stop the session (no-op when it already is)."""
        state = self._link.captureAppSessionState()
        if bool(state.isPlaying()) != playing:
            state.setIsPlaying(playing, self._link.clock().micros())
            self._link.commitAppSessionState(state)
        self._transport = self._transport_of(self._link.captureAppSessionState())

    @staticmethod
    def _transport_of(state) -> tuple[bool, int]:
        return bool(state.isPlaying()), int(state.timeForIsPlaying())

    def start(self) -> "LinkSync":
        self._transport = self._transport_of(self._link.captureAppSessionState())
        self._worker.start()
        return self

    def close(self) -> None:
        self._worker.stop()
        self._link.enabled = False

    def _run(self) -> None:
        while not self._worker.stopping.wait(POLL_S):
            try:
                self._follow()
            except Exception:  # the music goes on at the last tempo
                log.exception("Link: unexpected error")

    def _follow(self) -> None:
        state = self._link.captureAppSessionState()
        now = time.perf_counter()
        micros = self._link.clock().micros()
        tempo = float(state.tempo())
        transport = self._transport_of(state)
        if transport != self._transport:
            self._transport = transport
            self.on_transport("start" if transport[0] else "stop")
        if abs(tempo - self._tempo) > TEMPO_EPSILON:
            self._tempo = tempo
            self.on_tempo(tempo)
        if not self.clock.running:
            return
        session = float(state.beatAtTime(micros, QUANTUM))
        ours = self.clock.beat(now)
        error = (session - ours + QUANTUM / 2) % QUANTUM - QUANTUM / 2
        if abs(error) > PHASE_EPSILON or abs(self.clock.bpm - tempo) > TEMPO_EPSILON:
            self.clock.locate(ours + error, now, bpm=tempo)
            self.corrections += 1
