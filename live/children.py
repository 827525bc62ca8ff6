"""What runs beside the main thread: supervised child processes and stoppable worker threads.

A ``Child`` starts ``target(conn, *args)`` in a ``spawn`` process with a duplex pipe, stops it in an
orderly way (a stop message, a join, then SIGKILL), restarts it at once (``restart``) or after an
exponential back-off (``failed`` then ``due``). The ``spawn`` method means a script that starts
children needs the usual ``if __name__ == "__main__":`` guard.

A ``Worker`` is a component's named daemon thread with its stop flag: the loop waits on
``stopping`` and ends when it is set; ``stop`` sets it and joins the thread for a bounded time.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable

BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 8.0
JOIN_S = 2.0


class Child:
    """A supervised child process; ``conn`` is the parent's end of the pipe while it runs."""

    def __init__(self, target: Callable[..., None], args: tuple = (), name: str = "vis2mus-child",
                 stop_message: tuple = ("stop",), backoff_start: float = BACKOFF_START_S,
                 backoff_max: float = BACKOFF_MAX_S) -> None:
        self.target = target
        self.args = args
        self.name = name
        self.stop_message = stop_message
        self.conn: Connection | None = None
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._backoff_start = backoff_start
        self._backoff_max = backoff_max
        self._backoff = backoff_start
        self._restart_at = 0.0
        self._exitcode: int | None = None

    @property
    def running(self) -> bool:
        """Whether a child is started (it may have died since; the pipe tells)."""
        return self.conn is not None

    @property
    def exitcode(self) -> int | None:
        """The exit code of the current child, else of the last one stopped (``None`` if unknown)."""
        return self._process.exitcode if self._process is not None else self._exitcode

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Connection:
        """Start the child; returns the parent's end of its pipe."""
        parent, child = self._context.Pipe()
        self._process = self._context.Process(target=self.target, args=(child, *self.args), name=self.name,
                                              daemon=True)
        self._process.start()
        child.close()
        self.conn = parent
        return parent

    def stop(self, timeout: float = JOIN_S) -> None:
        """Send the stop message, wait up to ``timeout`` s, then kill; closes the pipe (idempotent)."""
        if self.conn is not None:
            try:
                self.conn.send(self.stop_message)
            except OSError:
                pass
        if self._process is not None:
            self._process.join(timeout=timeout)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=JOIN_S)
            self._exitcode = self._process.exitcode
            self._process = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def restart(self) -> Connection:
        """Stop the child (if any) and start a fresh one now."""
        self.stop()
        self.restarts += 1
        return self.start()

    def failed(self, now: float | None = None) -> float:
        """End a child whose pipe broke and schedule its restart after the back-off (which then
        doubles, up to ``backoff_max``); returns the delay in seconds."""
        delay = self._backoff
        self.stop()
        self._restart_at = (time.monotonic() if now is None else now) + delay
        self._backoff = min(delay * 2.0, self._backoff_max)
        return delay

    def due(self, now: float | None = None) -> float:
        """Seconds until a scheduled restart is due (0 when it is due now)."""
        return max(0.0, self._restart_at - (time.monotonic() if now is None else now))


class Worker:
    """A daemon thread running ``target()`` until ``stopping`` is set; :meth:`stop` sets it and waits
    up to ``join_s`` seconds for the loop to end (idempotent, safe before :meth:`start`)."""

    def __init__(self, target: Callable[[], None], name: str, join_s: float = JOIN_S) -> None:
        self.stopping = threading.Event()
        self.join_s = join_s
        self._thread = threading.Thread(target=target, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.join_s)
