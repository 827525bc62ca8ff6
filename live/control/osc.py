"""The OSC input of vis2mus-live: a UDP server that drives ``live.control.params`` from ``live.control.oscspace``.

One receive thread owns the socket. Each round it drains the queued datagrams (at most
``DRAIN_LIMIT``), checks each one (size, sender allowlist, the sender's budget in
``live.control.oscflow``), reads it with ``live.control.oscwire`` (never python-osc's parser),
checks address, arity and types (``live.control.oscdispatch``) and collects the accepted messages
in a ``Batch`` where a later value of the same setter replaces the earlier one. Batches are applied
at most every ``BATCH_INTERVAL_S`` through the address table; the first message after a quiet
spell is applied at once. Rejections are counted by kind and summarised in at most one log line a
second.

Replies (``live.control.oscreply``) go to the sender (or to ``reply``, a fixed ``(host, port)``):
``/vis2mus/error s`` for every rejected or clamped message (at most ``ERRORS_PER_S`` a second per
sender IP, the rest counted), the full state (``/vis2mus/state/...``) after every change,
throttled to one burst per ``STATE_INTERVAL_S`` (a ``/vis2mus/state`` query is answered at
once), and ``/vis2mus/beat i i`` whenever the server calls ``send_beat``.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterable

from live.control import oscspace
from live.control.oscdispatch import OscInputError, address_of, coerce, handlers
from live.control.oscflow import (COALESCED_NAMES, ERRORS_PER_S, MESSAGES_PER_S, Batch, Peer, RejectLog,
                                  Sender, SenderTable)
from live.control.oscreply import STATE_INTERVAL_S, Replies, encode, state_messages
from live.control.oscspace import DEFAULT_HOST, DEFAULT_PORT
from live.control.oscwire import BUNDLE_TAG, WireError, decode
from live.control.params import Params, Update

log = logging.getLogger(__name__)

MAX_PACKET = 4096
BATCH_INTERVAL_S = 0.005
DRAIN_LIMIT = 256
RECEIVE_BUFFER = 1 << 20

P = oscspace.PREFIX
COALESCED = frozenset(f"{P}/{name}" for name in COALESCED_NAMES)
DEFERRABLE = frozenset([a.path.encode() for a in oscspace.CONTROLS] + [BUNDLE_TAG.rstrip(b"\x00")])
"""What a rate-limited packet may be kept for later under: a control address or a bundle."""

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ERRORS_PER_S", "MAX_PACKET", "STATE_INTERVAL_S", "OscInputError",
           "OscServer", "OscStats", "coerce", "encode", "state_messages"]


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
    dropped: int = 0
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
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        self._sock.setblocking(False)
        self.replies = Replies(self._sock, params, reply, clock=self._clock)
        self.senders = SenderTable(clock=self._clock)
        self.rejects = RejectLog(clock=self._clock)
        self._handlers = handlers(params, self.replies.answer_state)
        self._refused: set[str] = set()
        self._last_apply = -math.inf
        self._thread = threading.Thread(target=self._run, name="osc-in", daemon=True)
        self._running = threading.Event()
        self._unsubscribe = params.subscribe(self.replies.on_change)

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

    def summary(self) -> str:
        """One line of input counters for the end of a run."""
        s = self.stats
        return (f"OSC: {s.packets} packets, {s.messages} messages, {s.applied} applied, {s.coalesced} coalesced, "
                f"rate-limited {s.rate_limited} ({s.dropped} dropped), malformed {s.malformed}, "
                f"oversized {s.oversized}, refused {s.rejected}, senders {len(self.senders)}")

    def send_beat(self, bar: int, beat: int) -> None:
        """Send ``/vis2mus/beat bar beat`` to every peer (called by the server at each beat)."""
        self.replies.beat(bar, beat)

    # Receive loop

    def _run(self) -> None:
        batch: Batch | None = None
        while self._running.is_set():
            now = self._clock()
            wait = 0.05
            if batch is not None:
                wait = max(0.0, self._last_apply + BATCH_INTERVAL_S - now)
            wait = min(wait, max(0.0, self.replies.next_due() - now))
            waiting = self.senders.waiting()
            if waiting:
                wait = min(wait, 1.0 / MESSAGES_PER_S)
            try:
                readable, _, _ = select.select([self._sock], [], [], wait)
            except (OSError, ValueError):
                break
            try:
                if readable:
                    batch = self._drain(batch or Batch(COALESCED))
                if waiting:
                    batch = self._take_deferred(batch or Batch(COALESCED))
                if batch is not None and not len(batch):
                    batch = None
                now = self._clock()
                if batch is not None and now >= self._last_apply + BATCH_INTERVAL_S:
                    pending, batch = batch, None
                    self._last_apply = now
                    self._apply(pending)
                self.replies.flush(now)
                self.rejects.tick()
            except Exception:  # a bug in a handler must not end OSC input for the rest of the show
                log.exception("OSC input: unexpected error, message dropped")

    def _drain(self, batch: Batch) -> Batch:
        for _ in range(DRAIN_LIMIT):
            try:
                data, sender = self._sock.recvfrom(65536)
            except BlockingIOError:
                break
            except OSError:
                continue  # e.g. ICMP port unreachable from a peer that went away
            self._take(data, sender[:2], batch)
        return batch

    def _take(self, data: bytes, sender: Peer, batch: Batch) -> None:
        self.stats.packets += 1
        ip = sender[0]
        if self.allow and ip not in self.allow and not ipaddress.ip_address(ip).is_loopback:
            self.stats.refused_senders += 1
            if ip not in self._refused and len(self._refused) < 64:
                self._refused.add(ip)
                log.warning("OSC from %s ignored: not in --osc-allow", ip)
            return
        reply_to = self.replies.reply or sender
        book = self.senders.get(ip)
        now = self._clock()
        for earlier in book.take_deferred(now):  # keep arrival order: kept packets are older
            self._parse(*earlier, book, batch)
        if book.deferred or not book.spend(now):
            self.stats.rate_limited += 1
            if not book.defer(data, reply_to, DEFERRABLE):
                self.stats.dropped += 1
            self.replies.error(book, reply_to, f"rate limit of {MESSAGES_PER_S:g} packets/s exceeded: "
                                        "packets dropped, the latest one per address kept for later")
            return
        self._parse(data, reply_to, book, batch)

    def _take_deferred(self, batch: Batch) -> Batch:
        """Process each rate-limited sender's kept packets once its budget allows."""
        now = self._clock()
        for book in self.senders.waiting():
            for data, reply_to in book.take_deferred(now):
                self._parse(data, reply_to, book, batch)
        return batch

    def _parse(self, data: bytes, reply_to: Peer, book: Sender, batch: Batch) -> None:
        ip = reply_to[0]
        if len(data) > MAX_PACKET:
            self.stats.oversized += 1
            self.rejects.count("oversized", ip)
            self.replies.error(book, reply_to, f"packet of {len(data)} bytes exceeds the {MAX_PACKET}-byte limit")
            return
        try:
            messages = decode(data)
        except WireError as error:
            self.stats.malformed += 1
            self.rejects.count(error.kind, ip)
            self.replies.error(book, reply_to, f"malformed OSC packet ({len(data)} bytes) ignored: {error}")
            return
        accepted = False
        for message in messages:
            self.stats.messages += 1
            try:
                address = address_of(message.address)
                values = coerce(address, list(message.args))
            except OscInputError as error:
                self.stats.rejected += 1
                self.rejects.count("refused", ip)
                self.replies.error(book, reply_to, str(error))
                continue
            if values is not None:
                self.stats.coalesced += batch.add(address.path, values, reply_to)
                accepted = True
        if accepted:  # only a sender of valid messages becomes a peer: junk never evicts one
            self.replies.remember(reply_to)

    # Applying a batch

    def _apply(self, batch: Batch) -> None:
        for path, values, reply_to in batch.items():
            book = self.senders.get(reply_to[0])
            try:
                result = self._handlers[path](values, reply_to)
            except ValueError as error:
                self.stats.rejected += 1
                self.rejects.count("refused", reply_to[0])
                self.replies.error(book, reply_to, f"{path}: {error}")
                continue
            self.stats.applied += 1
            if isinstance(result, Update) and result.note:
                self.replies.error(book, reply_to, f"{path}: {result.note}")
