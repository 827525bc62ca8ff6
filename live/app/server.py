"""vis2mus-live: the long-running performance server (``python run_live.py`` or ``vis2mus-live``).

``main`` parses the options (``live.app.config``), builds and opens a ``live.app.performance.
Performance`` and runs it until SIGINT/SIGTERM: all notes off + CC 123, recording closed, exit 0.
A signal while it is still starting stops what has started (the render child included), exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys

from live import logs

GIL_SWITCH_S = 0.0005

log = logging.getLogger(__name__)


def panic_main(settings) -> int:
    """``vis2mus-live --panic``: one line per port reached (``live.playback.panic``); 1 if none."""
    from live.playback.panic import panic

    reached, problems = panic(settings.midi_api, settings.midi_port, settings.midi_name)
    for port in reached:
        log.warning("panic sent to %r: note-offs, CC 120, CC 123 on all 16 channels", port)
    if not reached:
        log.error("panic reached no MIDI port (%s)", "; ".join(problems) or "no input ports listed")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: parse the options, run until SIGINT/SIGTERM, exit 0 (1 if it cannot start)."""
    from live.app.config import load_settings
    from live.app.performance import Performance

    logs.setup()
    args = list(sys.argv[1:] if argv is None else argv)
    if "--panic" in args:
        return panic_main(load_settings([a for a in args if a != "--panic"]))
    settings = load_settings(args)
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        performance = Performance(settings)
    except Exception as exc:
        log.error("cannot start: %s", exc)
        return 1
    starting_signals: list[int] = []

    def on_starting_signal(signum, _frame) -> None:
        # noted as well as raised, so a start whose exception a library swallows still ends here
        starting_signals.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_starting_signal)
    signal.signal(signal.SIGTERM, on_starting_signal)
    try:
        performance.open()
    except KeyboardInterrupt:
        pass  # on_starting_signal noted it
    except Exception as exc:
        log.error("cannot start: %s", exc)
        performance.shutdown()
        return 1
    if starting_signals:
        log.warning("interrupted while starting")
        performance.shutdown()
        return 0

    def on_signal(signum, _frame) -> None:
        performance.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    performance.run()
    return 0
