"""The live server as a real subprocess (``python run_live.py``) against a private JACK server,
a JACK MIDI peer, real UDP OSC packets (python sockets and liblo's ``oscsend``) and real files."""

from __future__ import annotations

import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import mido
import numpy as np
import pytest

from live.control.osc import encode
from tests.support.jackrig import (CALM_PERIOD, JackServer, Peer, connect, jackd_available, note_steps, released,
                                   wait_for_notes, wait_for_port)
from tests.support.polling import stays_true, wait_until

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.jack, pytest.mark.slow,
              pytest.mark.skipif(not jackd_available(), reason="jackd not installed (apt-get install jackd2)")]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jack():
    """A JACK server with a 2.67 ms period, for the tests that check timing."""
    with JackServer(f"v2msrv{os.getpid()}") as server:
        yield server


@pytest.fixture
def jack_calm():
    """A JACK server with ``CALM_PERIOD``, for the tests that count every note-off."""
    with JackServer(f"v2mcalm{os.getpid()}", period=CALM_PERIOD) as server:
        yield server


class Server:
    """``python run_live.py`` with its output collected in a file."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.osc_port = free_udp_port()
        self.record = tmp / "take.mid"
        self.log_path = tmp / "server.log"
        self._log = open(self.log_path, "w")
        cmd = [sys.executable, "run_live.py", "--midi-api", "jack", "--osc-port", str(self.osc_port),
               "--record", str(self.record), "--status", "log", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for(self, text: str, timeout: float = 50.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, f"server exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in time:\n{self.output()}"
            time.sleep(0.1)

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def server_factory(tmp_path):
    started = []

    def start(*args: str) -> Server:
        srv = Server(tmp_path, *args)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.kill()


def recorded_notes(path: Path) -> tuple[int, int]:
    """(note-ons, note-offs) in a recording; mido raises on an invalid file."""
    mid = mido.MidiFile(path)
    ons = sum(1 for m in mid.tracks[0] if m.type == "note_on" and m.velocity > 0)
    offs = sum(1 for m in mid.tracks[0] if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))
    return ons, offs


def test_bars_arrive_at_the_set_tempo_on_the_grid_and_sigterm_mid_bar_closes_every_note(jack, server_factory):
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "150", "--clock-out", "--anchor", "block_chords")
    wait_for_notes(peer, 12)
    assert wait_until(lambda: sum(m == [0xF8] for _, m in peer.snapshot()) > 150, 20), "MIDI clock ticks"
    deadline = time.monotonic() + 10
    while not peer.held() and time.monotonic() < deadline:
        time.sleep(0.005)
    held_before = peer.held()
    assert held_before, "expected sounding notes when the signal arrives"
    assert srv.terminate() == 0
    assert released(peer), (peer.held(), srv.output()[-3000:])
    messages = peer.snapshot()
    ticks = np.array([t for t, m in messages if m == [0xF8]])
    assert len(ticks) > 100
    assert np.median(np.diff(ticks)) == pytest.approx(60.0 / (150 * 24), rel=0.05)
    assert [0xFA] in [m for _, m in messages]
    ons = peer.note_ons()
    step = 60.0 / 150 / 4
    t0 = ons[0][0]
    phase = np.array([((t - t0) / step) % 1.0 for t, *_ in ons])
    off_grid = np.minimum(phase, 1 - phase) * step
    assert np.percentile(off_grid, 95) < step / 4, "note-ons land on the sixteenth grid"  # timing: benchmarks/
    assert any(m[0] & 0xF0 == 0xB0 and m[1] == 123 for _, m in messages)
    ons_file, offs_file = recorded_notes(srv.record)
    assert ons_file == len(ons) and offs_file >= ons_file
    assert "recording closed" in srv.output()
    peer.close()


def unbalanced_keys(path: Path) -> set[tuple[int, int]]:
    """Keys of a recording whose note-ons and note-offs do not alternate on, off, on, off ... off."""
    down: dict[tuple[int, int], bool] = {}
    bad = set()
    for m in mido.MidiFile(path).tracks[0]:
        if m.type not in ("note_on", "note_off"):
            continue
        key, on = (m.channel, m.note), m.type == "note_on" and m.velocity > 0
        if down.get(key, False) == on:
            bad.add(key)
        down[key] = on
    return bad | {key for key, on in down.items() if on}


def sounding(peer: Peer, timeout: float = 3.0) -> set[tuple[int, int]]:
    """``Peer.sounding()`` once the last events had time to arrive."""
    deadline = time.monotonic() + timeout
    while peer.sounding() and time.monotonic() < deadline:
        time.sleep(0.05)
    return peer.sounding()


def state_answered(sock: socket.socket, port: int, timeout: float = 1.0) -> bool:
    """Send ``/vis2mus/state`` and wait for ``/vis2mus/state/anchor`` (other replies skipped)."""
    sock.sendto(encode("/vis2mus/state"), ("127.0.0.1", port))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            return False
        if data.startswith(b"/vis2mus/state/anchor"):
            return True
    return False


def hostile_packets(rng: random.Random) -> list[bytes]:
    """The issue's three packets, structured malformed ones and random and mutated bytes."""
    valid = encode("/vis2mus/brightness", 0.5)
    mutated = bytearray(valid)
    mutated[rng.randrange(len(mutated))] = rng.getrandbits(8)
    return [
        b"#bundle\x00" + struct.pack(">Qi", 1, -4),
        b"#bundle\x00" + struct.pack(">Q", 1) + bytes(4080),
        b"/vis2mus/brightness\x00,Z\x00\x00",
        b"#bundle\x00" + bytes(8) + struct.pack(">i", rng.randint(-2 ** 31, 2 ** 31 - 1)),
        b"#bundle\x00" + bytes(8) + struct.pack(">i", 16) + b"#bundle\x00" + bytes(8),
        encode("/vis2mus/brightness", float("nan")),
        encode("/vis2mus/contrast", float("inf")),
        encode("/vis2mus/brightness", "loud"),
        encode("/vis2mus/tempo", 1e9),
        encode("/vis2mus/anchor", "no-such-anchor"),
        encode("/vis2mus/chords", "X## Hm7b13 |||"),
        encode("/nowhere", 1),
        b"/vis2mus/brightness\x00,f\x00\x00\x7f",
        b"#bundle\x00" + b"\xff" * 40,
        b"/" + b"a" * 8000,
        bytes(mutated),
        bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 600))),
    ]


