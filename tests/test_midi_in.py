"""MIDI in (live.control.midiin, live.control.midimap) against the real server: a separate
python-rtmidi process plays a controller and a keyboard into ``Vis2Mus in`` through a private JACK
server, a JACK peer receives the output, and OSC feedback comes back over UDP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from pythonosc.osc_message import OscMessage

from tests.support.jackrig import (CALM_PERIOD, JackServer, Peer, connect, jackd_available, released, wait_for_notes,
                                   wait_for_port)
from tests.support.polling import stays_true
from live.control import midimap
from live.control.midimap import Binding, MapError
from live.control.osc import encode
from live.control.params import Params
from tests.test_live_server import Server as LiveServer

ROOT = Path(__file__).resolve().parent.parent
needs_jack = pytest.mark.skipif(not jackd_available(), reason="jackd not installed (apt-get install jackd2)")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The controller: a python-rtmidi JACK output in its own process. Reads lines from stdin:
# "send B1 B2 ..." (one message), "flood N RATE CC" (N CC messages at RATE/s, values ramping,
# ending on 127 - the last value), "sysex N SIZE" (N system exclusive messages), "quit".
SENDER = r"""
import sys, time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="ctl")
out.open_virtual_port("out")
print("ready", flush=True)
for line in sys.stdin:
    word, *args = line.split()
    if word == "quit":
        break
    if word == "send":
        out.send_message([int(a) for a in args])
    elif word == "flood":
        n, rate, cc = int(args[0]), float(args[1]), int(args[2])
        t0 = time.perf_counter()
        for k in range(n):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0.001:
                time.sleep(delay)
            out.send_message([0xB0, cc, 127 if k == n - 1 else k % 127])
    elif word == "sysex":
        for _ in range(int(args[0])):
            out.send_message([0xF0] + [0x11] * int(args[1]) + [0xF7])
    print("done", flush=True)
"""


class Controller:
    """The sender process (``ctl:out``), connected to the server's MIDI input."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SENDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def command(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "done"

    def send(self, *data: int) -> None:
        self.command("send " + " ".join(str(b) for b in data))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)


