"""Every option of the live server, from the command line and from ``--config FILE.toml``.

Each option is defined once in ``OPTIONS``; the TOML file uses the same names (``osc_port`` or
``osc-port``) and may add ``[presets.N]`` tables (``anchor``, ``content``, ``brightness``,
``contrast``, ``tempo``). Precedence: command line, then the TOML file, then the defaults. Unknown
keys, wrong types and out-of-range values are one-line ``ConfigError``s.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
import time
import tomllib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import tomli_w

from live.checks import finite, in_range, one_line
from live.control.midimap import Binding, MapError, map_table, parse_map
from live.control.oscspace import DEFAULT_HOST, DEFAULT_PORT, parse_host_port
from live.control.params import (ALPHA_RANGE, OFFSET_RANGE, PRESET_RANGE, QUANTA, SOURCES, TEMPO_RANGE, VELOCITY_RANGE,
                                 Params, Preset, State)
from live.texture.register import DEFAULT_RANGE, check_range
from live.texture.vis2mus import MODES

MIDI_APIS = ("auto", "alsa", "jack", "coremidi", "winmm")
DEVICES = ("auto", "cpu", "cuda")
STATUS_MODES = ("line", "log", "off")
CAMERA_OPTIONS = ("camera", "video", "image")


class ConfigError(ValueError):
    """A bad option value or configuration file; the text is one line."""


@dataclass(frozen=True)
class Settings:
    """Everything the server's ``main`` needs, validated.

    ``record`` is where to record: the given path, else ``recordings/vis2mus-<UTC time>.mid``
    (``record_default`` is then true), or ``None`` with ``no_record``. ``anchor`` holds anchor
    names or anchor folders (the first is the one to start with), ``anchors`` directories of
    anchor folders (``live.texture.library``).
    """

    bpm: float = 120.0
    quantum: str = "beat"
    velocity: int = 80
    follow_velocity: bool = False
    anchor: tuple[str, ...] = ()
    anchors: tuple[str, ...] = ()
    osc_host: str = DEFAULT_HOST
    osc_port: int = DEFAULT_PORT
    osc_allow: tuple[str, ...] = ()
    osc_reply: tuple[str, int] | None = None
    midi_api: str = "auto"
    midi_port: str | None = None
    midi_name: str = "Vis2Mus"
    max_note: float = 4.0
    clock_in: str | None = None
    clock_out: bool = False
    record: str | None = None
    no_record: bool = False
    record_default: bool = field(default=False, repr=False)
    camera: int | None = None
    video: str | None = None
    image: str | None = None
    source: str | None = None
    smoothing: float = 0.5
    camera_timeout: float = 2.0
    weights: str | None = None
    device: str = "auto"
    threads: int = 1
    mode: str = "feel"
    register: tuple[int, int] = DEFAULT_RANGE
    status: str = "line"
    midi_in: str | None = None
    no_midi_in: bool = False
    chord_channel: int | None = None
    chord_split: int = 60
    chord_hold: float = 2.0
    thru_channel: int | None = None
    midi_offset: float = 0.0
    melody_channel: int = 1
    accompaniment_channel: int = 2
    oscquery: int | None = None
    oscquery_host: str = DEFAULT_HOST
    oscquery_advertise: bool = False
    link: bool = False
    presets: Mapping[int, Preset] = field(default_factory=dict)
    midi_map: tuple[Binding, ...] | None = None
    config: str | None = None

    @property
    def alpha_source(self) -> str:
        """Who steers alpha at start: ``--source`` if given, else camera when a camera/video/image is set."""
        if self.source is not None:
            return self.source
        return "camera" if any(getattr(self, name) is not None for name in CAMERA_OPTIONS) else "osc"


def build_params(settings: Settings, anchors: Sequence[str], contents: Sequence[str] = (),
                 start: str | None = None) -> Params:
    """The performance state the server starts with (anchor, tempo, quantum, velocity, source,
    presets). ``start`` is the anchor to start with (``live.texture.library.Library.start_anchor``),
    else the first ``anchor`` setting, else the first of ``anchors``."""
    if not anchors:
        raise ConfigError("no anchors loaded")
    start = start if start is not None else (settings.anchor[0] if settings.anchor else None)
    if start is not None and start not in anchors:
        raise ConfigError(f"unknown anchor {start!r} (known: {', '.join(anchors)}; or give a folder path)")
    initial = State(anchor=start or anchors[0], tempo=settings.bpm, quantum=settings.quantum,
                    velocity=settings.velocity, source=settings.alpha_source, midi_offset=settings.midi_offset)
    try:
        return Params(anchors, contents, settings.presets, initial)
    except ValueError as error:
        raise ConfigError(f"presets: {error}") from None


# Value parsers: each takes a string (command line) or a TOML value and returns the setting.

def _number(kind: type, low: float | None = None, high: float | None = None) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ConfigError(f"expected a number, got {value!r}")
        try:
            number = kind(value) if not isinstance(value, str) or kind is float else int(value, 10)
        except (TypeError, ValueError):
            raise ConfigError(f"expected {'an integer' if kind is int else 'a number'}, got {value!r}") from None
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"expected an integer, got {value!r}")
        try:
            finite("", number) if low is None or high is None else in_range("", number, low, high)
        except ValueError as error:
            raise ConfigError(one_line(error)) from None
        return number
    parse.__name__ = kind.__name__
    return parse


def _choice(options: Sequence[str]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in options:
            raise ConfigError(f"expected one of {', '.join(options)}, got {value!r}")
        return value.lower()
    parse.__name__ = "choice"
    return parse


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"expected text, got {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def _host(value: Any) -> str:
    text = _text(value)
    try:
        return str(ipaddress.IPv4Address(socket.gethostbyname(text)))
    except (OSError, ValueError):
        raise ConfigError(f"expected an IPv4 address or host name such as 127.0.0.1 or 0.0.0.0, "
                          f"got {value!r}") from None


def _allow(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ConfigError(f"expected IP addresses, got {value!r}")
    out = []
    for item in items:
        try:
            out.append(str(ipaddress.ip_address(str(item).strip())))
        except ValueError:
            raise ConfigError(f"not an IP address: {item!r}") from None
    return tuple(out)


def _reply(value: Any) -> tuple[str, int]:
    try:
        return parse_host_port(_text(value))
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _register(value: Any) -> tuple[int, int]:
    if isinstance(value, str):
        low, sep, high = value.partition("-")
        items = [low, high] if sep else [value]
    else:
        items = value
    if not isinstance(items, (list, tuple)) or len(items) != 2:
        raise ConfigError(f"expected LOW-HIGH MIDI pitches such as 28-100, got {value!r}")
    low, high = (_number(int, 0, 127)(item.strip() if isinstance(item, str) else item) for item in items)
    try:
        return check_range(low, high)
    except ValueError as error:
        raise ConfigError(str(error)) from None


@dataclass(frozen=True)
class Option:
    """One server option: its settings field, command-line flag, parser, metavar and help.
    A ``repeat`` option may be given several times (a list in TOML) and gives a tuple."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    metavar: str | None = None
    flag: bool = False
    repeat: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("bpm", _number(float, *TEMPO_RANGE), "tempo of the internal clock (default 120)", "BPM"),
    Option("quantum", _choice(QUANTA), "when changes land: beat, bar or segment (default beat)", "Q"),
    Option("velocity", _number(int, *VELOCITY_RANGE), "accompaniment velocity 1..127 (default 80)", "V"),
    Option("follow_velocity", _flag, "use the anchor's own note velocities instead of --velocity", flag=True),
    Option("anchor", _text, "an anchor to start with, by name, or an anchor folder to load and start with; "
                            "repeatable (default: the first of --anchors, else the first shipped anchor)",
           "NAME|PATH", repeat=True),
    Option("anchors", _text, "load every anchor folder in DIR, re-scanned while playing; repeatable", "DIR",
           repeat=True),
    Option("osc_host", _host, "OSC listen address (default 127.0.0.1; 0.0.0.0 for a phone on the LAN)", "IP"),
    Option("osc_port", _number(int, 1, 65535), "OSC listen port (default 9000)", "PORT"),
    Option("osc_allow", _allow, "only these sender IPs besides loopback, comma separated", "IP,..."),
    Option("osc_reply", _reply, "send OSC feedback here instead of to each sender", "HOST:PORT"),
    Option("midi_api", _choice(MIDI_APIS), "MIDI backend: auto, alsa, jack, coremidi or winmm", "API"),
    Option("midi_port", _text, "connect to this existing MIDI output port instead of a virtual 'Vis2Mus'", "NAME"),
    Option("midi_name", _text, "name of the virtual MIDI output port (default Vis2Mus)", "NAME"),
    Option("max_note", _number(float, 0.25, 64.0), "longest note in beats; longer ones are cut (default 4)",
           "BEATS"),
    Option("clock_in", _text, "follow MIDI clock (start/stop/continue, tempo) from this input port", "PORT"),
    Option("clock_out", _flag, "send MIDI clock (24 ppqn, start/stop) on the output port", flag=True),
    Option("record", _text, "record to this MIDI file (default: a timestamped file in recordings/)", "PATH"),
    Option("no_record", _flag, "do not record", flag=True),
    Option("camera", _number(int, 0, 63), "steer alpha from camera INDEX", "INDEX"),
    Option("video", _text, "steer alpha from a video file or stream URL (files loop)", "FILE|URL"),
    Option("image", _text, "steer alpha from an image file, re-read when it changes", "FILE"),
    Option("source", _choice(SOURCES), "who steers alpha at start: osc or camera (default: camera if a "
                                        "camera, video or image is given)", "SRC"),
    Option("smoothing", _number(float, 0.0, 60.0), "time constant of the camera alpha smoothing in s "
                                                   "(default 0.5)", "S"),
    Option("camera_timeout", _number(float, 0.1, 600.0), "a stalled camera/video holds its last alpha this "
                                                         "long, then decays to neutral (default 2)", "S"),
    Option("weights", _text, "model weights (.pt or exported ONNX folder; default: weights/)", "PATH"),
    Option("device", _choice(DEVICES), "inference device: auto, cpu or cuda (default auto)", "DEV"),
    Option("threads", _number(int, 1, 64), "inference threads (default 1)", "N"),
    Option("mode", _choice(MODES), "feel (each fader move a small, steady change of the anchor; default) or paper "
                                   "(the paper's eq. 1/2 straight, the model's decode as it is)", "MODE"),
    Option("register", _register, "feel mode folds notes by octaves into this MIDI pitch range (default 28-100, "
                                  "E1..E7)", "LOW-HIGH"),
    Option("status", _choice(STATUS_MODES), "status display: line (live status line), log or off", "MODE"),
    Option("midi_in", _text, "take MIDI control from this existing port instead of a virtual 'Vis2Mus in'",
           "PORT"),
    Option("no_midi_in", _flag, "no MIDI input", flag=True),
    Option("chord_channel", _number(int, 1, 16), "only keys on this channel make chords (default any)", "CH"),
    Option("chord_split", _number(int, 0, 128), "keys below this note make chords (default 60, middle C; "
                                                "128 = every key)", "NOTE"),
    Option("chord_hold", _number(float, 0.0, 60.0), "the keys' chord stays this long after the last key is "
                                                    "released (default 2)", "S"),
    Option("thru_channel", _number(int, 1, 16), "notes on this input channel pass through to the output "
                                                "unchanged (a played melody)", "CH"),
    Option("midi_offset", _number(float, *OFFSET_RANGE), "shift every MIDI event by MS milliseconds, "
                                                         "-50..200 (a synth's own latency; default 0)", "MS"),
    Option("melody_channel", _number(int, 1, 16), "MIDI channel of the melody (default 1)", "CH"),
    Option("accompaniment_channel", _number(int, 1, 16), "MIDI channel of the accompaniment (default 2)", "CH"),
    Option("oscquery", _number(int, 1, 65535), "serve the OSCQuery namespace over HTTP on this port "
                                               "(default off)", "PORT"),
    Option("oscquery_host", _host, "OSCQuery listen address (default 127.0.0.1)", "IP"),
    Option("oscquery_advertise", _flag, "advertise OSCQuery with zeroconf (_oscjson._tcp)", flag=True),
    Option("link", _flag, "join an Ableton Link session (pip install -e .[link])", flag=True),
)
BY_NAME = {option.name: option for option in OPTIONS}