def test_fuzz_malformed_osc_leaves_it_playing_answering_and_quiet(jack_calm, server_factory):
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "200")
    wait_for_notes(peer, 4)
    rng = random.Random(7)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    target = ("127.0.0.1", srv.osc_port)
    log_before = len(srv.output())
    started = time.monotonic()
    sent, answered, probes = 0, 0, 0
    while time.monotonic() - started < 4.0:
        for packet in hostile_packets(rng):
            sock.sendto(packet, target)
            sent += 1
        if sent % 170 == 0:
            probes += 1
            answered += state_answered(probe, srv.osc_port)
        time.sleep(0.001)
    assert probes >= 3 and answered == probes, f"state answered {answered} of {probes} during the fuzz"
    subprocess.run(["oscsend", "127.0.0.1", str(srv.osc_port), "/vis2mus/brightness", "s", "bright"], check=True)
    sock.settimeout(0.5)
    errors = 0
    until = time.monotonic() + 2.0
    while time.monotonic() < until:
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            break
        errors += data.startswith(b"/vis2mus/error")
    assert errors > 0
    count = len(peer.note_ons())
    assert wait_until(lambda: len(peer.note_ons()) > count, 10), "the music stopped after the fuzz"
    assert srv.proc.poll() is None
    grown = srv.output()[log_before:]
    assert len(grown.splitlines()) <= 12 and len(grown) < 4000, grown[-2000:]
    assert "Traceback" not in grown and "Unhandled parameter type" not in grown
    assert srv.terminate() == 0
    assert unbalanced_keys(srv.record) == set()
    assert sounding(peer) == set(), (peer.held(), srv.output()[-3000:])
    sock.close()
    probe.close()
    peer.close()


