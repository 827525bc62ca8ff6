"""Record every sent MIDI event into a standard MIDI file (format 0, 480 ticks per beat).

The send thread only appends each event's tick and bytes to the raw event list (compact arrays,
about 8 bytes an event): events are stamped with the musical position the scheduler last set
(``position``, in beats), so the file keeps the performance's grid even when the machine is busy.
``flush()`` writes the file with mido: the raw events become the messages of a ``mido`` track as
mido's writer asks for them, saved to ``NAME.part`` and renamed over the old file (atomic: a reader or a SIGKILL sees the previous
complete file or the new one). The server
calls ``flush_due()`` at every bar, which flushes unless the last save was slow (a long recording
is saved at most ``SAVE_SHARE`` of the time), so a SIGKILL loses at most a bar or two.

I/O errors (disk full, EIO, a vanished or read-only folder) never reach the caller: one line says
``recording stopped: disk full (PATH)``, the last good file stays as it was, no ``.part`` is left,
the events keep being collected in memory, and saving is retried with back-off (``RETRY_S``
doubling to ``RETRY_MAX_S``, the folder re-created if it vanished); ``recording resumed`` when a
save works again. ``close()`` makes a final attempt.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from array import array
from pathlib import Path
from typing import Iterator

import mido

log = logging.getLogger(__name__)

TICKS_PER_BEAT = 480
SAVE_SHARE = 0.05
RETRY_S = 1.0
RETRY_MAX_S = 30.0
REASONS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EIO: "I/O error",
           errno.ENOENT: "folder vanished", errno.EROFS: "file system is read-only",
           errno.EACCES: "permission denied", errno.ENOTDIR: "a part of the path is not a folder",
           errno.EEXIST: "a part of the path is not a folder"}


class RawTrack:
    """The raw event list as the messages of a mido track, made one at a time while mido's writer
    iterates it (``MidiFile.save`` only iterates a track), so a save never holds the recording as
    objects. Delta times; a tick earlier than the one before it is moved up to it."""

    def __init__(self, ticks: array, sizes: bytes, data: bytes, metas: list[mido.MetaMessage]) -> None:
        self.ticks, self.sizes, self.data, self.metas = ticks, sizes, data, metas

    def __iter__(self) -> Iterator[mido.Message | mido.MetaMessage]:
        last = offset = meta = 0
        for tick, size in zip(self.ticks, self.sizes):
            tick = max(tick, last)
            delta, last = tick - last, tick
            if size:
                yield mido.Message.from_bytes(self.data[offset:offset + size], time=delta)
                offset += size
            else:
                yield self.metas[meta].copy(time=delta)
                meta += 1


def reason(error: OSError) -> str:
    """A few words for an I/O error: ``disk full``, ``I/O error``, ``folder vanished``, ..."""
    return REASONS.get(error.errno, error.strerror or type(error).__name__)


class Recorder:
    """Thread-safe standard MIDI file writer; see the module docstring.

    ``path`` is created with its folder; an ``OSError`` from that first write is raised (the
    caller says the recording is off). ``failed`` holds the current I/O problem or ``None``.
    """

    def __init__(self, path: str | os.PathLike, bpm: float = 120.0, clock=time.monotonic) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._ticks = array("Q")  # the raw event list, compact (a few bytes an event for long shows):
        self._sizes = bytearray()  # message length per event, 0 for a meta event from _metas
        self._data = bytearray()  # the messages' bytes, back to back
        self._metas: list[mido.MetaMessage] = []
        self._dirty = True
        self._save_s = 0.0
        self._next_try = 0.0
        self._retry_s = RETRY_S
        self.failed: str | None = None
        self.position = 0.0
        self.events = 0
        self.closed = False
        self._meta(mido.MetaMessage("time_signature", numerator=4, denominator=4,
                                    clocks_per_click=24, notated_32nd_notes_per_beat=8))
        self._meta(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write()

    def _tick(self) -> int:
        return int(round(self.position * TICKS_PER_BEAT))

    def _meta(self, meta: mido.MetaMessage) -> None:
        with self._lock:
            self._ticks.append(self._tick())
            self._sizes.append(0)
            self._metas.append(meta)
            self._dirty = True

    def event(self, message: list[int]) -> None:
        """Record a channel message at the current ``position`` (system messages are skipped)."""
        if self.closed or not message or message[0] >= 0xF0:
            return
        with self._lock:
            self._ticks.append(self._tick())
            self._sizes.append(len(message))
            self._data.extend(message)
            self.events += 1
            self._dirty = True

    def set_tempo(self, bpm: float) -> None:
        """Record a tempo change at the current ``position``."""
        self._meta(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm)))

    def flush_due(self) -> None:
        """Flush unless saves would take more than ``SAVE_SHARE`` of the time, or a retry is not due."""
        if self._clock() >= self._next_try:
            self.flush()

    def flush(self) -> None:
        """Write the whole file now if anything changed; I/O errors are reported, never raised."""
        if self.failed is not None and self._clock() < self._next_try:
            return
        try:
            self._write()
        except OSError as error:
            self._failed(error)
            return
        if self.failed is not None:
            log.warning("recording resumed: %s (%d events)", self.path, self.events)
            self.failed = None
            self._retry_s = RETRY_S

    def _write(self) -> None:
        t0 = self._clock()
        with self._lock:
            if not self._dirty:
                return
            ticks, sizes, data, metas = array("Q", self._ticks), bytes(self._sizes), bytes(self._data), list(self._metas)
            self._dirty = False
        midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_BEAT)
        midi.tracks.append(RawTrack(ticks, sizes, data, metas))
        tmp = self.path.with_name(self.path.name + ".part")
        try:
            if self.failed == "folder vanished":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as handle:
                midi.save(file=handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError:
            with self._lock:
                self._dirty = True
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass  # the folder is gone or unreadable: there is no .part to leave behind
            raise
        self._save_s = self._clock() - t0
        self._next_try = self._clock() + self._save_s / SAVE_SHARE

    def _failed(self, error: OSError) -> None:
        why = reason(error)
        if self.failed != why:
            log.error("recording stopped: %s (%s); playing on, the file keeps its last good save, "
                      "retrying", why, self.path)
        self.failed = why
        self._next_try = self._clock() + self._retry_s
        self._retry_s = min(RETRY_MAX_S, self._retry_s * 2)

    def close(self) -> None:
        """Final flush (one more try even while failing); later events are ignored."""
        self._next_try = 0.0
        self.flush()
        self.closed = True
