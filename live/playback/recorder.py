"""Record every sent MIDI event into a standard MIDI file (format 0, 480 ticks per beat).

Events are stamped with the musical position the scheduler last set (``position``, in beats), so
the file keeps the performance's grid even when the machine is busy. ``flush()`` rewrites a
complete, valid file atomically (write a temporary file, then rename over the old one); the server
calls it at every bar, so a SIGKILL loses at most the last bar. ``close()`` flushes for good.
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

TICKS_PER_BEAT = 480
_END_OF_TRACK = b"\x00\xff\x2f\x00"


def varlen(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def tempo_meta(bpm: float) -> bytes:
    """Set Tempo meta event body (without delta time)."""
    return b"\xff\x51\x03" + int(round(60_000_000 / bpm)).to_bytes(3, "big")


class Recorder:
    """Thread-safe standard MIDI file writer; see the module docstring."""

    def __init__(self, path: str | os.PathLike, bpm: float = 120.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._track = bytearray()
        self._last_tick = 0
        self._dirty = True
        self.position = 0.0
        self.events = 0
        self.closed = False
        self._append(0, b"\xff\x58\x04\x04\x02\x18\x08")
        self._append(0, tempo_meta(bpm))
        self.flush()

    def _append(self, tick: int, body: bytes) -> None:
        tick = max(tick, self._last_tick)
        self._track += varlen(tick - self._last_tick) + body
        self._last_tick = tick
        self._dirty = True

    def _tick(self) -> int:
        return int(round(self.position * TICKS_PER_BEAT))

    def event(self, message: list[int]) -> None:
        """Record a channel or system message at the current ``position``."""
        if self.closed or not message or message[0] >= 0xF0:
            return
        with self._lock:
            self._append(self._tick(), bytes(message))
            self.events += 1

    def set_tempo(self, bpm: float) -> None:
        """Record a tempo change at the current ``position``."""
        with self._lock:
            self._append(self._tick(), tempo_meta(bpm))

    def flush(self) -> None:
        """Rewrite the whole file atomically if anything changed."""
        with self._lock:
            if not self._dirty:
                return
            track = bytes(self._track) + _END_OF_TRACK
            self._dirty = False
        data = (b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
                + b"MTrk" + struct.pack(">I", len(track)) + track)
        tmp = self.path.with_name(self.path.name + ".part")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

    def close(self) -> None:
        """Final flush; later events are ignored."""
        self.flush()
        self.closed = True
