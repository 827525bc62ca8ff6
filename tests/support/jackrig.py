"""A private JACK server and a JACK MIDI peer that records what it receives, with arrival times.

Used by the live tests and benchmarks: ``JackServer(name)`` runs ``jackd -n NAME --no-realtime -d
dummy`` (so teammates' servers are untouched) and sets ``JACK_DEFAULT_SERVER`` for child processes;
``Peer(name)`` is a python-rtmidi JACK input port ``NAME:in`` whose callback stores
``(perf_counter, message)``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import rtmidi

NOTE_ON, NOTE_OFF, CONTROL = 0x90, 0x80, 0xB0
# The period (frames) of the servers in tests that count every note-off: the no-realtime dummy driver
# drops MIDI events in xruns on a busy machine, far less often with long periods (21 ms at 48 kHz).
CALM_PERIOD = 1024


def jackd_available() -> bool:
    return shutil.which("jackd") is not None


class JackServer:
    """``jackd -n name --no-realtime -d dummy -r 48000 -p period``; a context manager.

    ``realtime`` runs ``jackd -R`` instead (SCHED_FIFO; needs the privilege, else jackd fails).
    """

    def __init__(self, name: str, period: int = 128, rate: int = 48000, realtime: bool = False) -> None:
        self.name = name
        self.period = period
        self.rate = rate
        self.realtime = realtime
        self.proc: subprocess.Popen | None = None
        self._previous = os.environ.get("JACK_DEFAULT_SERVER")

    def socket_path(self) -> str:
        return f"/dev/shm/jack_{self.name}_{os.getuid()}_0"

    def start(self) -> "JackServer":
        os.environ["JACK_DEFAULT_SERVER"] = self.name
        self.proc = subprocess.Popen(
            ["jackd", "-n", self.name, "-R" if self.realtime else "--no-realtime", "-d", "dummy",
             "-r", str(self.rate), "-p", str(self.period)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket_path()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jackd -n {self.name} did not start")
            time.sleep(0.05)
        while subprocess.run(["jack_lsp"], capture_output=True, env={**os.environ, "JACK_NO_START_SERVER": "1"}).returncode:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"jackd -n {self.name} does not take clients")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:  # a jackd killed hard keeps its slot in the machine-wide JACK registry (eight slots)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = self._previous

    def __enter__(self) -> "JackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def connect(source: str, destination: str) -> bool:
    """``jack_connect source destination``; True on success."""
    return subprocess.run(["jack_connect", source, destination], capture_output=True).returncode == 0


def ports() -> list[str]:
    """``jack_lsp`` output lines."""
    out = subprocess.run(["jack_lsp"], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def wait_for_port(name: str, timeout: float = 20.0) -> bool:
    """Wait until a JACK port named ``name`` exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in ports():
            return True
        time.sleep(0.1)
    return False


class Peer:
    """A JACK MIDI input ``client:in`` recording ``(perf_counter, [bytes])`` per message."""

    def __init__(self, client: str = "peer") -> None:
        self.client = client
        self.messages: list[tuple[float, list[int]]] = []
        self._lock = threading.Lock()
        self.midi_in = rtmidi.MidiIn(rtmidi.API_UNIX_JACK, name=client)
        self.midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
        self.midi_in.set_callback(self._on_message)
        self.midi_in.open_virtual_port("in")

    @property
    def port(self) -> str:
        return f"{self.client}:in"

    def _on_message(self, event, _data=None) -> None:
        with self._lock:
            self.messages.append((time.perf_counter(), list(event[0])))

    def snapshot(self) -> list[tuple[float, list[int]]]:
        with self._lock:
            return list(self.messages)

    def note_ons(self) -> list[tuple[float, int, int, int]]:
        """``(time, channel, pitch, velocity)`` of every note-on with velocity > 0."""
        return [(t, m[0] & 15, m[1], m[2]) for t, m in self.snapshot()
                if len(m) == 3 and m[0] & 0xF0 == NOTE_ON and m[2] > 0]

    def held(self) -> set[tuple[int, int]]:
        """Keys ``(channel, pitch)`` with more note-ons than note-offs (a doubled note stays held)."""
        keys: dict[tuple[int, int], int] = {}
        for _, m in self.snapshot():
            if len(m) != 3:
                continue
            kind, ch = m[0] & 0xF0, m[0] & 15
            if kind == NOTE_ON and m[2] > 0:
                keys[(ch, m[1])] = keys.get((ch, m[1]), 0) + 1
            elif kind == NOTE_OFF or (kind == NOTE_ON and m[2] == 0):
                if keys.get((ch, m[1]), 0) > 0:
                    keys[(ch, m[1])] -= 1
        return {k for k, n in keys.items() if n > 0}

    def sounding(self) -> set[tuple[int, int]]:
        """Held keys as a synth hears them: those whose channel got no CC 123 (all notes off) after
        their last note-on. The dummy JACK driver can drop an event in an xrun on a busy machine;
        a final CC 123 covers such a lost note-off, as it does at a real synth."""
        last_on: dict[tuple[int, int], int] = {}
        cleared: dict[int, int] = {}
        for i, (_, m) in enumerate(self.snapshot()):
            if len(m) == 3 and m[0] & 0xF0 == NOTE_ON and m[2] > 0:
                last_on[(m[0] & 15, m[1])] = i
            elif len(m) == 3 and m[0] & 0xF0 == CONTROL and m[1] == 123:
                cleared[m[0] & 15] = i
        return {key for key in self.held() if cleared.get(key[0], -1) < last_on.get(key, -1)}

    def close(self) -> None:
        self.midi_in.close_port()
        self.midi_in.delete()


def wait_for_notes(peer: "Peer", count: int, timeout: float = 30.0) -> None:
    """Wait until the peer has received ``count`` note-ons; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while len(peer.note_ons()) < count:
        assert time.monotonic() < deadline, f"only {len(peer.note_ons())} note-ons arrived"
        time.sleep(0.05)


def released(peer: "Peer", timeout: float = 3.0) -> bool:
    """Wait until the peer holds no key (the last note-offs may still be in the JACK graph)."""
    deadline = time.monotonic() + timeout
    while peer.held() and time.monotonic() < deadline:
        time.sleep(0.02)
    return peer.held() == set()


def note_steps(messages, first_tick: float, step_s: float) -> dict[int, list[int]]:
    """Peer messages ``(time, bytes)`` -> the sorted pitches struck at each step, the step from the
    arrival time against ``first_tick`` (the first MIDI clock tick, sent with step 0), so a tick or
    note lost in a JACK xrun does not shift the count."""
    played: dict[int, list[int]] = {}
    for t, m in messages:
        if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0 and t >= first_tick:
            played.setdefault(int(round((t - first_tick) / step_s)), []).append(m[1])
    return {step: sorted(pitches) for step, pitches in played.items()}
