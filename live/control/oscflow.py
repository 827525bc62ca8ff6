"""How much OSC input the server takes: per-sender budgets, coalescing and the rejection log.

- ``SenderTable``: one ``Sender`` per source IP (whatever its port: a sender cannot escape its
  budget by changing ports), least recently seen first out, at most ``MAX_SENDERS``. Only an idle
  sender is ever forgotten (not seen for ``IDLE_S``, nothing deferred); while the table is full of
  active senders, newcomers share one overflow budget, so memory stays bounded and no active
  sender's budget is reset.
- A ``Sender`` holds a token bucket of ``MESSAGES_PER_S`` packets a second, the latest packet it
  sent over budget per known address (taken when the budget refills, so a flood ends on its last
  value and a ``/vis2mus/state`` probe is not lost behind a fader flood or junk) and its
  error-reply budget.
- ``Batch``: accepted messages in arrival order, a later value of a coalesced setter replacing the
  earlier one.
- ``RejectLog``: rejections counted by kind, at most one summary log line per ``LOG_EVERY_S``.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Container

log = logging.getLogger("live.control.osc")

MESSAGES_PER_S = 1000.0
ERRORS_PER_S = 20
MAX_SENDERS = 4096
IDLE_S = 2.0
MAX_DEFERRED = 16
LOG_EVERY_S = 1.0

Peer = tuple[str, int]


def packet_key(data: bytes) -> bytes:
    """What a deferred packet is filed under: its address (``#bundle`` for a bundle), at most 64 bytes."""
    end = data.find(b"\x00", 0, 64)
    return data[:end if end >= 0 else 64]


@dataclass
class Sender:
    """Budgets and deferred packets of one source IP."""

    tokens: float
    refilled: float
    seen: float
    deferred: dict[bytes, tuple[bytes, Peer]] = field(default_factory=dict)
    errors_window: float = -math.inf
    errors_sent: int = 0
    errors_suppressed: int = 0

    def spend(self, now: float, rate: float = MESSAGES_PER_S) -> bool:
        """Take one packet's token if the bucket (refilled at ``rate``/s, at most ``rate``) has one."""
        self.tokens = min(rate, self.tokens + (now - self.refilled) * rate)
        self.refilled = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def defer(self, data: bytes, reply_to: Peer, known: Container[bytes] | None = None) -> bool:
        """Keep ``data`` for later, replacing an earlier packet to the same address; False (dropped)
        when the table is full or the address is not in ``known`` (junk never takes a slot)."""
        key = packet_key(data)
        if known is not None and key not in known:
            return False
        if key not in self.deferred and len(self.deferred) >= MAX_DEFERRED:
            return False
        self.deferred[key] = (data, reply_to)
        return True

    def take_deferred(self, now: float) -> list[tuple[bytes, Peer]]:
        """Deferred packets the budget now allows, oldest address first."""
        out = []
        while self.deferred and self.spend(now):
            key = next(iter(self.deferred))
            out.append(self.deferred.pop(key))
        return out

    def allow_error(self, now: float) -> tuple[bool, int]:
        """Whether an error reply may go out now, and how many were suppressed in the window before."""
        suppressed = 0
        if now - self.errors_window >= 1.0:
            suppressed = self.errors_suppressed
            self.errors_window, self.errors_sent, self.errors_suppressed = now, 0, 0
        if self.errors_sent >= ERRORS_PER_S:
            self.errors_suppressed += 1
            return False, 0
        self.errors_sent += 1
        return True, suppressed

    def idle(self, now: float) -> bool:
        return not self.deferred and now - self.seen >= IDLE_S


class SenderTable:
    """``Sender`` per IP, bounded LRU; see the module docstring."""

    def __init__(self, capacity: int = MAX_SENDERS, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._clock = clock
        self._senders: OrderedDict[str, Sender] = OrderedDict()
        self.overflow = self._new(clock())
        self.overflowed = 0

    def _new(self, now: float) -> Sender:
        return Sender(tokens=MESSAGES_PER_S, refilled=now, seen=now)

    def __len__(self) -> int:
        return len(self._senders)

    def __contains__(self, ip: str) -> bool:
        return ip in self._senders

    def get(self, ip: str) -> Sender:
        """The sender of ``ip`` (marked as seen now); the shared overflow sender when the table is
        full of active senders."""
        now = self._clock()
        sender = self._senders.get(ip)
        if sender is None:
            if len(self._senders) >= self.capacity:
                oldest_ip, oldest = next(iter(self._senders.items()))
                if not oldest.idle(now):
                    self.overflowed += 1
                    self.overflow.seen = now
                    return self.overflow
                del self._senders[oldest_ip]
            sender = self._senders[ip] = self._new(now)
        else:
            self._senders.move_to_end(ip)
        sender.seen = now
        return sender

    def waiting(self) -> list[Sender]:
        """Senders with deferred packets (the overflow sender included)."""
        out = [s for s in self._senders.values() if s.deferred]
        return out + ([self.overflow] if self.overflow.deferred else [])


COALESCED_NAMES = ("brightness", "contrast", "tempo", "velocity", "quantum", "source", "anchor")
"""Setters whose latest value is all that matters: earlier ones in the same batch are dropped."""


class Batch:
    """Accepted messages in arrival order; a coalesced setter keeps only its latest value."""

    def __init__(self, coalesced: frozenset[str]) -> None:
        self._coalesced = coalesced
        self._items: list[tuple[str, list[object], Peer] | None] = []
        self._slot: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def add(self, path: str, values: list[object], reply_to: Peer) -> int:
        """Append a message; returns 1 when it replaced an earlier one, else 0."""
        replaced = 0
        if path in self._coalesced:
            old = self._slot.get(path)
            if old is not None:
                self._items[old] = None
                replaced = 1
            self._slot[path] = len(self._items)
        self._items.append((path, values, reply_to))
        return replaced

    def items(self) -> list[tuple[str, list[object], Peer]]:
        return [item for item in self._items if item is not None]


class RejectLog:
    """Rejections counted by kind; ``tick()`` logs one summary line at most every ``LOG_EVERY_S``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._senders: set[str] = set()
        self._last_line = -math.inf
        self.lines = 0

    def count(self, kind: str, ip: str) -> None:
        """Count one rejected packet or message of ``kind`` from ``ip``."""
        self._counts[kind] = self._counts.get(kind, 0) + 1
        if len(self._senders) < 64:
            self._senders.add(ip)

    def tick(self) -> None:
        """Log the counts gathered since the last line, if any and if a line is due."""
        now = self._clock()
        if not self._counts or now - self._last_line < LOG_EVERY_S:
            return
        parts = ", ".join(f"{n} {kind}" for kind, n in sorted(self._counts.items(), key=lambda kv: -kv[1]))
        senders = len(self._senders)
        log.warning("OSC input rejected %d (%s) from %d%s sender(s); at most one such line a second",
                    sum(self._counts.values()), parts, senders, "+" if senders >= 64 else "")
        self.lines += 1
        self._counts.clear()
        self._senders.clear()
        self._last_line = now
