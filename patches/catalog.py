"""What the controller patches offer, taken from the server's own tables.

Every address comes from ``live.control.oscspace`` (``address`` refuses one the server does not know); the
anchor and content-piece names come from ``live.texture.anchors`` unless given explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from live.control.oscspace import BY_PATH, PREFIX

QUANTA: tuple[str, ...] = ("beat", "bar", "segment")
SOURCES: tuple[str, ...] = ("osc", "camera")
PROGRESSIONS: tuple[str, ...] = ("C Am F G", "Am F C G", "F G Em Am", "C G | Am F", "Dm G C C")
PRESETS = 8
TEMPO_RANGE = (40.0, 240.0)  # the faders' travel, inside the parameter's range (live.control.params.TEMPO_RANGE)
SERVER_HOST = "127.0.0.1"
SERVER_PORT = 9000
REPLY_PORT = 9001


def address(name: str) -> str:
    """The full OSC path of control ``name`` (e.g. ``"style/off"``), checked against oscspace."""
    path = f"{PREFIX}/{name}"
    if path not in BY_PATH:
        raise KeyError(f"{path} is not in live.control.oscspace")
    return path


def range_of(name: str) -> tuple[float, float]:
    """The server's ``(low, high)`` for a ranged control."""
    a = BY_PATH[address(name)]
    if a.low is None or a.high is None:
        raise KeyError(f"{a.path} has no range")
    return float(a.low), float(a.high)


@dataclass(frozen=True)
class Names:
    """Anchor names (texture styles) and content-piece names (melody + chords) shown as buttons."""

    anchors: tuple[str, ...]
    pieces: tuple[str, ...]


def default_names() -> Names:
    """The names of the anchors and content pieces that ship with the server (sorted)."""
    from live.texture.anchors import content_pieces, default_anchors

    return Names(tuple(sorted(default_anchors())), tuple(sorted(content_pieces())))