def test_flood_of_valid_faders_from_many_ports_keeps_it_answering(jack_calm, server_factory):
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "200")
    wait_for_notes(peer, 4)
    flood = (
        "import math, socket, sys, time\n"
        "from live.control.osc import encode\n"
        "target = ('127.0.0.1', int(sys.argv[1]))\n"
        "socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(64)]\n"
        "until, i = time.monotonic() + 4.0, 0\n"
        "while time.monotonic() < until:\n"
        "    i += 1\n"
        "    name = '/vis2mus/brightness' if i % 2 else '/vis2mus/contrast'\n"
        "    socks[i % 64].sendto(encode(name, 0.9 * math.sin(i / 300)), target)\n"
        "    if i % 8 == 0: time.sleep(0.001)\n"
        "print(i)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", flood, str(srv.osc_port)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    results = []
    while child.poll() is None:
        results.append(state_answered(probe, srv.osc_port))
        time.sleep(0.2)
    sent = int(child.stdout.read())
    assert sent > 4000 and results and all(results), (sent, results)
    count = len(peer.note_ons())
    wait_for_notes(peer, count + 4)
    assert srv.terminate() == 0
    summary = srv.output()
    assert "OSC:" in summary and "rate-limited" in summary and "senders 1" in summary, summary[-2000:]
    assert "fell behind" not in summary
    assert unbalanced_keys(srv.record) == set() and recorded_notes(srv.record)[0] > 0
    assert sounding(peer) == set(), (peer.held(), summary[-3000:])
    probe.close()
    peer.close()


def test_peer_killed_and_restarted_stream_resumes(jack_calm, server_factory):
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "200")
    wait_for_notes(peer, 4)
    peer.close()
    srv.wait_for("MIDI port lost")
    peer = Peer("peer")
    wait_for_notes(peer, 4, timeout=10)
    srv.wait_for("MIDI port back")
    assert srv.terminate() == 0
    assert released(peer), (peer.held(), srv.output()[-3000:])
    peer.close()


