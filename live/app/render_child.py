"""The render child process: ``Renderer`` calls answered in a supervised child process, so
inference never holds the send thread's GIL (a descheduled GIL holder on a busy machine would
delay the send thread by whole time slices)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from multiprocessing.connection import Connection
from typing import Callable

from live import logs
from live.app.renderer import load_renderer
from live.children import Child
from live.music.notes import Segment

RENDER_NICE = 5

log = logging.getLogger(__name__)


def _render_main(conn: Connection, settings) -> None:
    """Child process: load the engine, then answer ``("render", state, indices)`` until ``stop``."""
    from live.texture.anchors import content_pieces, default_anchors

    logs.setup()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # lowering our own priority only fails on exotic systems
        os.nice(RENDER_NICE)
    renderer, note = load_renderer(settings, default_anchors(), content_pieces())
    conn.send(("ready", note))
    while True:
        while not conn.poll() and renderer.warm_one():
            pass
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "render":
            return
        _, state, indices = message
        try:
            conn.send(("ok", renderer(state, indices)))
        except Exception as exc:  # reported to the worker thread, which keeps the current loop
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class RenderProcess:
    """Callable like ``Renderer``: ``(state, indices) -> (n_segments, [Segment])``, answered by the
    render child; ``count`` is the parent's own loop-length function.

    ``start()`` spawns the child and waits for its engine (``note`` describes it). One request at a
    time. A child that died (killed, crashed) is restarted and the request sent again; if that
    fails too, the call raises and the worker keeps the current loop.
    """

    def __init__(self, settings, count: Callable[[object], int]) -> None:
        self.count = count
        self.note = ""
        self._lock = threading.Lock()
        self._child = Child(_render_main, (settings,), name="vis2mus-render")

    def start(self) -> "RenderProcess":
        self._ready(self._child.start())
        return self

    def _ready(self, conn: Connection) -> None:
        _, self.note = conn.recv()

    def __call__(self, state, indices: list[int]) -> tuple[int, list[Segment]]:
        with self._lock:
            try:
                kind, payload = self._request(state, indices)
            except (EOFError, OSError):
                log.warning("render process exited (code %s); restarting it", self._child.exitcode)
                self._ready(self._child.restart())
                kind, payload = self._request(state, indices)
        if kind != "ok":
            raise RuntimeError(payload)
        return payload

    def _request(self, state, indices: list[int]) -> tuple[str, object]:
        conn = self._child.conn
        if conn is None:
            raise OSError("render process not started")
        conn.send(("render", state, list(indices)))
        return conn.recv()

    def close(self) -> None:
        self._child.stop()
