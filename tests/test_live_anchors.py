"""The live server on user anchors, end to end: ``python run_live.py --anchor FOLDER --anchors DIR``
against a private JACK server and a JACK MIDI peer, steered with real UDP OSC, on the shipped
weights; the anchors are composed here (nothing from POP909)."""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from pathlib import Path

import mido
import pytest
from pythonosc.osc_message import OscMessage

from live.control.osc import encode
from live.texture.anchors import default_anchors, load_anchor
from tests.support.anchors import compose
from tests.support.jackrig import CALM_PERIOD, JackServer, Peer, jackd_available, released
from tests.support.polling import wait_until
from tests.test_live_server import Server

pytestmark = [pytest.mark.jack, pytest.mark.slow,
              pytest.mark.skipif(not jackd_available(), reason="jackd not installed (apt-get install jackd2)")]


class Osc:
    """A UDP OSC client that keeps every reply of the server. ``wait`` looks only at replies read
    after the last ``send`` (the server answers every change with the whole state)."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.replies: list[tuple[str, list]] = []
        self.mark = 0

    def _read(self, timeout: float | None) -> bool:
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65536)
        except (socket.timeout, BlockingIOError):
            return False
        if not data.startswith(b"#bundle"):
            message = OscMessage(data)
            self.replies.append((message.address, list(message.params)))
        return True

    def send(self, address: str, *values) -> None:
        while self._read(0.0):
            pass
        self.mark = len(self.replies)
        self.sock.sendto(encode(address, *values), self.target)

    def wait(self, address: str, check, srv: Server, timeout: float = 30.0) -> list:
        """Poll replies until one on ``address`` since the last send passes ``check(params)``."""
        deadline = time.monotonic() + timeout
        while True:
            for path, params in self.replies[self.mark:]:
                if path == address and check(params):
                    return params
            assert srv.proc.poll() is None, f"server exited:\n{srv.output()}"
            assert time.monotonic() < deadline, f"no {address} passing the check; got {self.replies[-8:]}"
            self._read(0.1)

    def close(self) -> None:
        self.sock.close()


def happens(condition, what: str, srv: Server, timeout: float = 30.0) -> None:
    """Poll until ``condition()`` holds, failing early if the server exits."""
    assert wait_until(lambda: condition() or srv.proc.poll() is not None, timeout, step=0.05) \
        and srv.proc.poll() is None, f"{what} did not happen in time:\n{srv.output()[-3000:]}"


def balance(path: Path) -> tuple[Counter, bool]:
    """Note-ons per channel in a recording, and whether every note-on met its note-off (per
    channel and pitch, never an off without an on, nothing left sounding)."""
    ons: Counter = Counter()
    sounding: Counter = Counter()
    ok = True
    for msg in mido.MidiFile(path).tracks[0]:
        if msg.type == "note_on" and msg.velocity > 0:
            ons[msg.channel] += 1
            sounding[msg.channel, msg.note] += 1
        elif msg.type in ("note_on", "note_off"):
            sounding[msg.channel, msg.note] -= 1
            ok &= sounding[msg.channel, msg.note] >= 0
    return ons, ok and not any(sounding.values())


def test_the_server_plays_steers_switches_and_rescans_user_anchors(tmp_path):
    duet = compose(tmp_path / "mine" / "duet", root=57, melody=True)
    shelf = tmp_path / "shelf"
    compose(shelf / "echo", root=62)
    (shelf / "cracked").mkdir(parents=True)
    (shelf / "cracked" / "anchor.toml").write_text('title = "no music"\n')
    first_user = len(default_anchors())
    with JackServer(f"v2manc{os.getpid()}", period=CALM_PERIOD):
        peer = Peer("peer")
        srv = Server(tmp_path, "--midi-port", peer.port, "--bpm", "200", "--anchor", str(duet),
                     "--anchors", str(shelf), "--device", "cpu")
        osc = Osc(srv.osc_port)
        try:
            srv.wait_for("OSC listening")
            happens(lambda: sum(m[0] == 0x90 for _, m in peer.snapshot() if len(m) == 3 and m[2]) >= 4,
                       "the duet's melody on channel 1", srv)
            own = {int(p) for p in load_anchor(duet).accompaniment[:, 1]}
            # full travel: brighter adds up to as many notes again, the last of them outside the
            # anchor's pitch span (at 0.7 the eighth-session weights add only pitches it already has)
            osc.send("/vis2mus/brightness", 1.0)
            assert osc.wait("/vis2mus/state/brightness", lambda p: abs(p[0] - 1.0) < 1e-6, srv)
            assert osc.wait("/vis2mus/state/anchor", lambda p: p == ["duet"], srv)
            steered_at = len(peer.snapshot())
            happens(lambda: {m[1] for _, m in peer.snapshot()[steered_at:]
                                if len(m) == 3 and m[0] == 0x91 and m[2]} - own,
                       "accompaniment notes the duet does not have, at brightness 1.0", srv)
            osc.send("/vis2mus/anchor", "echo")
            osc.wait("/vis2mus/state/anchor", lambda p: p == ["echo"], srv)
            echo_at = len(peer.snapshot())
            happens(lambda: sum(1 for _, m in peer.snapshot()[echo_at:] if len(m) == 3 and m[0] == 0x91 and m[2]) >= 4,
                       "echo's accompaniment", srv)

            compose(shelf / "late", root=65)
            added = time.monotonic()
            happens(lambda: "late" in "".join(l for l in srv.output().splitlines() if "anchors now" in l),
                       "the re-scan finding 'late'", srv)
            print(f"re-scan: a new anchor folder was playable {time.monotonic() - added:.2f} s after it appeared")
            osc.send("/vis2mus/anchor", first_user + 2)
            osc.wait("/vis2mus/state/anchor", lambda p: p == ["late"], srv)
            osc.send("/vis2mus/brightness", 0.0)
            osc.wait("/vis2mus/state/brightness", lambda p: p[0] == 0.0, srv)
            compose(shelf / "late", root=70)  # edited while it plays: reloaded at a bar boundary
            edited_at = len(peer.snapshot())
            happens(lambda: any(len(m) == 3 and m[0] == 0x91 and m[1] == 70 - 24 and m[2]
                                   for _, m in peer.snapshot()[edited_at:]), "the edited 'late' playing", srv)
            assert "anchor 'late' reloaded" in srv.output()

            osc.send("/vis2mus/stop")
            osc.wait("/vis2mus/state/playing", lambda p: p == [0], srv)
            compose(shelf / "quiet", root=60)  # found while the transport is stopped, too
            happens(lambda: "quiet" in "".join(l for l in srv.output().splitlines() if "anchors now" in l),
                       "the re-scan finding 'quiet' while stopped", srv)
            osc.send("/vis2mus/play")
            osc.wait("/vis2mus/state/playing", lambda p: p == [1], srv)

            osc.send("/vis2mus/anchor", str(duet))
            osc.wait("/vis2mus/error", lambda p: "unknown anchor" in p[-1], srv)
            osc.send("/vis2mus/anchor", first_user)
            osc.wait("/vis2mus/state/anchor", lambda p: p == ["duet"], srv)
            back_at = len(peer.snapshot())
            happens(lambda: sum(1 for _, m in peer.snapshot()[back_at:] if len(m) == 3 and m[0] == 0x90 and m[2]) >= 4,
                       "the duet's melody after switching back", srv)
            assert srv.terminate() == 0
            assert released(peer), (peer.held(), srv.output()[-3000:])
        finally:
            osc.close()
            srv.kill()
            peer.close()
    output = srv.output()
    cracked = [line for line in output.splitlines() if "cracked" in line]
    assert len(cracked) == 1 and cracked[0].endswith("skipped"), cracked
    ons, balanced = balance(srv.record)
    assert balanced, "a note-on without its note-off in the recording"
    assert ons[0] >= 8 and ons[1] >= 20, ons
    print(f"recording: {ons[0]} melody and {ons[1]} accompaniment note-ons, every one closed")