def parser() -> argparse.ArgumentParser:
    """The command-line parser; options it was not given are absent from the namespace."""
    p = argparse.ArgumentParser(
        prog="vis2mus-live",
        description="Real-time MIDI/OSC performance server: OSC faders or a camera steer the "
                    "brightness, contrast and style of a piano accompaniment.",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--config", metavar="FILE.toml", help="read options and [presets.N] from a TOML file")
    p.add_argument("--print-config", action="store_true", help="print the effective settings as TOML and exit")
    p.add_argument("--panic", action="store_true",
                   help="send note-offs, CC 120 and CC 123 on all channels to --midi-port (or every MIDI input "
                        "port) and exit: for notes left sounding by a server that was killed")
    for option in OPTIONS:
        flag = "--" + option.name.replace("_", "-")
        if option.flag:
            p.add_argument(flag, dest=option.name, action="store_true", help=option.help)
        elif option.repeat:
            p.add_argument(flag, dest=option.name, type=str, action="append", metavar=option.metavar,
                           help=option.help)
        else:
            p.add_argument(flag, dest=option.name, type=str, metavar=option.metavar, help=option.help)
    return p


def read_toml(path: str) -> tuple[dict[str, Any], dict[int, Preset]]:
    """Options and presets from a TOML file (unknown keys are errors)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path} is not valid TOML: {error}") from None
    values: dict[str, Any] = {}
    presets: dict[int, Preset] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "presets":
            presets = _presets(path, value)
        elif name == "midi":
            values["midi_map"] = _midi(path, value)
        elif name in BY_NAME:
            values[name] = _parsed(name, value, f"config {path}: {key}")
        else:
            raise ConfigError(f"config {path}: unknown key {key!r} (see vis2mus-live --help)")
    return values, presets


def _midi(path: str, table: Any) -> tuple[Binding, ...] | None:
    if not isinstance(table, dict) or set(table) - {"cc"}:
        raise ConfigError(f"config {path}: midi must be a table with a [midi.cc] table")
    if "cc" not in table:
        return None
    try:
        return parse_map(table["cc"])
    except MapError as error:
        raise ConfigError(f"config {path}: {error}") from None


def _parsed(name: str, value: Any, where: str) -> Any:
    option = BY_NAME[name]
    try:
        if option.repeat:
            return tuple(option.parse(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        return option.parse(value)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _presets(path: str, table: Any) -> dict[int, Preset]:
    if not isinstance(table, dict):
        raise ConfigError(f"config {path}: presets must be tables [presets.N]")
    presets = {}
    for key, entry in table.items():
        where = f"config {path}: presets.{key}"
        number = _parsed_number(key, where)
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(entry) - {"anchor", "content", "brightness", "contrast", "tempo", "midi_offset"}
        if unknown:
            raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} "
                              "(anchor, content, brightness, contrast, tempo, midi_offset)")
        if "anchor" not in entry:
            raise ConfigError(f"{where}: needs an anchor")
        try:
            presets[number] = Preset(
                anchor=_text(entry["anchor"]),
                content=_text(entry["content"]) if "content" in entry else None,
                alpha_b=_number(float, *ALPHA_RANGE)(entry.get("brightness", 0.0)),
                alpha_c=_number(float, *ALPHA_RANGE)(entry.get("contrast", 0.0)),
                tempo=_number(float, *TEMPO_RANGE)(entry["tempo"]) if "tempo" in entry else None,
                midi_offset=_number(float, *OFFSET_RANGE)(entry["midi_offset"]) if "midi_offset" in entry else None,
            )
        except ConfigError as error:
            raise ConfigError(f"{where}: {error}") from None
    return presets


def _parsed_number(key: str, where: str) -> int:
    try:
        return _number(int, *PRESET_RANGE)(key)
    except ConfigError as error:
        raise ConfigError(f"{where}: preset numbers are 0..127 ({error})") from None


def parse_settings(argv: Sequence[str] | None = None) -> Settings:
    """Command line (and its ``--config`` file) -> ``Settings``; ``ConfigError`` on a bad value.

    argparse itself exits with status 2 on unknown flags or a missing value.
    """
    given = vars(parser().parse_args(argv))
    config = given.pop("config", None)
    given.pop("print_config", None)
    given.pop("panic", None)
    values, presets = read_toml(config) if config else ({}, {})
    cli = {name: _parsed(name, value, "--" + name.replace("_", "-")) for name, value in given.items()}
    if any(name in cli for name in CAMERA_OPTIONS):
        values = {name: value for name, value in values.items() if name not in CAMERA_OPTIONS}
    values.update(cli)
    chosen = [name for name in CAMERA_OPTIONS if values.get(name) is not None]
    if len(chosen) > 1:
        raise ConfigError(f"choose one of --camera, --video, --image (got {', '.join(chosen)})")
    if values.get("no_record") and values.get("record"):
        raise ConfigError("--record and --no-record contradict each other")
    auto = not values.get("no_record") and not values.get("record")
    if auto:
        values["record"] = time.strftime("recordings/vis2mus-%Y%m%d-%H%M%SZ.mid", time.gmtime())
    return Settings(**values, presets=presets, config=config, record_default=auto)


def load_settings(argv: Sequence[str] | None = None) -> Settings:
    """``parse_settings`` for ``main``: a bad value prints one line with the usage and exits with 2;
    ``--print-config`` prints the effective settings as TOML and exits with 0."""
    args = list(sys.argv[1:] if argv is None else argv)
    show = "--print-config" in args
    try:
        settings = parse_settings([a for a in args if a != "--print-config"])
    except ConfigError as error:
        parser().error(str(error))
    if show:
        sys.stdout.write(settings_toml(settings))
        raise SystemExit(0)
    return settings


def settings_toml(settings: Settings | None = None) -> str:
    """A TOML file that reproduces ``settings`` (defaults when ``None``), presets included."""
    settings = settings or Settings()
    data: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(settings, option.name)
        if value is None or (option.repeat and not value) or (option.name == "record" and settings.record_default):
            continue
        if option.name == "osc_reply":
            value = f"{value[0]}:{value[1]}"
        data[option.name] = _toml_value(value)
    presets = {}
    for number, preset in sorted(settings.presets.items()):
        table: dict[str, Any] = {"anchor": preset.anchor}
        if preset.content is not None:
            table["content"] = preset.content
        table["brightness"] = preset.alpha_b
        table["contrast"] = preset.alpha_c
        if preset.tempo is not None:
            table["tempo"] = preset.tempo
        if preset.midi_offset is not None:
            table["midi_offset"] = preset.midi_offset
        presets[str(number)] = table
    if presets:
        data["presets"] = presets
    if settings.midi_map is not None:
        data["midi"] = {"cc": map_table(settings.midi_map)}
    return tomli_w.dumps(data)


def _toml_value(value: Any) -> Any:
    """A setting as a value tomli-w writes: bools, numbers, strings and lists as they are, the
    rest (paths) as text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [_toml_value(v) for v in value]
    return str(value)
