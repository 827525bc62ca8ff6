"""MIDI port plumbing shared by the output (``live.playback.midiout``), the input
(``live.control.midiin``) and the clock follower: which rtmidi backends to try, silencing the
backends' own complaints, the JACK server's identity and port listing for the watchdogs."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys

import rtmidi

PEER_MISSES = 2
API_NAMES = {"alsa": rtmidi.API_LINUX_ALSA, "jack": rtmidi.API_UNIX_JACK, "coremidi": rtmidi.API_MACOSX_CORE,
             "winmm": rtmidi.API_WINDOWS_MM}
FIX_HINT = ("start a JACK server (jackd -d dummy, or jackd -d alsa) or load the ALSA sequencer "
            "(modprobe snd-seq); on Windows install loopMIDI and pass --midi-port")


def api_candidates(api: str) -> list[int]:
    """rtmidi API ids to try for ``--midi-api`` ``auto|alsa|jack|coremidi|winmm``, in order (``auto``:
    ALSA, JACK, CoreMIDI, WinMM as compiled; JACK first when ``JACK_DEFAULT_SERVER`` is set)."""
    compiled = rtmidi.get_compiled_api()
    if api == "auto":
        preferred = [rtmidi.API_LINUX_ALSA, rtmidi.API_UNIX_JACK, rtmidi.API_MACOSX_CORE, rtmidi.API_WINDOWS_MM]
        if os.environ.get("JACK_DEFAULT_SERVER"):
            preferred.remove(rtmidi.API_UNIX_JACK)
            preferred.insert(0, rtmidi.API_UNIX_JACK)
        return [a for a in preferred if a in compiled]
    if api not in API_NAMES:
        raise ValueError(f"unknown MIDI API {api!r} (one of auto, {', '.join(API_NAMES)})")
    return [API_NAMES[api]]


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2 for a moment: ALSA and JACK client libraries print their own
    multi-line complaints when a backend is missing; the caller prints one line instead."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def jack_server_stamp() -> tuple[int, int] | None:
    """Identity of the running JACK server's socket ``(inode, mtime_ns)``, or ``None`` when absent.

    JACK2 on Linux listens on ``/dev/shm/jack_<server>_<uid>_0``; the server name comes from
    ``JACK_DEFAULT_SERVER`` (``default`` otherwise). A restarted server gets a new socket file.
    """
    name = os.environ.get("JACK_DEFAULT_SERVER", "default")
    try:
        st = os.stat(f"/dev/shm/jack_{name}_{os.getuid()}_0")
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns


def list_ports(client, api_id: int | None) -> list[str]:
    """Port names. For JACK, ``jack_lsp`` in a child process when installed: rtmidi's own listing
    is a round trip to the JACK server made while holding the GIL, which a busy server can
    stretch to many milliseconds, stalling the send thread."""
    if api_id == rtmidi.API_UNIX_JACK and shutil.which("jack_lsp"):
        try:
            done = subprocess.run(["jack_lsp"], capture_output=True, text=True, timeout=5)
            return done.stdout.split("\n")
        except (OSError, subprocess.TimeoutExpired):
            return []
    try:
        return client.get_ports()
    except Exception:  # a broken backend lists nothing
        return []
