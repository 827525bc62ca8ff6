"""Builds patches/vis2mus.pd (the Pd controller) and patches/test_driver.pd (its headless driver).

The controller sends every control through ``[oscformat]`` to one ``[netsend -u -b]`` and parses
the server's feedback with ``[oscparse]``, both from the netsend's reply outlet (the server answers
the sender by default) and from ``[netreceive -u -b 9001]`` (for ``--osc-reply 127.0.0.1:9001``).
Its GUI objects have global receive names (``v2m.brightness`` ...), so another patch can move them;
the driver does exactly that, so a headless run exercises the same objects the GUI uses.
"""

from __future__ import annotations

from live.control.oscspace import FEEDBACK, PREFIX
from patches.catalog import (
    PRESETS,
    PROGRESSIONS,
    QUANTA,
    REPLY_PORT,
    SERVER_HOST,
    SERVER_PORT,
    SOURCES,
    Names,
    address,
    range_of,
)
from patches.pdfile import Canvas

LOCAL = "\\$0"  # prefix of the patch-local send names, written escaped as Pd saves it
OUT = f"{LOCAL}-out"  # the local send that feeds the netsend
# state feedback that moves a control instead of a display box
GUI_FEEDBACK = {key: f"v2m.{key}" for key in ("brightness", "contrast", "tempo", "velocity")}


def state_fields() -> list[tuple[str, str]]:
    """``(key, signature)`` of every ``/vis2mus/state/KEY`` feedback address, in oscspace order."""
    marker = f"{PREFIX}/state/"
    return [(a.path[len(marker):], a.signatures[0]) for a in FEEDBACK if a.path.startswith(marker)]


def _oscformat(path: str, types: str = "") -> str:
    flag = f"-f {types} " if types else ""
    return f"oscformat {flag}{' '.join(path.strip('/').split('/'))}"


def _width(text: str) -> int:
    """Approximate width in pixels of a box showing ``text`` (font size 11)."""
    return 7 * len(text) + 10


class Flow:
    """Places boxes left to right from ``x0``, wrapping before ``right``; rows ``pitch`` apart."""

    def __init__(self, x0: int, y: int, right: int = 600, pitch: int = 30) -> None:
        self.x0, self.x, self.y, self.right, self.pitch = x0, x0, y, right, pitch

    def at(self, width: int) -> tuple[int, int]:
        """Top-left corner for a box ``width`` pixels wide."""
        if self.x + width > self.right and self.x > self.x0:
            self.newline()
        where = (self.x, self.y)
        self.x += width + 14
        return where

    def newline(self, extra: int = 0) -> int:
        """Start a new row (``extra`` more pixels down); returns its y."""
        self.x, self.y = self.x0, self.y + self.pitch + extra
        return self.y


def _senders(c: Canvas, f: Flow, controls: list[tuple[str, str]]) -> list[int]:
    """One ``[oscformat]`` per ``(control, types)`` on a new row, all into one ``[s $0-out]``."""
    f.newline()
    out = []
    for name, types in controls:
        text = _oscformat(address(name), types)
        out.append(c.obj(*f.at(_width(text)), text))
    send = c.obj(*f.at(_width(f"s {OUT}")), f"s {OUT}")
    for fmt in out:
        c.connect(fmt, 0, send, 0)
    return out


def _chord_joiner() -> Canvas:
    """``[pd join-chords]``: a list of symbols ``C Am F G`` -> one symbol ``"C Am F G"``."""
    s = Canvas(460, 400, "join-chords")
    inlet = s.obj(20, 10, "inlet")
    as_list = s.obj(20, 40, "list")
    order = s.obj(20, 70, "t b l b")
    acc = s.obj(20, 330, "list store")
    per_item = s.obj(120, 100, "t l l b")
    items = s.obj(160, 230, "list store")
    length = s.obj(120, 130, "list length")
    loop = s.obj(120, 160, "until")
    count = s.obj(120, 190, "f")
    step = s.obj(170, 190, "+ 1")
    reset = s.msg(260, 160, "0")
    get = s.msg(160, 205, "get \\$1 1")
    codes = s.obj(160, 260, "list fromsymbol")
    space = s.obj(160, 285, "list prepend 32")
    append = s.obj(160, 310, "list prepend append")
    trim = s.obj(160, 335, "list trim")
    drop_first = s.obj(20, 360, "list split 1")
    to_symbol = s.obj(20, 385, "list tosymbol")
    outlet = s.obj(20, 410, "outlet")
    s.chain(inlet, as_list, order)
    s.connect(order, 2, acc, 1)
    s.connect(order, 1, per_item, 0)
    s.connect(per_item, 2, reset, 0)
    s.connect(reset, 0, count, 1)
    s.connect(per_item, 1, items, 1)
    s.chain(per_item, length, loop, count, step)
    s.connect(step, 0, count, 1)
    s.chain(count, get, items, codes, space, append, trim, acc)
    s.connect(order, 0, acc, 0)
    s.chain(acc, drop_first)
    s.connect(drop_first, 1, to_symbol, 0)
    s.chain(to_symbol, outlet)
    return s


