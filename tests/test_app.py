"""live.app: a Performance is built without side effects; the one child supervisor restarts,
backs off and stops the render child and the camera child alike."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket

import pytest

from live.app.config import parse_settings
from live.app.performance import Performance
from live.children import Child


def _echo(conn, prefix: str) -> None:
    """A child: answers every message with ``(prefix, message)`` until ``("stop",)``."""
    while True:
        message = conn.recv()
        if message == ("stop",):
            return
        conn.send((prefix, message))


def test_a_performance_is_built_without_spawning_rendering_or_opening_ports():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        osc_port = probe.getsockname()[1]
    before = set(multiprocessing.active_children())
    performance = Performance(parse_settings(["--no-record", "--osc-port", str(osc_port), "--oscquery", str(osc_port)]))
    assert set(multiprocessing.active_children()) == before
    assert (performance.renderer, performance.midi, performance.osc, performance.midi_in, performance.scheduler,
            performance.oscquery) == (None,) * 6
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as free:
        free.bind(("127.0.0.1", osc_port))  # the OSC port is still free
    performance.shutdown()  # closing what was never opened is fine


def test_the_supervisor_restarts_a_killed_child_and_backs_off_after_failures():
    child = Child(_echo, ("hi",), name="vis2mus-test")
    conn = child.start()
    try:
        conn.send("a")
        assert conn.recv() == ("hi", "a")
        first = child.pid
        os.kill(first, signal.SIGKILL)
        with pytest.raises((EOFError, OSError)):
            conn.send("b")
            conn.recv()
        conn = child.restart()
        assert child.pid != first and child.restarts == 1
        conn.send("c")
        assert conn.recv() == ("hi", "c")
        delays = [child.failed(now=100.0) for _ in range(8)]
        assert delays[:3] == [0.25, 0.5, 1.0] and delays[-1] == 8.0
        assert not child.running and child.due(now=100.0) == 8.0 and child.due(now=108.0) == 0.0
        conn = child.start()
        conn.send("d")
        assert conn.recv() == ("hi", "d")
    finally:
        child.stop()
    assert not child.running and child.exitcode == 0
