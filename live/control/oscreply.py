"""Where the OSC server's replies go and when (``live.control.osc``).

``Replies`` remembers the last ``MAX_PEERS`` senders (forgotten after ``PEER_TTL_S``) or sends
everything to one fixed ``reply`` target; after a change it sends the full state
(``/vis2mus/state/...``) to every peer, at most one burst per ``STATE_INTERVAL_S`` each (a
``/vis2mus/state`` query is answered at once); it sends ``/vis2mus/error s`` within the sender's
error budget (``live.control.oscflow.Sender``) and ``/vis2mus/beat i i`` on request.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from typing import Callable

from pythonosc.osc_message_builder import OscMessageBuilder

from live.control import oscspace
from live.control.oscflow import Peer, Sender
from live.control.params import Params, State

log = logging.getLogger("live.control.osc")

STATE_INTERVAL_S = 0.05
MAX_PEERS = 8
PEER_TTL_S = 60.0
MAX_ERROR_CHARS = 512

P = oscspace.PREFIX


def state_messages(state: State) -> list[tuple[str, object]]:
    """The full state as ``(address, value)`` pairs on the ``/vis2mus/state/...`` addresses."""
    return [
        (f"{P}/state/brightness", float(state.alpha_b)),
        (f"{P}/state/contrast", float(state.alpha_c)),
        (f"{P}/state/anchor", state.anchor),
        (f"{P}/state/style", state.content or ""),
        (f"{P}/state/tempo", float(state.tempo)),
        (f"{P}/state/playing", int(state.playing)),
        (f"{P}/state/quantum", state.quantum),
        (f"{P}/state/source", state.source),
        (f"{P}/state/chords", state.chords or ""),
        (f"{P}/state/velocity", int(state.velocity)),
        (f"{P}/state/preset", -1 if state.preset is None else int(state.preset)),
    ]


def encode(address: str, *values: object) -> bytes:
    """One OSC message as a datagram (floats as ``f``, ints as ``i``, strings as ``s``)."""
    builder = OscMessageBuilder(address)
    for value in values:
        builder.add_arg(value, "f" if isinstance(value, float) else None)
    return builder.build().dgram


class Replies:
    """Reply targets and throttles of one OSC server socket; see the module docstring."""

    def __init__(self, sock: socket.socket, params: Params, reply: Peer | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._sock = sock
        self._params = params
        self.reply = reply
        self._clock = clock
        self._lock = threading.Lock()
        self._peers: dict[Peer, float] = {}
        self._dirty: set[Peer] = set()
        self._state_sent: dict[Peer, float] = {}

    def remember(self, sender: Peer) -> None:
        """Record a sender of valid messages as a peer (nothing to do with a fixed ``reply``)."""
        if self.reply is not None:
            return
        now = self._clock()
        with self._lock:
            self._peers.pop(sender, None)
            self._peers[sender] = now
            while self._peers:
                oldest, seen = next(iter(self._peers.items()))
                if len(self._peers) <= MAX_PEERS and now - seen <= PEER_TTL_S:
                    break
                del self._peers[oldest]

    def targets(self) -> list[Peer]:
        """Every peer that gets state bursts and beats."""
        with self._lock:
            return self._targets_locked()

    def _targets_locked(self) -> list[Peer]:
        return [self.reply] if self.reply is not None else list(self._peers)

    def answer_state(self, peer: Peer) -> None:
        """Send ``peer`` the full state at the next flush, whatever the throttle says."""
        with self._lock:
            self._dirty.add(peer)
            self._state_sent.pop(peer, None)

    def on_change(self, state: State, changed: frozenset) -> None:
        """``Params`` subscriber: every peer is due a state burst."""
        with self._lock:
            self._dirty.update(self._targets_locked())

    def next_due(self) -> float:
        """When the next state burst is due (``clock`` time; inf when none is)."""
        with self._lock:
            return min((self._state_sent.get(peer, -math.inf) + STATE_INTERVAL_S for peer in self._dirty),
                       default=math.inf)

    def flush(self, now: float) -> None:
        """Send the state bursts due at ``now``."""
        with self._lock:
            due = [peer for peer in self._dirty
                   if now >= self._state_sent.get(peer, -math.inf) + STATE_INTERVAL_S]
            for peer in due:
                self._dirty.discard(peer)
                self._state_sent[peer] = now
            while len(self._state_sent) > 4 * MAX_PEERS:
                del self._state_sent[next(iter(self._state_sent))]
        if not due:
            return
        datagrams = [encode(address, value) for address, value in state_messages(self._params.snapshot())]
        for peer in due:
            for data in datagrams:
                self.send(data, peer)

    def error(self, book: Sender, peer: Peer, text: str) -> None:
        """``/vis2mus/error text`` to ``peer`` if ``book``'s error budget allows."""
        log.debug("OSC error to %s:%d: %s", *peer, text)
        allowed, suppressed = book.allow_error(self._clock())
        if not allowed:
            return
        if suppressed:
            text = f"{text} ({suppressed} more errors suppressed in the last second)"
        self.send(encode(f"{P}/error", text[:MAX_ERROR_CHARS]), peer)

    def beat(self, bar: int, beat: int) -> None:
        """``/vis2mus/beat bar beat`` to every peer."""
        data = encode(f"{P}/beat", int(bar), int(beat))
        for peer in self.targets():
            self.send(data, peer)

    def send(self, data: bytes, peer: Peer) -> None:
        try:
            self._sock.sendto(data, peer)
        except OSError:
            pass  # a peer that went away must not stop the server; UDP has no delivery anyway