def test_no_midi_backend_one_line_and_the_recording_goes_on(tmp_path, server_factory, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mabsent{os.getpid()}")
    srv = server_factory("--bpm", "240")
    srv.wait_for("no MIDI output")
    srv.wait_for("recording")
    assert wait_until(lambda: srv.record.is_file() and recorded_notes(srv.record)[0] > 0, 15), "nothing recorded"
    assert srv.terminate() == 0
    line = [l for l in srv.output().splitlines() if "no MIDI output" in l]
    assert len(line) == 1 and "JACK" in line[0]
    ons, offs = recorded_notes(srv.record)
    assert ons > 0 and offs >= ons


def test_default_virtual_port_vis2mus_reaches_a_connected_peer(jack_calm, server_factory):
    srv = server_factory("--bpm", "200")
    assert wait_for_port("Vis2Mus:out"), srv.output()
    peer = Peer("peer")
    assert connect("Vis2Mus:out", peer.port)
    wait_for_notes(peer, 4)
    assert "virtual output 'Vis2Mus:out'" in srv.output()
    assert srv.terminate() == 0
    assert released(peer), srv.output()
    peer.close()


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A small random poly-dis (tests.support.scratch) and its ONNX graphs in a private cache."""
    torch = pytest.importorskip("torch", reason="torch is needed to make and export test weights")
    torch.set_num_threads(1)
    from export import exporter
    from live.inference import graphs
    from tests.support.scratch import write_random_weights

    cache = tmp_path_factory.mktemp("onnx")
    os.environ["VIS2MUS_CACHE"] = str(cache)
    weights = write_random_weights(tmp_path_factory.mktemp("w") / "rand.pt", "tiny", seed=3)
    folder = graphs.ensure_graphs(weights, log=lambda _: None, exporter=exporter())
    return weights, folder


def test_oscsend_brightness_changes_the_notes_from_the_next_beat(server_factory, random_weights):
    from live.app.renderer import Renderer
    from live.control.params import State
    from live.inference.engine import Engine
    from live.texture.anchors import content_pieces, default_anchors
    from live.texture.vis2mus import Vis2Mus

    weights, folder = random_weights
    anchor, bpm = "arpeggios", 120.0
    # paper mode: the random model's decode plays as it is, so a brightness change reaches most steps
    renderer = Renderer(default_anchors(), content_pieces(), Vis2Mus(Engine(folder, device="cpu"), mode="paper"))
    expected = {}
    for alpha in (0.0, 0.8):
        state = State(anchor=anchor, alpha_b=alpha)
        n, sections = renderer(state, list(range(renderer.count(state))))
        expected[alpha] = {i * 32 + int(o): sorted(int(p) for p in s.accompaniment[s.accompaniment[:, 0] == o, 1])
                           for i, s in enumerate(sections) for o in np.unique(s.accompaniment[:, 0])}
    loop = n * 32
    differs = {s for s in range(loop) if expected[0.0].get(s, []) != expected[0.8].get(s, [])}
    assert len(differs) > loop // 4, "the random model should answer a brightness change"

    with JackServer(f"v2mbright{os.getpid()}", period=CALM_PERIOD):
        peer = Peer("peer")
        srv = server_factory("--midi-port", peer.port, "--bpm", str(bpm), "--clock-out", "--anchor", anchor,
                             "--weights", str(weights), "--device", "cpu", "--mode", "paper")
        wait_for_notes(peer, 8)
        assert wait_until(lambda: clock_ticks(peer) >= 4 * 24, 20), "a bar of clock before the change"
        sent_at = time.perf_counter()
        subprocess.run(["oscsend", "127.0.0.1", str(srv.osc_port), "/vis2mus/brightness", "f", "0.8"], check=True)
        assert wait_until(lambda: clock_ticks(peer, after=sent_at) >= 8 * 24, 30), "two bars after the change"
        assert srv.terminate() == 0
        assert released(peer)
        messages = peer.snapshot()
        peer.close()
    first_tick = next(t for t, m in messages if m == [0xF8])
    played = note_steps(messages, first_tick, 60.0 / bpm / 4)
    sent_step = int((sent_at - first_tick) / (60.0 / bpm / 4))
    after = [s for s in range(sent_step + 1, max(played)) if s % loop in differs and s in played]
    old = [s for s in after if played[s] == expected[0.0].get(s % loop, [])]
    new = [s for s in after if played[s] == expected[0.8].get(s % loop, [])]
    assert new, f"no note changed after the OSC message (sent at step {sent_step})"
    assert len(old) + len(new) >= 0.8 * len(after), "most steps should play exactly the old or the new notes"
    assert not old or max(old) < min(new), f"old notes after new ones: old {old}, new {new}"
    splice = -(-(max(old) + 1 if old else sent_step + 1) // 4) * 4
    next_beat = -(-(sent_step + 1) // 4) * 4
    assert min(new) >= splice
    assert splice <= next_beat + 4, f"sent at step {sent_step}, the change came only at step {splice}"


def test_a_generated_video_drives_alpha(jack_calm, server_factory, random_weights, tmp_path):
    import cv2
    from pythonosc.osc_message import OscMessage

    from live.texture.anchors import default_anchors
    from live.texture.transform import adjust

    weights, _ = random_weights
    anchor = "block_chords"
    frame = adjust(default_anchors()[anchor].image, 0.6, 0.0)
    video = tmp_path / "brighter.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (frame.shape[1], frame.shape[0]))
    assert writer.isOpened()
    for _ in range(30):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()

    listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listen.bind(("127.0.0.1", 0))
    listen.settimeout(0.5)
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "160", "--anchor", anchor, "--video", str(video),
                         "--weights", str(weights), "--device", "cpu",
                         "--osc-reply", f"127.0.0.1:{listen.getsockname()[1]}")
    brightness = []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not (brightness and brightness[-1] > 0.3):
        try:
            data, _ = listen.recvfrom(65536)
        except socket.timeout:
            assert srv.proc.poll() is None, srv.output()
            continue
        if data.startswith(b"/vis2mus/state/brightness"):
            brightness.append(OscMessage(data).params[0])
    listen.close()
    assert brightness and brightness[-1] > 0.3, f"alpha_b from the video: {brightness[-5:]}\n{srv.output()}"
    assert "brighter.avi" in srv.output()
    wait_for_notes(peer, 4)
    assert srv.terminate() == 0
    assert released(peer), (peer.held(), srv.output()[-3000:])
    peer.close()


def test_follows_an_external_midi_clock_and_osc_stop_play(jack_calm, server_factory):
    import rtmidi

    source = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="clocksrc")
    source.open_virtual_port("out")
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--clock-in", "clocksrc:out", "--anchor", "arpeggios")
    srv.wait_for("following MIDI clock")
    assert stays_true(lambda: peer.note_ons() == [], 1.0), "nothing plays before the external Start"
    bpm, tick_s = 100.0, 60.0 / (100.0 * 24)
    source.send_message([0xFA])
    t0 = time.perf_counter()
    for k in range(24 * 8):
        while time.perf_counter() < t0 + k * tick_s:
            time.sleep(0.0005)
        source.send_message([0xF8])
    source.send_message([0xFC])
    assert released(peer), "Stop must close every note"
    ons = peer.note_ons()
    assert len(ons) >= 8
    step_s = 60.0 / bpm / 4
    phase = np.array([((t - ons[0][0]) / step_s) % 1.0 for t, *_ in ons])
    # Notes on the external 100 BPM grid keep a small phase error; the non-realtime dummy JACK can
    # shift its delivery by a few periods after an xrun on a busy machine. Notes on the internal
    # 120 BPM clock would spread over every phase (90th percentile near half a step).
    assert np.percentile(np.minimum(phase, 1 - phase), 90) < 0.3
    count = len(ons)
    assert stays_true(lambda: len(peer.note_ons()) == count, 1.0), "notes went on after the external Stop"
    source.close_port()
    source.delete()
    assert srv.terminate() == 0
    peer.close()


def test_osc_stop_silences_and_play_resumes(jack_calm, server_factory):
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "200", "--anchor", "block_chords")
    wait_for_notes(peer, 4)
    subprocess.run(["oscsend", "127.0.0.1", str(srv.osc_port), "/vis2mus/stop"], check=True)
    assert released(peer), "stop closes every note"
    count = len(peer.note_ons())
    assert stays_true(lambda: len(peer.note_ons()) == count, 1.0), "notes went on after the stop"
    subprocess.run(["oscsend", "127.0.0.1", str(srv.osc_port), "/vis2mus/play"], check=True)
    wait_for_notes(peer, count + 3, timeout=10)
    assert srv.terminate() == 0
    assert released(peer), (peer.held(), srv.output()[-3000:])
    peer.close()


def clock_ticks(peer: Peer, after: float = float("-inf")) -> int:
    """MIDI clock ticks (0xF8) the peer received after ``after`` (``time.perf_counter()``)."""
    return sum(1 for t, m in peer.snapshot() if m == [0xF8] and t > after)


def render_child(server_pid: int) -> int | None:
    """PID of the server's render child (a multiprocessing spawn child, not the resource tracker),
    None while there is none."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == server_pid and "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            return int(entry.name)
    return None


def test_a_killed_render_process_is_restarted_and_the_change_still_lands(tmp_path, server_factory, monkeypatch):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mabsent{os.getpid()}")
    srv = server_factory("--bpm", "240")
    srv.wait_for("OSC listening")
    assert wait_until(lambda: render_child(srv.proc.pid), 20), "no render child found"
    os.kill(render_child(srv.proc.pid), signal.SIGKILL)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(encode("/vis2mus/brightness", 0.5), ("127.0.0.1", srv.osc_port))
    srv.wait_for("restarting it")
    srv.wait_for("b=+0.50", timeout=20)
    lines = srv.output().count("regen ")
    # the status line after the one that showed the change: the restarted child had 5 s to render it
    assert wait_until(lambda: srv.output().count("regen ") > lines, 20), srv.output()[-2000:]
    assert srv.terminate() == 0
    summary = [l for l in srv.output().splitlines() if "renders" in l][-1]
    assert "failed 0" in summary and "renders 0," not in summary, summary
    ons, offs = recorded_notes(srv.record)
    assert ons > 0 and offs >= ons


def test_sigkill_leaves_a_valid_file_and_panic_silences_the_peer(jack_calm, server_factory):
    peer = Peer("peer")
    srv = server_factory("--midi-port", peer.port, "--bpm", "200", "--max-note", "16")
    wait_for_notes(peer, 12)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait(timeout=10)
    ons, offs = recorded_notes(srv.record)  # the last flush: a valid file
    assert ons > 0
    for args in (["--midi-port", peer.port], []):  # the named port, then every input port
        done = subprocess.run([sys.executable, "run_live.py", "--panic", "--midi-api", "jack", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        lines = done.stderr.strip().splitlines()
        assert any(f"panic sent to '{peer.port}'" in line for line in lines), done.stderr
        assert released(peer), peer.held()
    cc123 = {m[0] & 15 for _, m in peer.snapshot() if len(m) == 3 and m[0] & 0xF0 == 0xB0 and m[1] == 123}
    assert cc123 == set(range(16))
    peer.close()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_starting_stops_cleanly_with_its_render_child(server_factory, monkeypatch, sig):
    monkeypatch.setenv("JACK_DEFAULT_SERVER", f"v2mabsent{os.getpid()}")
    srv = server_factory("--bpm", "120")
    assert wait_until(lambda: render_child(srv.proc.pid), 30), srv.output()
    child = render_child(srv.proc.pid)
    assert "OSC listening" not in srv.output(), "the server finished starting before the signal"
    srv.proc.send_signal(sig)
    assert wait_until(lambda: srv.proc.poll() is not None, 20), f"still running:\n{srv.output()}"
    assert srv.proc.returncode == 0, srv.output()
    out = srv.output()
    assert "interrupted while starting" in out and "Traceback" not in out, out
    assert wait_until(lambda: not Path(f"/proc/{child}").exists() or
                      Path(f"/proc/{child}/stat").read_text().split(") ", 1)[1][0] == "Z", 10), \
        "the render child outlived the server"
