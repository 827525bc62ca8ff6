"""MIDI input: controllers and keyboards steer the performance (CC map, learn, presets, chords).

``MidiIn`` opens a virtual input ``<name> in:in`` (default ``Vis2Mus in``) or, with ``port``,
connects to an existing output port whose name contains that text, on the same backends as the
output (``live.midiports.api_candidates``). rtmidi queues what arrives (``QUEUE_MAX``
messages); one thread drains that queue every ``BATCH_S`` (no Python callback per message, so a
flood of 10 k messages a second costs the send thread no GIL hand-overs) and

- control change: through the CC map (``live.control.midimap``) to the control's ``Params`` call,
  the latest value of each control per batch (coalesced, as the OSC server does); buttons fire on
  each upward crossing of 64. While learning (``learn(control)``) the next CC moved is bound to
  that control instead.
- program change N: ``params.recall(N)`` (the TOML ``[presets.N]``).
- notes on the chord keys (``chord_channel``, or any channel, below ``chord_split``): the held
  keys are recognised as a chord (``live.music.chords.recognize_chords``) and set as the chord
  override (``params.set_chords``, landing at the quantum like ``/vis2mus/chords``) whenever a key
  goes down; ``chord_hold`` seconds after the last key is released, the anchor's chords return.
  Notes on ``thru_channel`` go to ``thru(message)`` unchanged (the melody a player plays).
- anything else: ignored; malformed messages, system exclusive and queue overflow are counted
  and reported in at most one line per ``LOG_EVERY_S``. Nothing stops the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

import numpy as np
import rtmidi

from live.children import Worker
from live.control import midimap
from live.control.midimap import Binding, MapError
from live.control.params import Params
from live.music.chords import recognize_chords
from live.midiports import FIX_HINT, PEER_MISSES, api_candidates, jack_server_stamp, list_ports, quiet_stderr

log = logging.getLogger(__name__)

BATCH_S = 0.005
QUEUE_MAX = 4096
DRAIN_MAX = 20000
LOG_EVERY_S = 1.0
MIN_CHORD_CLASSES = 2
NOTE_OFF, NOTE_ON, CONTROL, PROGRAM = 0x80, 0x90, 0xB0, 0xC0
SYSEX = 0xF0
DATA_LENGTH = {0x80: 3, 0x90: 3, 0xA0: 3, 0xB0: 3, 0xC0: 2, 0xD0: 2, 0xE0: 3}


class MidiIn:
    """See the module docstring. ``start()`` starts the thread; ``close()`` stops it and closes the port."""

    def __init__(self, params: Params, api: str = "auto", port: str | None = None, name: str = "Vis2Mus",
                 bindings: tuple[Binding, ...] = midimap.DEFAULT_MAP, chord_channel: int | None = None,
                 chord_split: int = 60, chord_hold: float = 2.0, thru_channel: int | None = None,
                 thru: Callable[[list[int]], None] | None = None) -> None:
        self.params = params
        self.api = api
        self.port = port
        self.name = f"{name} in"
        self.bindings = tuple(midimap.check_binding(b) for b in bindings)
        self.chord_channel = chord_channel
        self.chord_split = chord_split
        self.chord_hold = float(chord_hold)
        self.thru_channel = thru_channel
        self.thru = thru
        self.description = "none"
        self.learning: str | None = None
        self.received = 0
        self.applied = 0
        self.chord: str | None = None
        self._handlers = midimap.handlers(params)
        self._queue: deque[list[int]] = deque(maxlen=QUEUE_MAX)
        self._lock = threading.Lock()
        self._worker = Worker(self._run, "midi-in")
        self._in = None
        self._port_lock = threading.Lock()
        self._lost = False
        self._api_id: int | None = None
        self._jack_stamp: tuple[int, int] | None = None
        self._misses = 0
        self._last_cc: dict[tuple[int, int], int] = {}
        self._held: dict[int, int] = {}
        self._release_at: float | None = None
        self._complaints: dict[str, int] = {}
        self._complained = -LOG_EVERY_S

    # Port

    def open(self, announce: bool = True) -> bool:
        """Open the input port (one line when no backend works, with ``announce``); True on success."""
        errors = []
        for api_id in api_candidates(self.api):
            try:
                with quiet_stderr():
                    midi_in = rtmidi.MidiIn(api_id, name=self.name, queue_size_limit=QUEUE_MAX)
                    midi_in.ignore_types(sysex=False, timing=True, active_sense=True)
                    if self.port is None:
                        midi_in.open_virtual_port("in")
                        where = f"virtual input '{self.name}:in'"
                    else:
                        ports = midi_in.get_ports()
                        match = [i for i, p in enumerate(ports) if self.port in p]
                        if not match:
                            errors.append(f"{rtmidi.get_api_name(api_id)}: no port matching {self.port!r}")
                            midi_in.delete()
                            continue
                        midi_in.open_port(match[0], "in")
                        where = f"connected to '{ports[match[0]]}'"
            except Exception as exc:  # rtmidi backends raise SystemError/RtMidiError subclasses
                errors.append(f"{rtmidi.get_api_name(api_id)}: {str(exc).strip()}")
                continue
            with self._port_lock:
                self._in = midi_in
            self._api_id = api_id
            self._jack_stamp = jack_server_stamp() if api_id == rtmidi.API_UNIX_JACK else None
            self.description = f"{rtmidi.get_api_name(api_id)} {where}"
            return True
        if announce:
            log.warning("no MIDI input (%s); to fix: %s. Playing on without it.",
                        "; ".join(errors) or "no backend compiled", FIX_HINT)
        self.description = "none"
        return False

    def check(self) -> None:
        """Watchdog step (the server calls it twice a second): a JACK server that went away or a
        ``port`` missing from ``PEER_MISSES`` listings in a row closes the input; it is reopened
        when it can be. Held chord keys are forgotten with the port."""
        with self._port_lock:
            midi_in = self._in
        if midi_in is None:
            if self.open(announce=False):
                log.warning("MIDI input back: %s", self.description)
            return
        reason = None
        if self._api_id == rtmidi.API_UNIX_JACK and jack_server_stamp() != self._jack_stamp:
            reason = "JACK server gone"
        elif self.port is not None:
            present = any(self.port in p for p in list_ports(midi_in, self._api_id))
            self._misses = 0 if present else self._misses + 1
            if self._misses >= PEER_MISSES:
                reason = f"port {self.port!r} gone"
        if reason is None:
            return
        with self._port_lock:  # the input thread never reads a port being closed
            self._in, self._misses, self._lost = None, 0, True
            if reason != "JACK server gone":
                try:
                    midi_in.close_port()
                    midi_in.delete()
                except Exception:  # the backend is already broken
                    pass
        self.description = f"lost ({reason})"
        log.warning("MIDI input lost: %s; retrying", reason)

    def feed(self, message: list[int]) -> None:
        """Queue one raw message as if it had arrived on the port (taken before the port's)."""
        self._queue.append(message)

    def _drain(self) -> list[list[int]]:
        """Up to ``DRAIN_MAX`` queued messages: fed ones first, then the port's."""
        out: list[list[int]] = []
        while self._queue and len(out) < DRAIN_MAX:
            out.append(self._queue.popleft())
        with self._port_lock:
            midi_in = self._in
            while midi_in is not None and len(out) < DRAIN_MAX:
                event = midi_in.get_message()
                if event is None:
                    break
                out.append(event[0])
        return out

    def start(self) -> "MidiIn":
        self._worker.start()
        return self

    def close(self) -> None:
        """Stop the thread and close the port (idempotent)."""
        self._worker.stop()
        with self._port_lock:
            midi_in, self._in = self._in, None
            if midi_in is not None:
                try:
                    midi_in.close_port()
                    midi_in.delete()
                except Exception:  # a port of a dead server
                    pass

    # Learn

    def learn(self, control: object) -> None:
        """Bind the next CC moved to ``control`` (a name from ``midimap.MAPPABLE``); ``ValueError``."""
        if not isinstance(control, str) or control not in midimap.MAPPABLE:
            raise ValueError(f"cannot learn {control!r} (one of {', '.join(midimap.MAPPABLE)})")
        with self._lock:
            self.learning = control
        log.warning("MIDI learn: move a control to map it to %s", control)

    def save(self, path: str | None) -> str:
        """Write the CC map into the config file ``path`` (atomically, ``PATH.bak`` kept); returns
        the line logged. ``ValueError`` without a file or when it cannot be written."""
        if not path:
            raise ValueError("no --config file to save the MIDI map into (start with --config FILE.toml)")
        with self._lock:
            bindings = self.bindings
        try:
            backup = midimap.save_map(path, bindings)
        except MapError as error:
            raise ValueError(str(error)) from None
        line = f"MIDI map saved to {path} ({len(bindings)} controls; previous file in {backup})"
        log.warning("%s", line)
        return line

    @property
    def status(self) -> str:
        """A short text for the status line ('' when there is nothing to show)."""
        parts = []
        if self.learning:
            parts.append(f"learn {self.learning}: move a control")
        if self.chord:
            parts.append(f"keys {self.chord}")
        return "  ".join(parts)

    # The thread

    def _run(self) -> None:
        while not self._worker.stopping.wait(BATCH_S):
            try:
                self._round(time.monotonic())
            except Exception:  # a bug here must not end MIDI input for the rest of the show
                log.exception("MIDI input: unexpected error, messages dropped")

    def _round(self, now: float) -> None:
        values: dict[str, tuple[Binding, int]] = {}
        actions: list[tuple[str, list]] = []
        program: int | None = None
        chord_dirty = False
        if self._lost:  # the port went away: its keys' note-offs will never come
            self._held.clear()
            self._lost = False
        messages = self._drain()
        for message in messages:
            kind = self._classify(message)
            if kind is None:
                continue
            channel = message[0] & 0x0F
            if kind == CONTROL:
                self._control(channel, message[1], message[2], values, actions)
            elif kind == PROGRAM:
                program = message[1]
            elif kind in (NOTE_ON, NOTE_OFF):
                chord_dirty |= self._note(kind, channel, message)
        self.received += len(messages)
        for control, (binding, value) in values.items():
            self._apply(control, midimap.value_of(binding, value, len(self.params.anchors)))
        for control, args in actions:
            self._apply(control, args)
        if program is not None:
            self._apply("preset", [program])
        self._chords(now, chord_dirty)
        self._report(now)

    def _classify(self, message: list[int]) -> int | None:
        if not message:
            self._complain("empty")
            return None
        status = message[0]
        if status < 0x80:
            self._complain("malformed (data bytes without a status byte)")
            return None
        if status == SYSEX:
            self._complain("system exclusive ignored")
            return None
        if status > SYSEX:
            return None  # system common and real time: clock has its own input (--clock-in)
        kind = status & 0xF0
        if len(message) != DATA_LENGTH[kind] or any(b > 0x7F for b in message[1:]):
            self._complain("malformed (wrong length or data byte)")
            return None
        if kind == NOTE_ON and message[2] == 0:
            return NOTE_OFF
        return kind if kind in (CONTROL, PROGRAM, NOTE_ON, NOTE_OFF) else None

    def _control(self, channel: int, cc: int, value: int, values: dict, actions: list) -> None:
        with self._lock:
            learning = self.learning
            if learning is not None:
                learned = Binding(learning, cc, channel)
                self.bindings = tuple(b for b in self.bindings
                                      if b.control != learning and not b.matches(channel, cc)) + (learned,)
                self.learning = None
            bindings = self.bindings
        if learning is not None:
            log.warning("MIDI learn: channel %d CC %d -> %s", channel + 1, cc, learning)
        previous = self._last_cc.get((channel, cc), 0)
        self._last_cc[(channel, cc)] = value
        for binding in bindings:
            if not binding.matches(channel, cc):
                continue
            if binding.control in midimap.BUTTONS:
                if value >= midimap.BUTTON_THRESHOLD > previous:
                    actions.append((binding.control, []))
            else:
                values[binding.control] = (binding, value)

    def _note(self, kind: int, channel: int, message: list[int]) -> bool:
        """Route a note; True when a chord key went down."""
        pitch = message[1]
        if self.thru_channel is not None and channel == self.thru_channel:
            if self.thru is not None:
                self.thru(list(message))
            return False
        if (self.chord_channel is not None and channel != self.chord_channel) or pitch >= self.chord_split:
            return False
        if kind == NOTE_ON:
            self._held[pitch] = message[2]
            return True
        self._held.pop(pitch, None)
        return False

    def _chords(self, now: float, dirty: bool) -> None:
        if dirty and len({p % 12 for p in self._held}) >= MIN_CHORD_CLASSES:
            self._release_at = None
            pitches = sorted(self._held)
            notes = np.array([[0, p, 4, self._held[p]] for p in pitches], dtype=np.int32)
            label = recognize_chords(notes, 1)[0]
            if label != self.chord:
                self.chord = label
                self._apply("chords", [label])
        elif not self._held and self.chord is not None:
            if self._release_at is None:
                self._release_at = now + self.chord_hold
            if now >= self._release_at:
                self._release_at = None
                if self.params.snapshot().chords == self.chord:  # an OSC progression since then stays
                    self._apply("chords/off", [])
                self.chord = None

    def _apply(self, control: str, args: list) -> None:
        try:
            if control == "chords":
                note = self.params.set_chords(args[0]).note
            else:
                note = self._handlers[control](args)
        except ValueError as error:
            self._complain(f"{control}: {error}")
            return
        self.applied += 1
        if note:
            self._complain(f"{control}: {note}")

    # One line per second at most

    def _complain(self, what: str, count: int = 1) -> None:
        self._complaints[what] = self._complaints.get(what, 0) + count

    def _report(self, now: float) -> None:
        if not self._complaints or now - self._complained < LOG_EVERY_S:
            return
        parts = [f"{n} {what}" if n > 1 else what for what, n in self._complaints.items()]
        log.warning("MIDI in: %s", "; ".join(parts))
        self._complaints.clear()
        self._complained = now
