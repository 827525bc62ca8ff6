"""The one log handler of a command-line program.

Every module logs through ``logging.getLogger(__name__)``; a command (``vis2mus-live``,
``vis2mus-render``) calls :func:`setup` once, which sends the records of the ``live`` loggers to
stderr as ``<program>: <message>`` lines. The live status line is not a log record: the server
writes it itself.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def setup(program: str = "vis2mus", level: int = logging.INFO) -> None:
    """Log ``live.*`` records of ``level`` and above as ``<program>: <message>`` lines on stderr
    (replaces the handler of an earlier call in the same process)."""
    logger = logging.getLogger("live")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(f"{program}: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
