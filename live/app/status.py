"""The live status line the CLI shows on stderr (log lines go through ``live.logs``)."""

from __future__ import annotations

import sys
import time

STATUS_EVERY_S = 5.0


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
