"""Keys on the status line's terminal: ``l`` arms MIDI learn for the next control in turn (the
status line names it), ``s`` saves the CC map into the ``--config`` file.

Only when stdin is a terminal; it is put in cbreak mode (keys arrive one by one, Ctrl-C still
interrupts) and restored by ``stop()``.
"""

from __future__ import annotations

import os
import select
import sys
from typing import Callable

from live.children import Worker

POLL_S = 0.1


class TerminalKeys:
    """Calls ``on_key(char)`` from a thread for every key typed on ``stream`` (a terminal)."""

    def __init__(self, on_key: Callable[[str], None], stream=sys.stdin) -> None:
        self.on_key = on_key
        self.stream = stream
        self._saved = None
        self._worker = Worker(self._run, "keys", join_s=1.0)

    def start(self) -> bool:
        """Start reading keys; False (and nothing changed) when the stream is not a terminal."""
        try:
            import termios
            import tty

            if not self.stream.isatty():
                return False
            fd = self.stream.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        except (ImportError, OSError, ValueError):
            return False
        self._worker.start()
        return True

    def _run(self) -> None:
        fd = self.stream.fileno()
        while not self._worker.stopping.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], POLL_S)
                if ready:
                    data = os.read(fd, 1)
                    if not data:
                        return
                    self.on_key(data.decode(errors="replace"))
            except (OSError, ValueError):
                return

    def stop(self) -> None:
        """Stop reading and give the terminal its settings back (idempotent)."""
        self._worker.stop()
        if self._saved is not None:
            import termios

            try:
                termios.tcsetattr(self.stream.fileno(), termios.TCSADRAIN, self._saved)
            except (OSError, ValueError):
                pass
            self._saved = None
