"""``vis2mus-live --panic``: silence a synth that a dead server left with notes sounding.

A server that exits normally (Ctrl-C, SIGTERM, port loss) ends every note itself. One killed with
SIGKILL (or the OOM killer) cannot: the notes it had started keep sounding at the synth. This
one-shot command sends, on all 16 channels, a note-off for every key, then CC 120 (all sound off)
and CC 123 (all notes off), to ``--midi-port`` or, without it, to every MIDI input port the
backend lists (the dead server's own virtual port is gone, so its peers cannot be found any other
way). The events are paced a channel at a time so that a JACK period's MIDI buffer never overflows.
"""

from __future__ import annotations

import time

import rtmidi

from live.playback.midiout import ALL_NOTES_OFF, CONTROL, NOTE_OFF, api_candidates, quiet_stderr

ALL_SOUND_OFF = 120
CHANNELS = range(16)
PACE_S = 0.01
DRAIN_S = 0.3


def panic_messages(channel: int) -> list[list[int]]:
    """Note-off for all 128 keys, then CC 120 and CC 123, on ``channel`` (0-based)."""
    return ([[NOTE_OFF | channel, key, 0] for key in range(128)]
            + [[CONTROL | channel, ALL_SOUND_OFF, 0], [CONTROL | channel, ALL_NOTES_OFF, 0]])


def panic(api: str = "auto", port: str | None = None, name: str = "Vis2Mus") -> tuple[list[str], list[str]]:
    """Send the panic to ``port`` (a substring of the port name) or to every input port.

    Returns ``(ports reached, problems)``; a backend that does not work is a problem, not an error.
    """
    reached: list[str] = []
    problems: list[str] = []
    for api_id in api_candidates(api):
        api_name = rtmidi.get_api_name(api_id)
        try:
            with quiet_stderr():
                probe = rtmidi.MidiOut(api_id, name=f"{name}-panic")
                ports = probe.get_ports()
                probe.delete()
        except Exception as exc:  # rtmidi backends raise SystemError/RtMidiError subclasses
            problems.append(f"{api_name}: {str(exc).strip()}")
            continue
        targets = [i for i, p in enumerate(ports) if port is None or port in p]
        if port is not None and not targets:
            problems.append(f"{api_name}: no port matching {port!r}")
        for index in targets:
            try:
                out = rtmidi.MidiOut(api_id, name=f"{name}-panic")
                out.open_port(index, "panic")
                for channel in CHANNELS:
                    for message in panic_messages(channel):
                        out.send_message(message)
                    time.sleep(PACE_S)
                time.sleep(DRAIN_S)
                out.close_port()
                out.delete()
                reached.append(ports[index])
            except Exception as exc:  # one broken port must not keep the others from their panic
                problems.append(f"{api_name} {ports[index]!r}: {str(exc).strip()}")
        if reached:
            break
    return reached, problems
