"""The performance state that the sources (OSC, camera) write and the server reads.

One ``Params`` object holds a frozen ``State`` snapshot behind a lock. Every setter validates its
input in one place: NaN/inf, unknown names and wrong types raise ``ValueError`` with a one-line
message and leave the state untouched; continuous values (alphas, tempo, velocity) are clamped to
their range and the returned ``Update.note`` says so. After a change, every subscriber is called
with the new snapshot and the set of changed field names (in the order the changes happened, from
the thread that made the change, never while the state lock is held).

Transport and other commands without state of their own go to the server as actions:
``on_action("play"|"stop"|"panic"|"state", callback)``. ``play()``/``stop()`` also set ``playing``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Iterable, Mapping, NamedTuple

from live.checks import clamp, finite, in_range
from live.music.chords import progression_rows
from live.music.notes import TEMPO_RANGE
from live.texture.transform import ALPHA_RANGE

log = logging.getLogger(__name__)

QUANTA = ("beat", "bar", "segment")
SOURCES = ("osc", "camera")
ACTIONS = ("play", "stop", "panic", "state")
VELOCITY_RANGE = (1.0, 127.0)
PRESET_RANGE = (0.0, 127.0)


@dataclass(frozen=True)
class State:
    """One immutable snapshot of the performance state.

    ``anchor`` is the texture anchor (the style anchor in style mode); ``content`` is the content
    piece name in style mode, else ``None``; ``chords`` is the performer's progression text that
    overrides the anchor's chords, else ``None``; ``preset`` is the last recalled preset number;
    ``revision`` counts the reloads of the current anchor or content piece from its folder (a
    changed piece under the same name).
    """

    alpha_b: float = 0.0
    alpha_c: float = 0.0
    anchor: str = ""
    content: str | None = None
    tempo: float = 120.0
    playing: bool = True
    quantum: str = "beat"
    source: str = "osc"
    chords: str | None = None
    velocity: int = 80
    preset: int | None = None
    revision: int = 0

    def as_dict(self) -> dict[str, object]:
        """The snapshot as a plain dict (field name -> value)."""
        return asdict(self)


FIELDS = tuple(f.name for f in fields(State))


@dataclass(frozen=True)
class Preset:
    """A recallable scene: anchor (or style anchor), optional content piece, alphas, optional tempo."""

    anchor: str
    content: str | None = None
    alpha_b: float = 0.0
    alpha_c: float = 0.0
    tempo: float | None = None


class Update(NamedTuple):
    """What a setter did: the new snapshot, the fields that changed, and a clamp notice or ``None``."""

    state: State
    changed: frozenset[str]
    note: str | None


Subscriber = Callable[[State, frozenset], None]
ActionCallback = Callable[[State], None]


class Params:
    """Thread-safe performance state with validation, change subscription, presets and actions.

    ``anchors`` is the ordered list of texture anchor names (``/vis2mus/anchor i`` indexes it),
    ``contents`` the content piece names usable in style mode, ``presets`` maps preset numbers to
    ``Preset``. ``initial`` fields are validated like any later change.
    """

    def __init__(
        self,
        anchors: Iterable[str],
        contents: Iterable[str] = (),
        presets: Mapping[int, Preset] | None = None,
        initial: State | None = None,
    ) -> None:
        self.anchors: tuple[str, ...] = tuple(anchors)
        if not self.anchors:
            raise ValueError("Params needs at least one anchor name")
        self.contents: tuple[str, ...] = tuple(contents)
        self.presets: dict[int, Preset] = {}
        for number, preset in (presets or {}).items():
            self._check_preset(number, preset)
            self.presets[number] = preset
        self._lock = threading.Lock()
        self._notify_lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._actions: dict[str, list[ActionCallback]] = {name: [] for name in ACTIONS}
        start = initial or State(anchor=self.anchors[0])
        self._state = State(anchor=self.anchors[0])
        self._state = self._validated(start)

    # Reading and subscribing

    def snapshot(self) -> State:
        """The current state (immutable)."""
        with self._lock:
            return self._state

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(state, changed_fields)`` after every change; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def on_action(self, name: str, callback: ActionCallback) -> None:
        """Register ``callback(state)`` for an action: ``play``, ``stop``, ``panic`` or ``state``."""
        if name not in ACTIONS:
            raise ValueError(f"unknown action {name!r} (one of {', '.join(ACTIONS)})")
        with self._lock:
            self._actions[name].append(callback)

    # Setters (each validates, returns an Update and notifies subscribers on change)

    def set_brightness(self, value: object) -> Update:
        """Set alpha_b, clamped to -1..1."""
        number, note = clamp("brightness", finite("brightness", value), *ALPHA_RANGE)
        return self._apply({"alpha_b": number}, note)

    def set_contrast(self, value: object) -> Update:
        """Set alpha_c, clamped to -1..1."""
        number, note = clamp("contrast", finite("contrast", value), *ALPHA_RANGE)
        return self._apply({"alpha_c": number}, note)

    def set_alpha(self, alpha_b: object, alpha_c: object, source: str | None = None) -> Update | None:
        """Set both alphas at once (clamped). With ``source`` given (``"camera"``), the write is
        dropped and ``None`` returned unless that source currently steers alpha."""
        b, note_b = clamp("brightness", finite("brightness", alpha_b), *ALPHA_RANGE)
        c, note_c = clamp("contrast", finite("contrast", alpha_c), *ALPHA_RANGE)
        if source is not None and source not in SOURCES:
            raise ValueError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
        note = "; ".join(n for n in (note_b, note_c) if n) or None
        return self._apply({"alpha_b": b, "alpha_c": c}, note, require_source=source)

    def set_anchor(self, anchor: object) -> Update:
        """Switch the texture anchor by name or by index into ``anchors``."""
        return self._apply({"anchor": self._anchor_name(anchor)}, None)

    def set_style(self, content: object, style: object) -> Update:
        """Enter style mode: the melody and chords of ``content`` with the texture of anchor ``style``."""
        return self._apply({"content": self._content_name(content), "anchor": self._anchor_name(style)}, None)

    def style_off(self) -> Update:
        """Leave style mode."""
        return self._apply({"content": None}, None)

    def set_tempo(self, bpm: object) -> Update:
        """Set the tempo in BPM, clamped to 20..300."""
        number, note = clamp("tempo", finite("tempo", bpm), *TEMPO_RANGE)
        return self._apply({"tempo": number}, note)

    def set_quantum(self, quantum: object) -> Update:
        """When changes land: ``beat``, ``bar`` or ``segment``."""
        return self._apply({"quantum": _choice("quantum", quantum, QUANTA)}, None)

    def set_source(self, source: object) -> Update:
        """Who steers alpha: ``osc`` or ``camera``."""
        return self._apply({"source": _choice("source", source, SOURCES)}, None)

    def set_chords(self, text: object) -> Update:
        """Override the chords with a progression such as ``"C Am F G"``; ``None`` or ``""`` clears it."""
        return self._apply({"chords": _progression(text)}, None)

    def set_velocity(self, velocity: object) -> Update:
        """Accompaniment velocity, rounded and clamped to 1..127."""
        number, note = clamp("velocity", float(round(finite("velocity", velocity))), *VELOCITY_RANGE)
        return self._apply({"velocity": int(number)}, note)

    def set_playing(self, playing: bool) -> Update:
        """Record the transport state without firing an action (the server's own clock changes)."""
        if not isinstance(playing, bool):
            raise ValueError(f"playing must be true or false, got {playing!r}")
        return self._apply({"playing": playing}, None)

    def recall(self, number: object) -> Update:
        """Recall preset ``number``: anchor, content (style mode or not), alphas and tempo if set."""
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"preset must be an integer, got {number!r}")
        preset = self.presets.get(number)
        if preset is None:
            known = ", ".join(str(n) for n in sorted(self.presets)) or "none defined"
            raise ValueError(f"no preset {number} (presets: {known})")
        self._anchor_name(preset.anchor)
        if preset.content is not None:
            self._content_name(preset.content)
        values: dict[str, object] = {
            "anchor": preset.anchor, "content": preset.content,
            "alpha_b": float(preset.alpha_b), "alpha_c": float(preset.alpha_c), "preset": number,
        }
        if preset.tempo is not None:
            values["tempo"] = float(preset.tempo)
        return self._apply(values, None)

    def set_library(self, anchors: Iterable[str], contents: Iterable[str] = (), reloaded: Iterable[str] = ()) -> Update:
        """Replace the names of the loaded anchors and content pieces (an anchor folder re-scan).
        A current anchor that is gone gives way to the first anchor; a current content piece that
        is gone ends style mode; a current one in ``reloaded`` (changed under the same name) bumps
        ``revision``. Presets keep their names; recalling one whose anchor is gone fails."""
        names, pieces, fresh = tuple(anchors), tuple(contents), set(reloaded)
        if not names:
            raise ValueError("Params needs at least one anchor name")
        with self._notify_lock:
            with self._lock:
                self.anchors, self.contents = names, pieces
                state = self._state
            values: dict[str, object] = {}
            if state.anchor not in names:
                values["anchor"] = names[0]
            if state.content is not None and state.content not in pieces:
                values["content"] = None
            if not values and (state.anchor in fresh or state.content in fresh):
                values["revision"] = state.revision + 1
            note = None
            if values:
                note = f"anchor {state.anchor!r} is gone, now {values.get('anchor', state.anchor)!r}" \
                    if "anchor" in values else f"content piece {state.content!r} is gone; style mode off"
            return self._apply(values, note)

    # Actions

    def play(self) -> Update:
        """Start the transport: sets ``playing`` and fires the ``play`` action."""
        update = self.set_playing(True)
        self._fire("play", update.state)
        return update

    def stop(self) -> Update:
        """Stop the transport: clears ``playing`` and fires the ``stop`` action."""
        update = self.set_playing(False)
        self._fire("stop", update.state)
        return update

    def panic(self) -> None:
        """Fire the ``panic`` action (all notes off); the state is unchanged."""
        self._fire("panic", self.snapshot())

    def query(self) -> State:
        """Fire the ``state`` action and return the current snapshot."""
        state = self.snapshot()
        self._fire("state", state)
        return state

    # Internals

    def _anchor_name(self, anchor: object) -> str:
        if isinstance(anchor, bool):
            raise ValueError(f"anchor must be a name or an index, got {anchor!r}")
        if isinstance(anchor, int):
            if not 0 <= anchor < len(self.anchors):
                raise ValueError(f"anchor index {anchor} out of range 0..{len(self.anchors) - 1}")
            return self.anchors[anchor]
        if isinstance(anchor, str) and anchor in self.anchors:
            return anchor
        raise ValueError(f"unknown anchor {anchor!r} (known: {', '.join(self.anchors)})")

    def _content_name(self, content: object) -> str:
        if isinstance(content, str) and content in self.contents:
            return content
        known = ", ".join(self.contents) or "none loaded"
        raise ValueError(f"unknown content piece {content!r} (known: {known})")

    def _check_preset(self, number: object, preset: Preset) -> None:
        if isinstance(number, bool) or not isinstance(number, int):
            raise ValueError(f"preset number must be an integer, got {number!r}")
        if not PRESET_RANGE[0] <= number <= PRESET_RANGE[1]:
            raise ValueError(f"preset number {number} out of range {PRESET_RANGE[0]:g}..{PRESET_RANGE[1]:g}")
        self._anchor_name(preset.anchor)
        if preset.content is not None:
            self._content_name(preset.content)
        in_range(f"preset {number} alpha_b", preset.alpha_b, *ALPHA_RANGE)
        in_range(f"preset {number} alpha_c", preset.alpha_c, *ALPHA_RANGE)
        if preset.tempo is not None:
            in_range(f"preset {number} tempo", preset.tempo, *TEMPO_RANGE)

    def _validated(self, state: State) -> State:
        """Run every field of ``state`` through its setter's checks (for the initial state)."""
        checks = {
            "alpha_b": lambda v: clamp("brightness", finite("brightness", v), *ALPHA_RANGE)[0],
            "alpha_c": lambda v: clamp("contrast", finite("contrast", v), *ALPHA_RANGE)[0],
            "anchor": self._anchor_name,
            "content": lambda v: None if v is None else self._content_name(v),
            "tempo": lambda v: clamp("tempo", finite("tempo", v), *TEMPO_RANGE)[0],
            "playing": bool,
            "quantum": lambda v: _choice("quantum", v, QUANTA),
            "source": lambda v: _choice("source", v, SOURCES),
            "chords": _progression,
            "velocity": lambda v: int(clamp("velocity", finite("velocity", v), *VELOCITY_RANGE)[0]),
            "preset": lambda v: v,
            "revision": int,
        }
        if state.preset is not None and state.preset not in self.presets:
            raise ValueError(f"no preset {state.preset}")
        return State(**{name: checks[name](getattr(state, name)) for name in FIELDS})

    def _apply(self, values: dict[str, object], note: str | None, require_source: str | None = None) -> Update | None:
        with self._notify_lock:
            with self._lock:
                if require_source is not None and self._state.source != require_source:
                    return None
                old = self._state
                new = replace(old, **values)
                changed = frozenset(name for name in values if getattr(old, name) != getattr(new, name))
                self._state = new
                subscribers = list(self._subscribers)
            if changed:
                for callback in subscribers:
                    try:
                        callback(new, changed)
                    except Exception as error:  # a faulty subscriber must not stop the others
                        log.error("params subscriber %r failed: %s", callback, error)
            return Update(new, changed, note)

    def _fire(self, name: str, state: State) -> None:
        with self._lock:
            callbacks = list(self._actions[name])
        for callback in callbacks:
            try:
                callback(state)
            except Exception as error:  # a faulty action handler must not stop the others
                log.error("%s action handler %r failed: %s", name, callback, error)


def _choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in options:
        return value.strip().lower()
    raise ValueError(f"{name} must be one of {', '.join(options)}, got {value!r}")


def _progression(text: object) -> str | None:
    """A validated, whitespace-normalised chord progression; ``None`` or blank text clears it."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if not isinstance(text, str):
        raise ValueError(f"chords must be text, got {type(text).__name__}")
    progression_rows(text, 1)  # parses and converts every chord of the progression
    return " ".join(text.split())
