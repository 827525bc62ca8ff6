"""MIDI output: a python-rtmidi port with open-note tracking, panic and port-loss recovery.

``MidiOut`` opens a virtual output port (default name ``Vis2Mus``) or, with ``port``, connects to
an existing input port whose name contains that text. Every event also goes to the optional
``recorder`` (``live.playback.recorder.Recorder``), so the recording goes on when no MIDI backend works.

Open notes are tracked per ``(channel, pitch)`` with a token: a note-off scheduled for a note that a
later note-on (or a panic) already ended is dropped, so a key is never released twice or left held.
Closing the port repeats, to the port alone, the note-offs of the last panic and CC 123 once the
first ones had time to go out: a no-realtime JACK client drops the events of a period it misses,
and a lost closing burst would leave the synth's keys down for good.
A watchdog (``check()``, called about twice a second by the server) notices a JACK server that went
away, a connected peer that vanished, or one that came back, and reopens the port.
"""

from __future__ import annotations

import logging
import threading
import time

import rtmidi

from live.midiports import FIX_HINT, PEER_MISSES, api_candidates, jack_server_stamp, list_ports, quiet_stderr

log = logging.getLogger(__name__)

NOTE_OFF = 0x80
NOTE_ON = 0x90
CONTROL = 0xB0
ALL_NOTES_OFF = 123
CLOSE_GRACE_S = 0.3  # let the backend deliver the last events before the port goes (a busy JACK graph can lag a few periods)


