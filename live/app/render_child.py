"""The render child process: ``Renderer`` calls answered in a supervised child process, so
inference never holds the send thread's GIL (a descheduled GIL holder on a busy machine would
delay the send thread by whole time slices)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Callable

import numpy as np

from live import logs
from live.app.renderer import load_renderer
from live.children import Child
from live.music.notes import Segment

RENDER_NICE = 5
_NO_IMAGE = np.zeros((1, 1, 3), np.uint8)

log = logging.getLogger(__name__)


def music_only(pieces: dict) -> dict:
    """``pieces`` (name -> ``Anchor``) without their pictures: the render child needs only the
    music, and a user's photo need not cross the pipe."""
    return {name: replace(piece, image=_NO_IMAGE) for name, piece in pieces.items()}


def _render_main(conn: Connection, settings, anchors: dict, contents: dict) -> None:
    """Child process: load the engine, then answer ``("render", state, indices)`` and
    ``("anchors", anchors, contents)`` (the loaded anchors after a re-scan) until ``stop``."""
    logs.setup()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # lowering our own priority only fails on exotic systems
        os.nice(RENDER_NICE)
    renderer, note = load_renderer(settings, anchors, contents)
    conn.send(("ready", note))
    while True:
        while not conn.poll() and renderer.warm_one():
            pass
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "anchors":
            renderer.anchors, renderer.contents = message[1], message[2]
            conn.send(("ok", None))
            continue
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
    fails too, the call raises and the worker keeps the current loop. ``anchors`` and ``contents``
    map names to the anchors it renders; :meth:`set_anchors` replaces them.
    """

    def __init__(self, settings, count: Callable[[object], int], anchors: dict, contents: dict) -> None:
        self.count = count
        self.note = ""
        self._lock = threading.Lock()
        self._child = Child(_render_main, (settings, music_only(anchors), music_only(contents)),
                            name="vis2mus-render")

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
        return self._send(("render", state, list(indices)))

    def _send(self, message: tuple) -> tuple[str, object]:
        conn = self._child.conn
        if conn is None:
            raise OSError("render process not started")
        conn.send(message)
        return conn.recv()

    def set_anchors(self, anchors: dict, contents: dict) -> None:
        """Render from these anchors and content pieces from now on (a restarted child too)."""
        anchors, contents = music_only(anchors), music_only(contents)
        with self._lock:
            self._child.args = (self._child.args[0], anchors, contents)
            try:
                self._send(("anchors", anchors, contents))
            except (EOFError, OSError):  # the next render restarts the child, with the new anchors
                log.warning("render process exited (code %s); it restarts with the new anchors",
                            self._child.exitcode)

    def close(self) -> None:
        self._child.stop()