class Server(LiveServer):
    """``python run_live.py`` with MIDI in and a UDP socket that receives its OSC feedback."""

    def __init__(self, tmp: Path, *args: str) -> None:
        super().__init__(tmp, *args)
        self.osc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.osc.bind(("127.0.0.1", 0))
        self.osc.settimeout(0.1)
        self.state: dict[str, object] = {}
        self.errors: list[str] = []

    def send(self, address: str, *values: object) -> None:
        self.osc.sendto(encode(address, *values), ("127.0.0.1", self.osc_port))

    def receive(self) -> None:
        """Read the feedback that has arrived (state and errors)."""
        while True:
            try:
                data = self.osc.recv(65536)
            except (socket.timeout, BlockingIOError):
                return
            message = OscMessage(data)
            if message.address.startswith("/vis2mus/state/"):
                self.state[message.address[len("/vis2mus/state/"):]] = message.params[0]
            elif message.address == "/vis2mus/error":
                self.errors.append(message.params[0])

    def until(self, condition, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.receive()
            if condition(self.state):
                return True
        return False

    def terminate(self) -> int:
        try:
            return super().terminate()
        finally:
            self.osc.close()

    def kill(self) -> None:
        """End the server if a test left it running: SIGTERM first, so that its JACK clients close
        and the JACK server can shut down cleanly (a JACK server killed hard keeps its slot in the
        machine-wide JACK registry, which has room for eight)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.osc.close()


@pytest.fixture
def rig(tmp_path):
    """A JACK server (by default a long period: every note-off counts), the output peer, the
    controller and the server, started by ``start(*server_args, period=...)``."""
    made = []

    def start(*args: str, period: int = CALM_PERIOD) -> tuple[Server, Peer, Controller]:
        jack = JackServer(f"v2mmidi{os.getpid()}", period=period).start()
        made.append(jack)
        peer = Peer("peer")
        srv = Server(tmp_path, "--midi-port", peer.port, *args)
        made.append(srv)
        srv.wait_for("recording")
        assert wait_for_port("Vis2Mus in:in"), srv.output()
        ctl = Controller()
        made.append(ctl)
        assert connect("ctl:out", "Vis2Mus in:in")
        srv.send("/vis2mus/state")  # registers the feedback socket
        assert srv.until(lambda s: "brightness" in s), srv.output()
        made.append(peer)
        return srv, peer, ctl

    yield start
    for thing in reversed(made):
        if isinstance(thing, Server):
            thing.kill()
        elif isinstance(thing, JackServer):
            thing.stop()
        else:
            thing.close()


# The CC map (no JACK needed)

def test_default_map_reaches_every_kind_of_control():
    controls = {b.control for b in midimap.DEFAULT_MAP}
    assert {"brightness", "contrast", "tempo", "velocity", "anchor", "quantum", "play", "stop", "panic"} <= controls
    by_control = {b.control: b for b in midimap.DEFAULT_MAP}
    assert midimap.value_of(by_control["brightness"], 0, 4) == [-1.0]
    assert midimap.value_of(by_control["brightness"], 127, 4) == [1.0]
    assert midimap.value_of(by_control["anchor"], 127, 4) == [3]
    assert midimap.value_of(by_control["quantum"], 127, 4) == ["segment"]
    assert midimap.value_of(by_control["velocity"], 64, 4) == [64]
    assert midimap.value_of(Binding("tempo", 1, low=60.0, high=180.0, curve="exp"), 64, 4)[0] < 120.0


def test_cc_map_round_trips_through_toml_and_saves_atomically_with_a_backup(tmp_path):
    path = tmp_path / "live.toml"
    path.write_text('bpm = 96\n\n[presets.1]\nanchor = "arpeggios"\n\n[midi.cc]\nbrightness = { cc = 7 }\n')
    bindings = (Binding("tempo", 22, channel=0, low=60.0, high=180.0, curve="log"), Binding("play", 41))
    backup = midimap.save_map(str(path), bindings)
    data = tomllib.loads(path.read_text())
    assert data["bpm"] == 96 and data["presets"]["1"]["anchor"] == "arpeggios"
    assert midimap.parse_map(data["midi"]["cc"]) == bindings
    assert "brightness = { cc = 7 }" in Path(backup).read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".vis2mus-")] == []


@pytest.mark.parametrize("table, fragment", [
    ({"brightness": {"cc": 128}}, "cc must be 0..127"),
    ({"brightness": {"cc": 1, "channel": 0}}, "channel must be 1..16"),
    ({"brightness": {"cc": 1, "range": [-2, 1]}}, "outside -1..1"),
    ({"brightness": {"cc": 1, "curve": "cubic"}}, "curve must be one of"),
    ({"chords": {"cc": 1}}, "cannot be mapped"),
    ({"tempo": {"cc": 1, "speed": 2}}, "unknown key"),
])
def test_bad_cc_map_entries_are_one_line_errors(table, fragment):
    with pytest.raises(MapError, match=fragment) as error:
        midimap.parse_map(table)
    assert "\n" not in str(error.value)


def test_hostile_input_is_counted_and_the_last_value_wins_without_a_port(caplog):
    from live.control.midiin import MidiIn

    caplog.set_level("WARNING", logger="live.control.midiin")
    params = Params(["a", "b"])
    midi_in = MidiIn(params, bindings=midimap.DEFAULT_MAP).start()
    try:
        for message in ([0x45, 0x12], [], [0xF0, 1, 2, 0xF7], [0xB0, 20], [0xB0, 200, 1], [0xC0, 99]):
            midi_in.feed(message)
        for k in range(3000):
            midi_in.feed([0xB0, 20, k % 100])
        midi_in.feed([0xB0, 20, 127])
        deadline = time.monotonic() + 5
        while params.snapshot().alpha_b != 1.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert params.snapshot().alpha_b == 1.0
    finally:
        midi_in.close()
    assert midi_in.applied < 300, "a flood is coalesced, not applied message by message"
    lines = " ".join(r.getMessage() for r in caplog.records)
    for fragment in ("data bytes without a status byte", "system exclusive", "wrong length", "empty", "no preset 99"):
        assert fragment in lines, lines


# Against the running server

@pytest.mark.jack
@pytest.mark.slow
@needs_jack
def test_cc_program_change_and_learn_reach_the_state_and_the_config(rig, tmp_path):
    config = tmp_path / "live.toml"
    config.write_text('[presets.2]\nanchor = "arpeggios"\nbrightness = -0.5\n\n'
                      '[midi.cc]\nbrightness = { cc = 20 }\ntempo = { cc = 22, channel = 1, range = [60, 180] }\n')
    srv, peer, ctl = rig("--config", str(config), "--bpm", "200", "--anchor", "block_chords")
    wait_for_notes(peer, 4)
    ctl.send(0xB0, 20, 127)
    assert srv.until(lambda s: s.get("brightness") == pytest.approx(1.0)), (srv.state, srv.output()[-2000:])
    ctl.send(0xB0, 22, 0)  # channel 1: mapped
    assert srv.until(lambda s: s.get("tempo") == pytest.approx(60.0)), srv.state
    ctl.send(0xB1, 22, 127)  # channel 2: not mapped, the tempo stays
    ctl.send(0xC0, 2)
    assert srv.until(lambda s: s.get("preset") == 2 and s.get("anchor") == "arpeggios"), srv.state
    assert srv.state["tempo"] == pytest.approx(60.0) and srv.state["brightness"] == pytest.approx(-0.5)
    srv.send("/vis2mus/learn", "contrast")
    srv.wait_for("MIDI learn: move a control")
    ctl.send(0xB3, 70, 0)
    assert srv.until(lambda s: s.get("contrast") == pytest.approx(-1.0)), (srv.state, srv.output()[-2000:])
    srv.send("/vis2mus/learn/save")
    srv.wait_for("MIDI map saved")
    saved = tomllib.loads(config.read_text())
    assert saved["midi"]["cc"]["contrast"] == {"cc": 70, "channel": 4}
    assert saved["presets"]["2"]["anchor"] == "arpeggios"
    assert "contrast" not in tomllib.loads((tmp_path / "live.toml.bak").read_text())["midi"]["cc"]
    srv.send("/vis2mus/learn", "chords")
    assert srv.until(lambda s: any("cannot learn" in e for e in srv.errors), 5), srv.errors
    assert srv.terminate() == 0
    assert released(peer), srv.output()[-2000:]


@pytest.mark.jack
@pytest.mark.slow
@needs_jack
def test_keys_set_the_chords_the_melody_passes_through_and_release_returns(rig):
    srv, peer, ctl = rig("--bpm", "200", "--chord-hold", "0.5", "--thru-channel", "3", "--quantum", "beat")
    for pitch in (48, 52, 55):  # C E G below the split
        ctl.send(0x90, pitch, 90)
    assert srv.until(lambda s: s.get("chords") == "C:maj"), (srv.state, srv.output()[-2000:])
    ctl.send(0x92, 72, 100)  # the melody channel: out unchanged
    deadline = time.monotonic() + 5
    while not any(m == [0x92, 72, 100] for _, m in peer.snapshot()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(m == [0x92, 72, 100] for _, m in peer.snapshot())
    ctl.send(0x82, 72, 0)
    for pitch in (48, 52, 55):
        ctl.send(0x80, pitch, 0)
    assert srv.until(lambda s: s.get("chords") == "", 5), srv.state
    ctl.send(0x90, 45, 90)
    ctl.send(0x90, 48, 90)
    ctl.send(0x90, 52, 90)  # A C E
    assert srv.until(lambda s: s.get("chords") == "A:min"), srv.state
    assert srv.terminate() == 0
    assert released(peer), srv.output()[-2000:]


@pytest.mark.jack
@pytest.mark.slow
@needs_jack
def test_a_hostile_midi_flood_is_reported_rate_limited_and_the_music_goes_on(rig):
    srv, peer, ctl = rig("--bpm", "200")
    wait_for_notes(peer, 4)
    ctl.command("sysex 2000 200")
    ctl.send(0x12, 0x34)  # running-status garbage: data bytes without a status byte
    before = len(peer.note_ons())
    t0 = time.monotonic()
    ctl.command("flood 20000 10000 20")  # 2 s of 10 k CC/s on brightness, ending on 127
    assert srv.until(lambda s: s.get("brightness") == pytest.approx(1.0), 10), srv.state
    wait_for_notes(peer, before + 8, timeout=10)
    elapsed = time.monotonic() - t0
    lines = [line for line in srv.output().splitlines() if "MIDI in:" in line]
    assert lines and any("system exclusive" in line for line in lines), srv.output()[-3000:]
    assert len(lines) <= elapsed / 1.0 + 3, lines
    assert srv.terminate() == 0
    assert released(peer), srv.output()[-2000:]


def phase_ms(times: list[float], origin: float, step_s: float) -> float:
    """Median arrival phase within the sixteenth-step grid, in ms (wrapped around ``origin``'s phase)."""
    import numpy as np

    phase = (np.asarray(times) - origin + step_s / 2) % step_s - step_s / 2
    return float(np.median(phase) * 1000.0)


@pytest.mark.jack
@pytest.mark.slow
@needs_jack
def test_a_preset_midi_offset_shifts_every_note_at_the_peer(rig, tmp_path):
    config = tmp_path / "live.toml"
    config.write_text('[presets.1]\nanchor = "block_chords"\nmidi_offset = 40\n')
    bpm, step_s = 150.0, 60.0 / 150.0 / 4
    srv, peer, ctl = rig("--config", str(config), "--bpm", str(bpm), "--anchor", "block_chords", period=128)
    wait_for_notes(peer, 40)
    switched = time.perf_counter()
    ctl.send(0xC0, 1)
    assert srv.until(lambda s: s.get("preset") == 1), srv.state
    count = len(peer.note_ons())
    wait_for_notes(peer, count + 40)
    ons = [t for t, *_ in peer.note_ons()]
    before = [t for t in ons if t < switched]
    after = [t for t in ons if t > switched + 0.5]
    shift = phase_ms(after, before[0], step_s) - phase_ms(before, before[0], step_s)
    assert abs(shift - 40.0) < 3.0, shift
    assert srv.terminate() == 0  # (every note-off is counted by the tests on CALM_PERIOD)


def test_keys_make_a_chord_on_key_down_and_release_returns_after_the_hold():
    from live.control.midiin import MidiIn

    params = Params(["a"])
    through: list[list[int]] = []
    midi_in = MidiIn(params, chord_split=60, chord_hold=0.3, thru_channel=2, thru=through.append).start()

    def until(condition, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        return condition()

    try:
        for pitch in (50, 53, 57):  # D F A
            midi_in.feed([0x90, pitch, 80])
        assert until(lambda: params.snapshot().chords == "D:min"), params.snapshot()
        midi_in.feed([0x90, 72, 80])  # above the split: ignored
        midi_in.feed([0x92, 74, 90])  # the melody channel: passed through, not a chord key
        midi_in.feed([0x80, 57, 0])
        midi_in.feed([0x80, 53, 0])
        assert until(lambda: through == [[0x92, 74, 90]])
        assert stays_true(lambda: params.snapshot().chords == "D:min", 0.5), "releasing some keys keeps the chord"
        midi_in.feed([0x90, 50, 0])  # note-on velocity 0 = note-off: the last key goes
        released = time.monotonic()
        assert until(lambda: params.snapshot().chords is None)
        assert time.monotonic() - released >= 0.25, "the chord is held for chord_hold after the release"
        for pitch in (43, 47, 50, 53):  # G B D F
            midi_in.feed([0x90, pitch, 80])
        assert until(lambda: params.snapshot().chords == "G:7"), params.snapshot()
        params.set_chords("C Am F G")  # an OSC progression meanwhile: the keys' release leaves it
        for pitch in (43, 47, 50, 53):
            midi_in.feed([0x80, pitch, 0])
        assert stays_true(lambda: params.snapshot().chords == "C Am F G", 0.6)
    finally:
        midi_in.close()


def test_learn_binds_the_next_cc_and_replaces_the_old_binding():
    from live.control.midiin import MidiIn

    params = Params(["a", "b", "c"])
    midi_in = MidiIn(params).start()
    try:
        with pytest.raises(ValueError, match="cannot learn"):
            midi_in.learn("style")
        midi_in.learn("anchor")
        assert "learn anchor" in midi_in.status
        midi_in.feed([0xB5, 20, 127])  # CC 20 was brightness in the default map; now it is the anchor
        deadline = time.monotonic() + 5
        while params.snapshot().anchor != "c" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert params.snapshot().anchor == "c" and params.snapshot().alpha_b == 0.0
        assert Binding("anchor", 20, 5) in midi_in.bindings
        assert not [b for b in midi_in.bindings if b.control in ("anchor", "brightness") and b != Binding("anchor", 20, 5)]
        midi_in.feed([0xB0, 20, 0])  # another channel: not the learned binding
        assert stays_true(lambda: params.snapshot().anchor == "c", 0.2)
        with pytest.raises(ValueError, match="no --config"):
            midi_in.save(None)
    finally:
        midi_in.close()


@pytest.mark.jack
@pytest.mark.slow
@needs_jack
def test_the_midi_input_comes_back_after_the_jack_server_restarts(tmp_path):
    name = f"v2mback{os.getpid()}"
    jack = JackServer(name, period=CALM_PERIOD).start()
    srv = Server(tmp_path, "--bpm", "200")
    ctl = None
    try:
        srv.wait_for("recording")
        assert wait_for_port("Vis2Mus in:in"), srv.output()
        jack.stop()
        srv.wait_for("MIDI input lost: JACK server gone")
        jack = JackServer(name, period=CALM_PERIOD).start()
        srv.wait_for("MIDI input back")
        assert wait_for_port("Vis2Mus in:in"), srv.output()
        ctl = Controller()
        assert connect("ctl:out", "Vis2Mus in:in")
        srv.send("/vis2mus/state")
        assert srv.until(lambda s: "brightness" in s), srv.output()
        ctl.send(0xB0, 21, 127)
        assert srv.until(lambda s: s.get("contrast") == pytest.approx(1.0)), (srv.state, srv.output()[-2000:])
        assert srv.terminate() == 0
    finally:
        if ctl is not None:
            ctl.close()
        srv.kill()
        jack.stop()


def test_keys_on_the_status_terminal_arm_learn_in_turn_and_save(tmp_path, monkeypatch):
    import pty

    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mabsent{os.getpid()}")  # no MIDI backend: the keys still work
    config = tmp_path / "live.toml"
    config.write_text("bpm = 110\n")
    master, slave = pty.openpty()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "run_live.py", "--config", str(config), "--osc-port", str(free_udp_port()),
                                 "--no-record", "--status", "line", "--midi-api", "jack"],
                                cwd=ROOT, stdin=slave, stdout=log, stderr=subprocess.STDOUT)
    os.close(slave)

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while text not in log_path.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)

    try:
        wait_for("keys: l = MIDI learn")
        os.write(master, b"l")
        wait_for(f"map it to {midimap.MAPPABLE[0]}")
        os.write(master, b"l")
        wait_for(f"map it to {midimap.MAPPABLE[1]}")
        os.write(master, b"s")
        wait_for("MIDI map saved")
        assert tomllib.loads(config.read_text())["midi"]["cc"]["brightness"] == {"cc": 20}
        assert tomllib.loads(config.read_text())["bpm"] == 110
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        os.close(master)