class MidiOut:
    """Thread-safe MIDI sender with open-note tracking; see the module docstring."""

    def __init__(self, api: str = "auto", port: str | None = None, name: str = "Vis2Mus",
                 recorder=None) -> None:
        self.api = api
        self.port = port
        self.name = name
        self.recorder = recorder
        self._lock = threading.RLock()
        self._open: dict[tuple[int, int], int] = {}
        self._token = 0
        self._used_channels: set[int] = set()
        self._released: set[tuple[int, int]] = set()
        self._out = None
        self._api_id: int | None = None
        self._jack_stamp: tuple[int, int] | None = None
        self._misses = 0
        self.description = "none"
        self.sent = 0
        self._open_port(announce=True)

    # Port handling

    @property
    def connected(self) -> bool:
        return self._out is not None

    def _open_port(self, announce: bool) -> bool:
        errors = []
        for api_id in api_candidates(self.api):
            try:
                with quiet_stderr():
                    out = rtmidi.MidiOut(api_id, name=self.name)
                    if self.port is None:
                        out.open_virtual_port("out")
                        where = f"virtual output '{self.name}:out'"
                    else:
                        ports = out.get_ports()
                        match = [i for i, p in enumerate(ports) if self.port in p]
                        if not match:
                            errors.append(f"{rtmidi.get_api_name(api_id)}: no port matching {self.port!r}")
                            out.delete()
                            continue
                        out.open_port(match[0], "out")
                        where = f"connected to '{ports[match[0]]}'"
            except Exception as exc:  # rtmidi backends raise SystemError/RtMidiError subclasses
                errors.append(f"{rtmidi.get_api_name(api_id)}: {str(exc).strip()}")
                continue
            with self._lock:
                self._out = out
                self._api_id = api_id
                self._jack_stamp = jack_server_stamp() if api_id == rtmidi.API_UNIX_JACK else None
                self.description = f"{rtmidi.get_api_name(api_id)} {where}"
            return True
        if announce:
            log.warning(f"no MIDI output ({'; '.join(errors) or 'no backend compiled'}); "
                      f"to fix: {FIX_HINT}. Playing on into the recording only.")
        self.description = "none (recording only)"
        return False

    def _drop_port(self, reason: str) -> None:
        with self._lock:
            out, self._out = self._out, None
            self._open.clear()
            self.description = f"lost ({reason})"
        log.warning(f"MIDI port lost: {reason}; held notes closed, retrying")
        if out is not None and reason != "JACK server gone":
            try:
                out.close_port()
                out.delete()
            except Exception:  # the backend is already broken; nothing more to release
                pass

    def check(self) -> None:
        """Watchdog step: detect a lost JACK server or peer and reopen when possible.

        Held notes get their note-offs before the port is dropped (they reach the peer if it is in
        fact still there, and the recording in any case). A peer counts as gone after
        ``PEER_MISSES`` listings in a row without it, so one slow listing never cuts the music.
        """
        with self._lock:
            out, api_id, stamp = self._out, self._api_id, self._jack_stamp
        if out is not None:
            if api_id == rtmidi.API_UNIX_JACK and jack_server_stamp() != stamp:
                self.all_off()
                self._drop_port("JACK server gone")
            elif self.port is not None:
                present = any(self.port in p for p in list_ports(out, api_id))
                self._misses = 0 if present else self._misses + 1
                if self._misses >= PEER_MISSES:
                    self.all_off()
                    self._drop_port(f"peer {self.port!r} gone")
            return
        if self._open_port(announce=False):
            self._misses = 0
            log.warning(f"MIDI port back: {self.description}")

    # Sending

    def _send(self, message: list[int]) -> None:
        if self._out is not None:
            try:
                self._out.send_message(message)
            except Exception as exc:  # a failing backend must not stop the send thread
                log.warning(f"MIDI send failed: {exc}")
        if self.recorder is not None:
            self.recorder.event(message)
        self.sent += 1

    def note_on(self, channel: int, pitch: int, velocity: int) -> int:
        """Send a note-on (ending the same key first if it is still held); returns the note's token."""
        with self._lock:
            key = (channel, pitch)
            if key in self._open:
                self._send([NOTE_OFF | channel, pitch, 0])
            self._token += 1
            self._open[key] = self._token
            self._used_channels.add(channel)
            self._send([NOTE_ON | channel, pitch, max(1, min(127, int(velocity)))])
            return self._token

    def note_off(self, channel: int, pitch: int, token: int | None = None) -> bool:
        """Send a note-off if the key is held (and, with ``token``, still by that note)."""
        with self._lock:
            key = (channel, pitch)
            held = self._open.get(key)
            if held is None or (token is not None and held != token):
                return False
            del self._open[key]
            self._send([NOTE_OFF | channel, pitch, 0])
            return True

    def send(self, message: list[int]) -> None:
        """Send a raw message (MIDI clock, start/stop)."""
        with self._lock:
            self._send(message)

    def open_notes(self) -> list[tuple[int, int]]:
        """Held keys ``(channel, pitch)``."""
        with self._lock:
            return sorted(self._open)

    def all_off(self) -> int:
        """Note-off for every held key; returns how many were sent."""
        with self._lock:
            keys = sorted(self._open)
            for channel, pitch in keys:
                self.note_off(channel, pitch)
            return len(keys)

    def panic(self, channels=None) -> int:
        """All notes off: note-offs for held keys, then CC 123 on every used channel (or ``channels``)."""
        with self._lock:
            if self._open:
                self._released = set(self._open)
            count = self.all_off()
            for channel in sorted(self._used_channels if channels is None else channels):
                self._send([CONTROL | channel, ALL_NOTES_OFF, 0])
            return count

    def close(self) -> None:
        """Panic; after ``CLOSE_GRACE_S`` the note-offs of the last panic and CC 123 again, to the
        port only (the recording has them once); after another ``CLOSE_GRACE_S`` release the port."""
        with self._lock:
            self.panic()
            out, self._out = self._out, None
            repeat = [[NOTE_OFF | channel, pitch, 0] for channel, pitch in sorted(self._released)]
            repeat += [[CONTROL | channel, ALL_NOTES_OFF, 0] for channel in sorted(self._used_channels)]
        if out is not None:
            time.sleep(CLOSE_GRACE_S)
            try:
                for message in repeat:
                    out.send_message(message)
            except Exception:  # the backend broke meanwhile; the port goes below
                pass
            time.sleep(CLOSE_GRACE_S)
            try:
                out.close_port()
                out.delete()
            except Exception:  # closing a port of a dead server
                pass
