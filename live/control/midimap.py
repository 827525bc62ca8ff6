"""MIDI control change -> performer controls of ``live.control.oscspace``: the CC map.

A ``Binding`` ties a controller (``channel`` 0..15 or ``None`` for any, ``cc`` 0..127) to one
control by its OSC name (``brightness``, ``tempo``, ``play``, ...), with a value ``range`` and a
``curve``. ``value_of`` turns a 7-bit CC value into the OSC arguments that control takes, so a CC
goes the same way as an OSC message (``handlers`` makes the same ``Params`` calls as the OSC
server). Buttons (controls without arguments) fire when the CC crosses 64 upwards.

The TOML config file holds the map as ``[midi.cc]``, one entry per control, channels 1-based::

    [midi.cc]
    brightness = { cc = 20 }                                   # any channel, the control's range
    tempo = { cc = 22, channel = 1, range = [60, 180], curve = "exp" }
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import tomllib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import tomli_w

from live.control import oscdispatch, oscspace
from live.control.params import QUANTA, SOURCES, Params, Update

CURVES = ("linear", "exp", "log")
BUTTON_THRESHOLD = 64
CHOICES: dict[str, tuple[str, ...]] = {"quantum": QUANTA, "source": SOURCES}


def _name(address: oscspace.Address) -> str:
    return address.path[len(oscspace.PREFIX) + 1:]


BUTTONS = frozenset(_name(a) for a in oscspace.CONTROLS if a.performer and a.signatures == ("",))
NUMERIC = frozenset(_name(a) for a in oscspace.CONTROLS if a.performer and a.low is not None and a.high is not None)
MAPPABLE = tuple(_name(a) for a in oscspace.CONTROLS if _name(a) in NUMERIC | BUTTONS | set(CHOICES) | {"anchor"})
"""Controls a CC can steer, in the order of the OSC table."""


class MapError(ValueError):
    """A bad CC map entry; the text is one line."""


@dataclass(frozen=True)
class Binding:
    """One controller -> one control. ``low``/``high`` ``None``: the control's own range."""

    control: str
    cc: int
    channel: int | None = None
    low: float | None = None
    high: float | None = None
    curve: str = "linear"

    def matches(self, channel: int, cc: int) -> bool:
        return self.cc == cc and (self.channel is None or self.channel == channel)


DEFAULT_MAP: tuple[Binding, ...] = (
    Binding("brightness", 20), Binding("contrast", 21), Binding("tempo", 22, low=60.0, high=180.0),
    Binding("velocity", 23), Binding("anchor", 24), Binding("quantum", 25), Binding("source", 26),
    Binding("preset", 27, low=0, high=7),
    Binding("play", 41), Binding("stop", 42), Binding("panic", 46),
)
"""A generic 8-fader controller: faders CC 20..27, transport buttons CC 41 (play), 42 (stop) and
46 (panic), on any channel (the transport numbers of a Korg nanoKONTROL2)."""


def check_binding(binding: Binding) -> Binding:
    """``binding`` if valid, else ``MapError`` (one line)."""
    if binding.control not in MAPPABLE:
        raise MapError(f"{binding.control!r} cannot be mapped to a CC (one of {', '.join(MAPPABLE)})")
    if isinstance(binding.cc, bool) or not isinstance(binding.cc, int) or not 0 <= binding.cc <= 127:
        raise MapError(f"{binding.control}: cc must be 0..127, got {binding.cc!r}")
    if binding.channel is not None and (isinstance(binding.channel, bool) or not isinstance(binding.channel, int)
                                        or not 0 <= binding.channel <= 15):
        raise MapError(f"{binding.control}: channel must be 1..16, got {binding.channel!r}")
    if binding.curve not in CURVES:
        raise MapError(f"{binding.control}: curve must be one of {', '.join(CURVES)}, got {binding.curve!r}")
    for end in (binding.low, binding.high):
        if end is not None and (isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end)):
            raise MapError(f"{binding.control}: range must be two finite numbers")
    span = _span(binding.control)
    if span is not None and binding.low is not None and binding.high is not None:
        for end in (binding.low, binding.high):
            if not span[0] <= end <= span[1]:
                raise MapError(f"{binding.control}: range end {end:g} outside {span[0]:g}..{span[1]:g}")
    return binding


def _span(control: str) -> tuple[float, float] | None:
    address = oscspace.BY_PATH[f"{oscspace.PREFIX}/{control}"]
    return (float(address.low), float(address.high)) if address.low is not None else None


def shape(value: int, curve: str) -> float:
    """A CC value 0..127 -> 0..1 through ``curve`` (``exp``: fine at the low end, ``log``: at the top)."""
    x = min(max(value, 0), 127) / 127.0
    if curve == "exp":
        return x * x
    if curve == "log":
        return math.sqrt(x)
    return x


