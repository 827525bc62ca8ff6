"""Ableton Link (live.playback.link): the server and a second Link peer inside a network namespace
this test creates (``unshare -n``, loopback up with a multicast route), never on the machine's real
interfaces. The peer process (tests/link_session.py) drives the session and reports what it saw."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.jackrig import CALM_PERIOD, jackd_available
from tests.support.netns import netns_reason, run_in_netns

ROOT = Path(__file__).resolve().parent.parent
def link_reason() -> str | None:
    from live.playback.link import available

    return available()


@pytest.mark.jack
@pytest.mark.slow
@pytest.mark.skipif(not jackd_available(), reason="jackd not installed (apt-get install jackd2)")
@pytest.mark.skipif(link_reason() is not None, reason=str(link_reason()))
@pytest.mark.skipif(netns_reason() is not None, reason=str(netns_reason()))
def test_two_link_peers_share_tempo_phase_and_start_stop(tmp_path):
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # CALM_PERIOD: this test counts every note-off (benchmarks.gear_timing link measures the phase
    # at 128 frames)
    done = run_in_netns("tests/link_session.py", str(log), str(CALM_PERIOD), cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300)
    server_log = log.read_text() if log.exists() else ""
    assert done.returncode == 0, done.stderr[-3000:] + server_log[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["peers"] and result["notes"], (result, server_log[-3000:])
    # In phase: notes off the Link grid would spread over the whole 150 ms step; JACK delivers them
    # at its 21 ms period boundaries.
    assert abs(result["phase_ms"]["median"]) < 30 and result["phase_ms"]["p99_abs_from_median"] < 30, result
    assert result["server_follows_tempo"], (result, server_log[-3000:])
    assert result["silent_when_stopped"] and result["released_when_stopped"], result
    assert result["plays_again"], (result, server_log[-3000:])
    assert result["session_follows_osc_tempo"], result
    assert result["exit"] == 0 and result["released"], (result, server_log[-3000:])