def controller(names: Names) -> str:
    """The text of patches/vis2mus.pd for these anchor and content-piece names."""
    c = Canvas(1300, 1000)
    c.comment(20, 8, "vis2mus-live controller (Pd vanilla 0.51 or later)")
    c.comment(640, 8, "network: edit the connect box for another host")

    # network (right column)
    load = c.obj(640, 34, "loadbang")
    boot = c.obj(640, 60, "t b b b")
    connect = c.msg(640, 90, f"connect {SERVER_HOST} {SERVER_PORT}")
    disconnect = c.msg(820, 90, "disconnect")
    listen = c.msg(720, 120, f"listen {REPLY_PORT}")
    r_connect = c.obj(820, 34, "r v2m.connect")
    reconnect = c.obj(820, 60, "t a b")
    r_listen = c.obj(840, 120, "r v2m.listen")
    r_out = c.obj(640, 150, f"r {OUT}")
    netsend = c.obj(640, 180, "netsend -u -b")
    netreceive = c.obj(800, 180, "netreceive -u -b")
    status = c.floatatom(640, 210, 2, 0, 1, "sending")
    parse = c.obj(760, 240, "oscparse")
    ask = c.obj(900, 150, "delay 200")
    c.chain(load, boot)
    c.connect(boot, 2, connect, 0)
    c.connect(boot, 1, listen, 0)
    c.connect(boot, 0, ask, 0)
    c.chain(connect, netsend)
    c.chain(disconnect, netsend)
    c.chain(r_connect, reconnect, netsend)
    c.connect(reconnect, 1, disconnect, 0)
    c.chain(r_out, netsend)
    c.chain(listen, netreceive)
    c.chain(r_listen, netreceive)
    c.connect(netsend, 0, status, 0)
    c.connect(netsend, 1, parse, 0)
    c.connect(netreceive, 0, parse, 0)

    # controls (left column), one band each: title, GUI row, helper row, oscformat row
    f = Flow(20, 40)
    c.comment(*f.at(300), "brightness and contrast (-1..1)")
    f.newline()
    bright = c.hslider(*f.at(200), *range_of("brightness"), "brightness", "v2m.brightness")
    contrast = c.hslider(*f.at(200), *range_of("contrast"), "contrast", "v2m.contrast")
    to_bright, to_contrast = _senders(c, f, [("brightness", ""), ("contrast", "")])
    c.chain(bright, to_bright)
    c.chain(contrast, to_contrast)

    f.newline(16)
    c.comment(*f.at(400), "transport, tempo (20..300), velocity (1..127)")
    f.newline()
    buttons = {name: c.bang(*f.at(70), name, f"v2m.{name}") for name in ("play", "stop", "panic", "state")}
    tempo = c.floatatom(*f.at(90), 5, *range_of("tempo"), "tempo", "v2m.tempo")
    velocity = c.floatatom(*f.at(100), 4, *range_of("velocity"), "velocity", "v2m.velocity")
    *to_buttons, to_tempo, to_velocity = _senders(c, f, [(n, "") for n in buttons] + [("tempo", ""), ("velocity", "i")])
    for button, fmt in zip(buttons.values(), to_buttons):
        c.chain(button, fmt)
    c.chain(ask, to_buttons[list(buttons).index("state")])
    c.chain(tempo, to_tempo)
    c.chain(velocity, to_velocity)

    f.newline(16)
    c.comment(*f.at(400), "anchor (texture): by index or by name")
    f.newline()
    index = c.hradio(*f.at(20 * max(len(names.anchors), 1)), max(len(names.anchors), 1))
    f.newline()
    by_name = [c.msg(*f.at(_width(f"symbol {n}")), f"symbol {n}") for n in names.anchors]
    f.newline()
    pick = c.obj(*f.at(_width("t s s")), "t s s")
    r_anchor = c.obj(*f.at(_width("r v2m.anchor")), "r v2m.anchor")
    by_index, by_name_fmt = _senders(c, f, [("anchor", "i"), ("anchor", "")])
    c.chain(index, by_index)
    for m in by_name:
        c.chain(m, pick)
    c.chain(r_anchor, pick)
    c.chain(pick, by_name_fmt)

    f.newline(16)
    c.comment(*f.at(560), "style: a content piece with the current anchor's texture")
    f.newline()
    pieces = [c.msg(*f.at(_width(f"symbol {n}")), f"symbol {n}") for n in names.pieces]
    style_off = c.bang(*f.at(90), "style-off", "v2m.style-off")
    f.newline()
    style = c.obj(*f.at(_width("list append")), "list append")
    first = c.msg(*f.at(_width(f"symbol {names.anchors[0]}")), f"symbol {names.anchors[0]}") if names.anchors else None
    to_style, to_style_off = _senders(c, f, [("style", ""), ("style/off", "")])
    for m in pieces:
        c.chain(m, style)
    c.connect(pick, 1, style, 1)
    if first is not None:
        c.connect(load, 0, first, 0)
        c.connect(first, 0, style, 1)
    c.chain(style, to_style)
    c.chain(style_off, to_style_off)

    f.newline(16)
    c.comment(*f.at(560), "chords: click one or edit a box in edit mode for your own")
    f.newline()
    progressions = [c.msg(*f.at(_width(p)), p) for p in PROGRESSIONS]
    chords_off = c.bang(*f.at(100), "chords-off", "v2m.chords-off")
    f.newline()
    join = c.subpatch(*f.at(_width("pd join-chords")), _chord_joiner())
    r_chords = c.obj(*f.at(_width("r v2m.chords")), "r v2m.chords")
    to_chords, to_chords_off = _senders(c, f, [("chords", ""), ("chords/off", "")])
    for m in progressions + [r_chords]:
        c.chain(m, join)
    c.chain(join, to_chords)
    c.chain(chords_off, to_chords_off)

    f.newline(16)
    c.comment(*f.at(560), "quantum, source, preset")
    f.newline()
    quanta = [c.msg(*f.at(_width(f"symbol {q}")), f"symbol {q}") for q in QUANTA]
    sources = [c.msg(*f.at(_width(f"symbol {s}")), f"symbol {s}") for s in SOURCES]
    preset = c.hradio(*f.at(20 * PRESETS), PRESETS)
    f.newline()
    r_quantum = c.obj(*f.at(_width("r v2m.quantum")), "r v2m.quantum")
    to_quantum, to_source, to_preset = _senders(c, f, [("quantum", ""), ("source", ""), ("preset", "i")])
    for m in quanta + [r_quantum]:
        c.chain(m, to_quantum)
    for m in sources:
        c.chain(m, to_source)
    c.chain(preset, to_preset)

    # feedback (right column): displays, then the parsing logic below them
    fields = state_fields()
    x, y = 640, 280
    c.comment(x, y, "feedback from the server")
    c.floatatom(x, y + 26, 4, 0, 0, "bar", f"{LOCAL}-bar")
    c.floatatom(x + 90, y + 26, 4, 0, 0, "beat", f"{LOCAL}-beat")
    c.symbolatom(x, y + 56, 30, "error", f"{LOCAL}-error")
    y += 86
    for key, sig in fields:
        if key in GUI_FEEDBACK:
            continue
        if key == "playing":
            c.toggle(x + 190, 306, key, f"{LOCAL}-{key}")
            continue
        if sig == "s":
            c.symbolatom(x, y, 30, key, f"{LOCAL}-{key}")
        else:
            c.floatatom(x, y, 4, 0, 0, key, f"{LOCAL}-{key}")
        y += 26
    y += 20
    trim = c.obj(x, y, "list trim")
    fan = c.obj(x, y + 26, "t a a")
    c.chain(parse, trim, fan)
    c.connect(fan, 1, c.obj(x + 80, y + 26, "s v2m.feedback"), 0)
    top = c.obj(x, y + 56, "route vis2mus")
    kind = c.obj(x, y + 82, "route beat error state")
    c.connect(fan, 0, top, 0)
    c.chain(top, kind)
    beat = c.obj(x, y + 112, "unpack f f")
    c.chain(kind, beat)
    c.chain(beat, c.obj(x, y + 138, f"s {LOCAL}-bar"))
    c.connect(beat, 1, c.obj(x + 80, y + 138, f"s {LOCAL}-beat"), 0)
    err = c.obj(x + 180, y + 112, "list")
    c.connect(kind, 1, err, 0)
    err_fan = c.obj(x + 180, y + 138, "t a a")
    c.chain(err, err_fan)
    c.connect(err_fan, 1, c.obj(x + 250, y + 164, "print vis2mus-error"), 0)
    c.chain(err_fan, c.msg(x + 180, y + 164, "set \\$1"), c.obj(x + 180, y + 190, f"s {LOCAL}-error"))
    route = c.obj(x, y + 220, "route " + " ".join(key for key, _ in fields))
    c.connect(kind, 2, route, 0)
    for i, (key, _) in enumerate(fields):
        fx, fy = x + 58 * i, y + 250 + 26 * (i % 3)
        as_list = c.obj(fx, fy, "list")
        c.connect(route, i, as_list, 0)
        target = GUI_FEEDBACK.get(key, f"{LOCAL}-{key}")
        c.chain(as_list, c.msg(fx, fy + 80, "set \\$1"), c.obj(fx, fy + 160, f"s {target}"))
        if key == "anchor":
            c.connect(as_list, 0, style, 1)
    return c.text()


