"""The OSC address space of vis2mus-live, defined once.

The server's dispatcher, the README table and the controller patches all read this table; the
value ranges are the parameters' own (``live.control.params``).
Type tags follow OSC: ``f`` float, ``i`` int, ``s`` string. An address may accept several
signatures (``/vis2mus/anchor`` takes a name or an index); an empty signature means no arguments.
A float argument also accepts an int (Pure Data's ``oscformat`` and TouchOSC may send either).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from live.control.params import ALPHA_RANGE, PRESET_RANGE, TEMPO_RANGE, VELOCITY_RANGE

PREFIX = "/vis2mus"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
"""Where the OSC server listens unless told otherwise."""


@dataclass(frozen=True)
class Address:
    """One OSC address: its accepted type signatures, value range and what it does."""

    path: str
    signatures: tuple[str, ...]
    doc: str
    low: float | None = None
    high: float | None = None
    performer: bool = True


CONTROLS: tuple[Address, ...] = (
    Address(f"{PREFIX}/brightness", ("f",), "brightness alpha_b, {:g}..{:g} (0 = anchor as is)".format(*ALPHA_RANGE), *ALPHA_RANGE),
    Address(f"{PREFIX}/contrast", ("f",), "contrast alpha_c, {:g}..{:g} (0 = anchor as is)".format(*ALPHA_RANGE), *ALPHA_RANGE),
    Address(f"{PREFIX}/anchor", ("s", "i"), "switch the texture anchor by name or index"),
    Address(f"{PREFIX}/style", ("ss",), "style transfer: content piece name, style anchor name"),
    Address(f"{PREFIX}/style/off", ("",), "leave style mode, back to the anchor's own music"),
    Address(f"{PREFIX}/tempo", ("f",), "tempo in BPM, {:g}..{:g}".format(*TEMPO_RANGE), *TEMPO_RANGE),
    Address(f"{PREFIX}/play", ("",), "start the transport"),
    Address(f"{PREFIX}/stop", ("",), "stop the transport (all notes off)"),
    Address(f"{PREFIX}/panic", ("",), "note-off for every open note plus CC 123 on every channel"),
    Address(f"{PREFIX}/quantum", ("s",), "when changes land: beat, bar or segment"),
    Address(f"{PREFIX}/source", ("s",), "who steers alpha: osc or camera"),
    Address(f"{PREFIX}/preset", ("i",), "recall preset N (anchor, style, alphas, tempo)",
            *PRESET_RANGE),
    Address(f"{PREFIX}/chords", ("s",), 'replace the chords live: "C Am F G" (one a bar) or "C G | Am F" (per beat with |)'),
    Address(f"{PREFIX}/chords/off", ("",), "back to the anchor's own chords"),
    Address(f"{PREFIX}/velocity", ("i",), "accompaniment velocity {:g}..{:g}".format(*VELOCITY_RANGE),
            *VELOCITY_RANGE),
    Address(f"{PREFIX}/state", ("",), "ask for the full state (answered with /vis2mus/state/...)", performer=False),
)

FEEDBACK: tuple[Address, ...] = (
    Address(f"{PREFIX}/beat", ("ii",), "bar and beat (0-based) at every beat", performer=False),
    Address(f"{PREFIX}/error", ("s",), "one line for every rejected message", performer=False),
    Address(f"{PREFIX}/state/brightness", ("f",), "current alpha_b", performer=False),
    Address(f"{PREFIX}/state/contrast", ("f",), "current alpha_c", performer=False),
    Address(f"{PREFIX}/state/anchor", ("s",), "current anchor name", performer=False),
    Address(f"{PREFIX}/state/style", ("s",), "current content piece, or empty", performer=False),
    Address(f"{PREFIX}/state/tempo", ("f",), "current tempo", performer=False),
    Address(f"{PREFIX}/state/playing", ("i",), "1 while the transport runs", performer=False),
    Address(f"{PREFIX}/state/quantum", ("s",), "beat, bar or segment", performer=False),
    Address(f"{PREFIX}/state/source", ("s",), "osc or camera", performer=False),
    Address(f"{PREFIX}/state/chords", ("s",), "current chord override, or empty", performer=False),
    Address(f"{PREFIX}/state/velocity", ("i",), "current accompaniment velocity", performer=False),
    Address(f"{PREFIX}/state/preset", ("i",), "last recalled preset, or -1", performer=False),
)

BY_PATH: dict[str, Address] = {a.path: a for a in CONTROLS + FEEDBACK}


def parse_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(ip, port)`` with the host resolved; ``ValueError`` on a bad value."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    try:
        ip = socket.gethostbyname(host)
    except OSError as error:
        raise ValueError(f"cannot resolve {host!r}: {error}") from None
    return ip, int(port_text)


def markdown_table() -> str:
    """The address space as a Markdown table (the README's OSC section)."""
    rows = ["| address | arguments | range | what it does |", "|---|---|---|---|"]
    for a in CONTROLS + FEEDBACK:
        args = " or ".join(f"`{s}`" if s else "none" for s in a.signatures)
        span = f"{a.low:g}..{a.high:g}" if a.low is not None and a.high is not None else ""
        doc = a.doc.replace("|", "\\|")
        rows.append(f"| `{a.path}` | {args} | {span} | {doc} |")
    return "\n".join(rows)
