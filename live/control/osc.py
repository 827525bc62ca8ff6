"""The OSC input of vis2mus-live: a UDP server that drives ``live.control.params`` from ``live.control.oscspace``.

One receive thread owns the socket. Each round it drains every queued datagram, checks it (size,
sender allowlist, per-sender rate limit, OSC syntax, known address, arity and types) and collects
the accepted messages in a batch where a later value of the same setter replaces the earlier one
(a 100 Hz fader flood never queues up: the last value wins). Batches are applied at most every
``BATCH_INTERVAL_S``; the first message after a quiet spell is applied at once. A sender over
``MESSAGES_PER_S`` loses its excess packets except the latest, which is taken when its budget
refills, so even a flood ends on its last value.

Replies go to the sender (or to ``reply``, a fixed ``(host, port)``): ``/vis2mus/error s`` for every
rejected or clamped message (at most ``ERRORS_PER_S`` a second per peer, the rest counted), the full
state (``/vis2mus/state/...``) after every change, throttled to one burst per ``STATE_INTERVAL_S``,
and ``/vis2mus/beat i i`` whenever the server calls ``send_beat``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from live.checks import finite
from live.control import oscspace
from live.control.oscspace import DEFAULT_HOST, DEFAULT_PORT
from live.control.params import Params, State

log = logging.getLogger(__name__)

MAX_PACKET = 4096
BATCH_INTERVAL_S = 0.005
STATE_INTERVAL_S = 0.05
MESSAGES_PER_S = 1000.0
ERRORS_PER_S = 20
MAX_PEERS = 8
PEER_TTL_S = 60.0
DRAIN_LIMIT = 1024

P = oscspace.PREFIX
# Setters whose latest value is all that matters: earlier ones in the same batch are dropped.
COALESCED = frozenset(f"{P}/{name}" for name in
                      ("brightness", "contrast", "tempo", "velocity", "quantum", "source", "anchor"))

Peer = tuple[str, int]


class OscInputError(ValueError):
    """A message that cannot be accepted; the text is the one-line reply."""


def coerce(address: oscspace.Address, args: list[object]) -> list[object] | None:
    """Match ``args`` against the address's signatures; return the values to apply.

    ``f`` accepts int or float, ``i`` accepts int or an integral float (Pure Data sends floats),
    ``s`` a string. An address without arguments also accepts one number, acting only when it is
    non-zero (a TouchOSC button sends 1 on press and 0 on release): ``None`` means "ignore".
    Raises ``OscInputError`` when no signature fits or a float is NaN or infinite.
    """
    for signature in address.signatures:
        if len(signature) != len(args):
            continue
        try:
            name = address.path.rsplit("/", 1)[-1]
            values = [_coerce_one(tag, arg, name) for tag, arg in zip(signature, args)]
        except ValueError as error:
            raise OscInputError(f"{address.path}: {error}") from None
        if all(v is not _NO_MATCH for v in values):
            return values
    if "" in address.signatures and len(args) == 1 and _is_number(args[0]):
        return [] if args[0] else None
    wanted = " or ".join(f"'{s}'" if s else "no arguments" for s in address.signatures)
    got = "".join(_tag_of(a) for a in args) or "no arguments"
    raise OscInputError(f"{address.path}: expects {wanted}, got '{got}'")


_NO_MATCH = object()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce_one(tag: str, value: object, name: str = "value") -> object:
    if tag == "f" and _is_number(value):
        return finite(name, value)
    if tag == "i" and _is_number(value):
        if isinstance(value, int):
            return value
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        return _NO_MATCH
    if tag == "s" and isinstance(value, str):
        return value
    return _NO_MATCH


def _tag_of(value: object) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, bytes):
        return "b"
    return "?"


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


@dataclass
class _PeerBook:
    """Token bucket (per sender IP) and error-reply budget (per peer)."""

    tokens: float = MESSAGES_PER_S
    refilled: float = field(default_factory=time.monotonic)
    errors_window: float = 0.0
    errors_sent: int = 0
    errors_suppressed: int = 0


@dataclass
class OscStats:
    """Counters since start (read them for a status line)."""

    packets: int = 0
    messages: int = 0
    applied: int = 0
    coalesced: int = 0
    rejected: int = 0
    malformed: int = 0
    oversized: int = 0
    rate_limited: int = 0
    refused_senders: int = 0


class OscServer:
    """UDP OSC server bound to ``host:port`` (port 0 picks a free one) that drives ``params``.

    ``allow`` lists sender IPs accepted besides loopback (empty: everyone who can reach the port).
    ``reply`` sends every reply to that ``(host, port)`` instead of to the senders.
    """

    def __init__(
        self,
        params: Params,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        allow: Iterable[str] = (),
        reply: Peer | None = None,
    ) -> None:
        self.params = params
        self.allow = frozenset(str(ipaddress.ip_address(ip)) for ip in allow)
        self.reply = reply
        self.stats = OscStats()
        self._clock = time.monotonic
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError as error:
            self._sock.close()
            raise OSError(f"cannot listen for OSC on {host}:{port}: {error.strerror or error}") from None
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.setblocking(False)
        self._lock = threading.Lock()
        self._peers: dict[Peer, float] = {}
        self._dirty: set[Peer] = set()
        self._state_sent: dict[Peer, float] = {}
        self._books: dict[str, _PeerBook] = {}
        self._refused: set[str] = set()
        self._deferred: dict[str, tuple[bytes, Peer]] = {}
        self._last_apply = -math.inf
        self._thread = threading.Thread(target=self._run, name="osc-in", daemon=True)
        self._running = threading.Event()
        self._unsubscribe = params.subscribe(self._on_change)

    @property
    def address(self) -> Peer:
        """The bound ``(host, port)``."""
        host, port = self._sock.getsockname()[:2]
        return host, port

    def start(self) -> "OscServer":
        """Start the receive thread; returns ``self``."""
        self._running.set()
        self._thread.start()
        log.info("OSC listening on %s:%d", *self.address)
        return self

    def stop(self) -> None:
        """Stop the receive thread and close the socket (idempotent)."""
        self._unsubscribe()
        if self._running.is_set():
            self._running.clear()
            self._thread.join(timeout=2.0)
        self._sock.close()

    def __enter__(self) -> "OscServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def send_beat(self, bar: int, beat: int) -> None:
        """Send ``/vis2mus/beat bar beat`` to every peer (called by the server at each beat)."""
        data = encode(f"{P}/beat", int(bar), int(beat))
        for peer in self._targets():
            self._send(data, peer)

    # Receive loop

    def _run(self) -> None:
        batch: _Batch | None = None
        while self._running.is_set():
            now = self._clock()
            wait = 0.05
            if batch is not None:
                wait = max(0.0, self._last_apply + BATCH_INTERVAL_S - now)
            if self._dirty:
                wait = min(wait, max(0.0, self._next_state_due() - now))
            if self._deferred:
                wait = min(wait, 1.0 / MESSAGES_PER_S)
            try:
                readable, _, _ = select.select([self._sock], [], [], wait)
            except (OSError, ValueError):
                break
            try:
                if readable:
                    batch = self._drain(batch or _Batch())
                if self._deferred:
                    batch = self._take_deferred(batch or _Batch())
                now = self._clock()
                if batch is not None and now >= self._last_apply + BATCH_INTERVAL_S:
                    pending, batch = batch, None
                    self._last_apply = now
                    self._apply(pending)
                self._flush_state(now)
            except Exception:  # a bug in a handler must not end OSC input for the rest of the show
                log.exception("OSC input: unexpected error, message dropped")

    def _drain(self, batch: "_Batch") -> "_Batch":
        for _ in range(DRAIN_LIMIT):
            try:
                data, sender = self._sock.recvfrom(65536)
            except BlockingIOError:
                break
            except OSError:
                continue  # e.g. ICMP port unreachable from a peer that went away
            self._take(data, sender[:2], batch)
        return batch

    def _take(self, data: bytes, sender: Peer, batch: "_Batch") -> None:
        self.stats.packets += 1
        ip = sender[0]
        if self.allow and ip not in self.allow and not ipaddress.ip_address(ip).is_loopback:
            self.stats.refused_senders += 1
            if ip not in self._refused:
                self._refused.add(ip)
                log.warning("OSC from %s ignored: not in --osc-allow", ip)
            return
        reply_to = self._remember(sender)
        if not self._spend(self._book(ip)):
            self.stats.rate_limited += 1
            self._deferred[ip] = (data, reply_to)
            self._error(reply_to, f"rate limit of {MESSAGES_PER_S:g} packets/s exceeded: "
                                  "packets dropped, the latest one kept for later")
            return
        earlier = self._deferred.pop(ip, None)
        if earlier is not None:  # keep arrival order: the kept packet is older than this one
            self._parse(*earlier, batch)
        self._parse(data, reply_to, batch)

    def _take_deferred(self, batch: "_Batch") -> "_Batch":
        """Process each rate-limited sender's latest packet once its budget allows."""
        for ip in list(self._deferred):
            if self._spend(self._book(ip)):
                data, reply_to = self._deferred.pop(ip)
                self._parse(data, reply_to, batch)
        return batch

    def _parse(self, data: bytes, reply_to: Peer, batch: "_Batch") -> None:
        if len(data) > MAX_PACKET:
            self.stats.oversized += 1
            self._error(reply_to, f"packet of {len(data)} bytes exceeds the {MAX_PACKET}-byte limit")
            return
        try:
            messages = [timed.message for timed in OscPacket(data).messages]
        except Exception:  # python-osc raises several types on garbage; all mean "not OSC"
            self.stats.malformed += 1
            self._error(reply_to, f"malformed OSC packet ({len(data)} bytes) ignored")
            return
        for message in messages:
            self.stats.messages += 1
            try:
                path = message.address
                address = oscspace.BY_PATH.get(path)
                if address is None or address not in oscspace.CONTROLS:
                    kind = "feedback-only" if address is not None else "unknown"
                    raise OscInputError(f"{kind} address {path!r} (see docs/osc.md)")
                values = coerce(address, list(message.params))
            except OscInputError as error:
                self.stats.rejected += 1
                self._error(reply_to, str(error))
                continue
            except Exception:
                self.stats.malformed += 1
                self._error(reply_to, "malformed OSC message ignored")
                continue
            if values is not None:
                self.stats.coalesced += batch.add(path, values, reply_to)

    # Applying a batch

    def _apply(self, batch: "_Batch") -> None:
        for path, values, reply_to in batch.items():
            try:
                note = self._dispatch(path, values, reply_to)
            except ValueError as error:
                self.stats.rejected += 1
                self._error(reply_to, f"{path}: {error}")
                continue
            self.stats.applied += 1
            if note:
                self._error(reply_to, f"{path}: {note}")

    def _dispatch(self, path: str, values: list[object], reply_to: Peer) -> str | None:
        p = self.params
        name = path[len(P) + 1:]
        if name == "brightness":
            return p.set_brightness(values[0]).note
        if name == "contrast":
            return p.set_contrast(values[0]).note
        if name == "tempo":
            return p.set_tempo(values[0]).note
        if name == "velocity":
            return p.set_velocity(values[0]).note
        if name == "anchor":
            p.set_anchor(values[0])
        elif name == "style":
            p.set_style(values[0], values[1])
        elif name == "style/off":
            p.style_off()
        elif name == "play":
            p.play()
        elif name == "stop":
            p.stop()
        elif name == "panic":
            p.panic()
        elif name == "quantum":
            p.set_quantum(values[0])
        elif name == "source":
            p.set_source(values[0])
        elif name == "preset":
            p.recall(values[0])
        elif name == "chords":
            p.set_chords(values[0])
        elif name == "chords/off":
            p.set_chords(None)
        elif name == "state":
            p.query()
            with self._lock:
                self._dirty.add(reply_to)
                self._state_sent.pop(reply_to, None)
        else:
            raise ValueError("address has no handler")
        return None

    # Replies

    def _on_change(self, state: State, changed: frozenset) -> None:
        with self._lock:
            self._dirty.update(self._targets_locked())

    def _next_state_due(self) -> float:
        with self._lock:
            return min((self._state_sent.get(peer, -math.inf) + STATE_INTERVAL_S for peer in self._dirty),
                       default=math.inf)

    def _flush_state(self, now: float) -> None:
        with self._lock:
            due = [peer for peer in self._dirty
                   if now >= self._state_sent.get(peer, -math.inf) + STATE_INTERVAL_S]
            for peer in due:
                self._dirty.discard(peer)
                self._state_sent[peer] = now
        if not due:
            return
        datagrams = [encode(address, value) for address, value in state_messages(self.params.snapshot())]
        for peer in due:
            for data in datagrams:
                self._send(data, peer)

    def _error(self, peer: Peer, text: str) -> None:
        log.debug("OSC error to %s:%d: %s", *peer, text)
        book = self._book(f"errors:{peer[0]}:{peer[1]}")
        now = self._clock()
        if now - book.errors_window >= 1.0:
            if book.errors_suppressed:
                text = f"{text} ({book.errors_suppressed} more errors suppressed in the last second)"
            book.errors_window, book.errors_sent, book.errors_suppressed = now, 0, 0
        if book.errors_sent >= ERRORS_PER_S:
            book.errors_suppressed += 1
            return
        book.errors_sent += 1
        self._send(encode(f"{P}/error", text[:512]), peer)

    def _send(self, data: bytes, peer: Peer) -> None:
        try:
            self._sock.sendto(data, peer)
        except OSError:
            pass  # a peer that went away must not stop the server; UDP has no delivery anyway

    # Peers and budgets

    def _remember(self, sender: Peer) -> Peer:
        """Record a sender; return where its replies go."""
        if self.reply is not None:
            return self.reply
        now = self._clock()
        with self._lock:
            self._peers[sender] = now
            stale = [p for p, seen in self._peers.items() if now - seen > PEER_TTL_S]
            for peer in stale:
                del self._peers[peer]
            while len(self._peers) > MAX_PEERS:
                oldest = min(self._peers, key=self._peers.__getitem__)
                del self._peers[oldest]
        return sender

    def _targets(self) -> list[Peer]:
        with self._lock:
            return self._targets_locked()

    def _targets_locked(self) -> list[Peer]:
        if self.reply is not None:
            return [self.reply]
        return list(self._peers)

    def _book(self, key: str) -> _PeerBook:
        book = self._books.get(key)
        if book is None:
            if len(self._books) > 1024:
                self._books.clear()
            book = self._books[key] = _PeerBook(refilled=self._clock())
        return book

    def _spend(self, book: _PeerBook) -> bool:
        now = self._clock()
        book.tokens = min(MESSAGES_PER_S, book.tokens + (now - book.refilled) * MESSAGES_PER_S)
        book.refilled = now
        if book.tokens < 1.0:
            return False
        book.tokens -= 1.0
        return True


class _Batch:
    """Accepted messages in arrival order; a coalesced setter keeps only its latest value."""

    def __init__(self) -> None:
        self._items: list[tuple[str, list[object], Peer] | None] = []
        self._slot: dict[str, int] = {}

    def add(self, path: str, values: list[object], reply_to: Peer) -> int:
        """Append a message; returns 1 when it replaced an earlier one, else 0."""
        replaced = 0
        if path in COALESCED:
            old = self._slot.get(path)
            if old is not None:
                self._items[old] = None
                replaced = 1
            self._slot[path] = len(self._items)
        self._items.append((path, values, reply_to))
        return replaced

    def items(self) -> list[tuple[str, list[object], Peer]]:
        return [item for item in self._items if item is not None]
