"""What the CLI shows on stderr: log lines (``vis2mus: ...``) and the live status line."""

from __future__ import annotations

import logging
import sys
import time

STATUS_EVERY_S = 5.0


def setup_logging(stream=sys.stderr) -> None:
    """The one log handler of a CLI process: ``vis2mus: <message>`` lines on ``stream``, INFO and up."""
    root = logging.getLogger()
    if any(getattr(h, "vis2mus", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("vis2mus: %(message)s"))
    handler.vis2mus = True
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class StatusLine:
    """The live status line on stderr (``mode`` ``line``): rewritten in place on a TTY, a periodic
    line otherwise; ``log`` always prints periodic lines; ``off`` prints nothing."""

    def __init__(self, mode: str = "line", stream=sys.stderr) -> None:
        self.stream = stream
        self.mode = mode
        self.tty = mode == "line" and stream.isatty()
        self._last = 0.0

    def show(self, text: str) -> None:
        now = time.monotonic()
        if self.mode == "off":
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
        elif now - self._last >= STATUS_EVERY_S:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
