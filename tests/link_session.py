"""A Link session with two peers, run inside the network namespace that test_link.py creates.

This process is the second Link peer and the MIDI peer: it starts a private JACK server (period
from the second argument, 128 frames by default), joins
Link at 100 BPM and plays, starts ``python run_live.py --link`` (the first peer), then
1. measures the phase error of the server's note-ons at the JACK peer against the Link beat grid,
2. changes the session tempo to 130 BPM and waits for the server's OSC state to follow,
3. stops the session (no more notes, every key released) and starts it again (notes return),
4. sets the server's tempo by OSC and waits for the session to follow.
It prints one JSON line with what it saw (the test asserts on it; ``benchmarks`` print figures).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import link
import numpy as np
from pythonosc.osc_message import OscMessage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.jackrig import JackServer, Peer  # noqa: E402
from live.control.osc import encode  # noqa: E402


def until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def main() -> int:
    log_path = Path(sys.argv[1])
    period = int(sys.argv[2]) if len(sys.argv) > 2 else 128
    result: dict[str, object] = {}
    session = link.Link(100.0)
    session.startStopSyncEnabled = True
    session.enabled = True
    state = session.captureAppSessionState()
    state.setIsPlaying(True, session.clock().micros())
    session.commitAppSessionState(state)
    offset_us = session.clock().micros() - time.perf_counter() * 1e6

    def beat_at(t: float) -> float:
        return session.captureAppSessionState().beatAtTime(int(t * 1e6 + offset_us), 4.0)

    with JackServer(f"v2mlink{os.getpid()}", period=period):
        peer = Peer("peer")
        osc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        osc.bind(("127.0.0.1", 0))
        osc.settimeout(0.05)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            osc_port = probe.getsockname()[1]
        with open(log_path, "w") as log:
            server = subprocess.Popen([sys.executable, "run_live.py", "--link", "--midi-api", "jack", "--midi-port",
                                       peer.port, "--osc-port", str(osc_port), "--bpm", "120", "--no-record",
                                       "--no-midi-in", "--status", "log", "--anchor", "block_chords"],
                                      cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        tempo = {}

        def poll_state() -> None:
            osc.sendto(encode("/vis2mus/state"), ("127.0.0.1", osc_port))
            while True:
                try:
                    message = OscMessage(osc.recv(65536))
                except (socket.timeout, BlockingIOError):
                    return
                if message.address == "/vis2mus/state/tempo":
                    tempo["server"] = message.params[0]

        try:
            result["peers"] = until(lambda: session.numPeers() >= 1, 60)
            result["notes"] = until(lambda: len(peer.note_ons()) >= 60, 60)
            if not result["notes"]:
                return 1
            ons = [t for t, *_ in peer.note_ons()][8:]
            step = np.array([beat_at(t) * 4 for t in ons])
            step_s = 60.0 / 100.0 / 4
            errors = (step - np.round(step)) * step_s * 1000.0
            result["phase_ms"] = {"median": float(np.median(errors)),
                                  "p99_abs_from_median": float(np.percentile(np.abs(errors - np.median(errors)), 99)),
                                  "count": len(errors)}
            state = session.captureAppSessionState()
            state.setTempo(130.0, session.clock().micros())
            session.commitAppSessionState(state)
            result["server_follows_tempo"] = until(lambda: (poll_state(), abs(tempo.get("server", 0) - 130.0) < 0.01)[1], 10)
            state = session.captureAppSessionState()
            state.setIsPlaying(False, session.clock().micros())
            session.commitAppSessionState(state)
            time.sleep(0.5)
            count = len(peer.note_ons())
            time.sleep(1.5)
            result["silent_when_stopped"] = len(peer.note_ons()) == count
            result["released_when_stopped"] = peer.held() == set()
            state = session.captureAppSessionState()
            state.setIsPlaying(True, session.clock().micros())
            session.commitAppSessionState(state)
            result["plays_again"] = until(lambda: len(peer.note_ons()) >= count + 8, 10)
            osc.sendto(encode("/vis2mus/tempo", 90.0), ("127.0.0.1", osc_port))
            result["session_follows_osc_tempo"] = until(
                lambda: abs(session.captureAppSessionState().tempo() - 90.0) < 0.01, 10)
        finally:
            server.terminate()
            result["exit"] = server.wait(timeout=20)
            result["released"] = until(lambda: peer.held() == set(), 3)
            peer.close()
            osc.close()
            print(json.dumps(result), flush=True)
    session.enabled = False
    return 0


if __name__ == "__main__":
    sys.exit(main())