def value_of(binding: Binding, value: int, anchors: int) -> list[object]:
    """The OSC arguments for CC ``value`` (0..127) under ``binding``; ``anchors`` is how many
    anchors ``/vis2mus/anchor i`` can index. Buttons return ``[]``."""
    control = binding.control
    if control in BUTTONS:
        return []
    x = shape(value, binding.curve)
    if control in CHOICES:
        options = CHOICES[control]
        return [options[min(len(options) - 1, int(x * len(options)))]]
    if control == "anchor":
        low = 0.0 if binding.low is None else binding.low
        high = anchors - 1.0 if binding.high is None else min(binding.high, anchors - 1.0)
        return [int(round(low + (high - low) * x))]
    span = _span(control)
    assert span is not None
    low = span[0] if binding.low is None else binding.low
    high = span[1] if binding.high is None else binding.high
    number = low + (high - low) * x
    address = oscspace.BY_PATH[f"{oscspace.PREFIX}/{control}"]
    return [int(round(number))] if address.signatures == ("i",) else [float(number)]


def handlers(params: Params) -> dict[str, Callable[[list], str | None]]:
    """The OSC server's own handlers (``live.control.oscdispatch``) for the mappable controls:
    name -> ``handler(values) -> clamp notice or None``, so a CC makes exactly the ``Params`` call
    its OSC address makes."""
    table = oscdispatch.handlers(params, on_state=lambda _peer: None)

    def bind(handler: oscdispatch.Handler) -> Callable[[list], str | None]:
        def call(values: list) -> str | None:
            result = handler(values, ("midi", 0))
            return result.note if isinstance(result, Update) else None
        return call

    return {name: bind(table[f"{oscspace.PREFIX}/{name}"]) for name in MAPPABLE}


# The [midi.cc] table of the TOML config

def parse_map(table: Any, where: str = "midi.cc") -> tuple[Binding, ...]:
    """``[midi.cc]`` (control -> ``{cc, channel?, range?, curve?}``) -> bindings; ``MapError``."""
    if not isinstance(table, Mapping):
        raise MapError(f"{where} must be a table of controls")
    out = []
    for control, entry in table.items():
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = {"cc": entry}
        if not isinstance(entry, Mapping):
            raise MapError(f"{where}.{control} must be a table such as {{ cc = 20 }}")
        unknown = set(entry) - {"cc", "channel", "range", "curve"}
        if unknown:
            raise MapError(f"{where}.{control}: unknown key {sorted(unknown)[0]!r} (cc, channel, range, curve)")
        if "cc" not in entry:
            raise MapError(f"{where}.{control}: needs a cc number")
        channel = entry.get("channel")
        if channel is not None and (isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16):
            raise MapError(f"{where}.{control}: channel must be 1..16, got {channel!r}")
        span = entry.get("range")
        if span is not None and (not isinstance(span, list) or len(span) != 2):
            raise MapError(f"{where}.{control}: range must be [low, high]")
        try:
            out.append(check_binding(Binding(str(control), entry["cc"], None if channel is None else channel - 1,
                                             None if span is None else span[0], None if span is None else span[1],
                                             entry.get("curve", "linear"))))
        except MapError as error:
            raise MapError(f"{where}.{error}") from None
    return tuple(out)


def map_table(bindings: tuple[Binding, ...]) -> dict[str, dict[str, object]]:
    """Bindings -> the ``[midi.cc]`` table (the inverse of ``parse_map``)."""
    table: dict[str, dict[str, object]] = {}
    for b in bindings:
        entry: dict[str, object] = {"cc": b.cc}
        if b.channel is not None:
            entry["channel"] = b.channel + 1
        if b.low is not None and b.high is not None:
            entry["range"] = [b.low, b.high]
        if b.curve != "linear":
            entry["curve"] = b.curve
        table[b.control] = entry
    return table


def save_map(path: str, bindings: tuple[Binding, ...]) -> str:
    """Write ``bindings`` as ``[midi.cc]`` into the TOML file ``path``, keeping its other keys:
    the old file is copied to ``PATH.bak`` first and the new one replaces it atomically (written
    beside it, then renamed). Returns the backup path. ``MapError`` when the file cannot be read
    as TOML or written."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        data = {}
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise MapError(f"cannot read {path}: {error}") from None
    midi = data.get("midi")
    data["midi"] = dict(midi) if isinstance(midi, Mapping) else {}
    data["midi"]["cc"] = map_table(bindings)
    backup = f"{path}.bak"
    folder = os.path.dirname(os.path.abspath(path))
    try:
        if os.path.exists(path):
            shutil.copy2(path, backup)
        fd, tmp = tempfile.mkstemp(prefix=".vis2mus-", suffix=".toml", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                tomli_w.dump(data, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as error:
        raise MapError(f"cannot write {path}: {error.strerror or error}") from None
    return backup