def driver() -> str:
    """The text of patches/test_driver.pd.

    Send it ``v2m.test run SERVER_PORT REPLY_PORT ANCHOR`` (``pd -send``); it points the controller at
    127.0.0.1:SERVER_PORT, listens on REPLY_PORT, then moves the controller's own GUI objects:
    play and a state query at once, brightness 0.6 at 0.5 s, contrast -0.5 at 1 s, anchor ANCHOR at
    1.5 s, an invalid quantum at 2 s (the server must answer with an error), a state query at
    2.5 s, and prints ``v2m-driver: done`` at 3.5 s. Every feedback message is printed as ``v2m-fb:``.
    """
    c = Canvas(700, 560)
    c.comment(10, 8, "headless test driver: send v2m.test run PORT REPLY ANCHOR")
    c.obj(10, 40, "vis2mus")
    args = c.obj(10, 120, "unpack f f s")
    c.chain(c.obj(10, 70, "r v2m.test"), c.obj(10, 95, "route run"), args)
    start = c.obj(10, 150, "t b f")
    c.chain(args, start)
    connect = c.msg(60, 180, f"connect {SERVER_HOST} \\$1")
    c.connect(start, 1, connect, 0)
    c.chain(connect, c.obj(60, 205, "s v2m.connect"))
    listen = c.msg(260, 180, "listen \\$1")
    c.connect(args, 1, listen, 0)
    c.chain(listen, c.obj(260, 205, "s v2m.listen"))
    name = c.obj(400, 180, "symbol")
    c.connect(args, 2, name, 1)
    steps = (
        (0, "\\; v2m.play bang \\; v2m.state bang"),
        (500, "\\; v2m.brightness 0.6"),
        (1000, "\\; v2m.contrast -0.5"),
        (1500, None),
        (2000, "\\; v2m.quantum symbol nonsense"),
        (2500, "\\; v2m.state bang"),
        (3500, "done"),
    )
    for i, (ms, text) in enumerate(steps):
        y = 240 + 30 * i
        delay = c.obj(10, y, f"delay {ms}")
        c.connect(start, 0, delay, 0)
        if text is None:
            c.connect(delay, 0, name, 0)
            c.chain(name, c.obj(110, y, "s v2m.anchor"))
        elif text == "done":
            c.chain(delay, c.msg(110, y, "done"), c.obj(170, y, "print v2m-driver"))
        else:
            c.chain(delay, c.msg(110, y, text))
    c.chain(c.obj(10, 470, "r v2m.feedback"), c.obj(10, 495, "print v2m-fb"))
    return c.text()
