"""Builds patches/vis2mus.pd (the Pd controller) and patches/test_driver.pd (its headless driver).

The controller sends every control through ``[oscformat]`` to one ``[netsend -u -b]`` and parses
the server's feedback with ``[oscparse]``, both from the netsend's reply outlet (the server answers
the sender by default) and from ``[netreceive -u -b 9001]`` (for ``--osc-reply 127.0.0.1:9001``).
Its GUI objects have global receive names (``v2m.brightness`` ...), so another patch can move them;
the driver does exactly that, so a headless run exercises the same objects the GUI uses.
"""

from __future__ import annotations

from live.oscspace import FEEDBACK, PREFIX
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


def _sender(c: Canvas, x: int, y: int, name: str, types: str = "") -> int:
    """``[oscformat ...]`` for control ``name`` wired to the local send that reaches the netsend."""
    fmt = c.obj(x, y, _oscformat(address(name), types))
    c.connect(fmt, 0, c.obj(x, y + 24, f"s {OUT}"), 0)
    return fmt


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
    c = Canvas(1060, 1000)
    c.comment(20, 8, "vis2mus-live controller: OSC to the server (default 127.0.0.1:9000). Pd vanilla 0.51 or later.")
    c.comment(20, 26, "Change the server address in the connect box. Feedback arrives on the same socket or on the listen port.")

    # network
    load = c.obj(620, 60, "loadbang")
    boot = c.obj(620, 85, "t b b b")
    connect = c.msg(620, 115, f"connect {SERVER_HOST} {SERVER_PORT}")
    disconnect = c.msg(790, 115, "disconnect")
    listen = c.msg(700, 145, f"listen {REPLY_PORT}")
    r_connect = c.obj(790, 145, "r v2m.connect")
    r_listen = c.obj(880, 145, "r v2m.listen")
    r_out = c.obj(620, 175, f"r {OUT}")
    netsend = c.obj(620, 200, "netsend -u -b")
    netreceive = c.obj(780, 200, "netreceive -u -b")
    c.floatatom(620, 230, 2, 0, 1, "sending")
    status = c.count - 1
    parse = c.obj(700, 260, "oscparse")
    c.chain(load, boot)
    c.connect(boot, 2, connect, 0)
    c.connect(boot, 1, listen, 0)
    c.chain(connect, netsend)
    c.chain(disconnect, netsend)
    reconnect = c.obj(790, 170, "t a b")
    c.chain(r_connect, reconnect, netsend)
    c.connect(reconnect, 1, disconnect, 0)
    c.chain(r_out, netsend)
    c.chain(listen, netreceive)
    c.chain(r_listen, netreceive)
    c.connect(netsend, 0, status, 0)
    c.connect(netsend, 1, parse, 0)
    c.connect(netreceive, 0, parse, 0)

    # controls
    y = 60
    c.comment(20, y - 16, "brightness")
    bright = c.hslider(20, y, *range_of("brightness"), "alpha_b", "v2m.brightness")
    c.chain(bright, _sender(c, 240, y, "brightness"))
    y += 50
    c.comment(20, y - 16, "contrast")
    contrast = c.hslider(20, y, *range_of("contrast"), "alpha_c", "v2m.contrast")
    c.chain(contrast, _sender(c, 240, y, "contrast"))
    y += 50
    tempo = c.floatatom(80, y, 5, *range_of("tempo"), "tempo", "v2m.tempo")
    c.chain(tempo, _sender(c, 240, y, "tempo"))
    velocity = c.floatatom(480, y, 4, *range_of("velocity"), "velocity", "v2m.velocity")
    c.chain(velocity, _sender(c, 440, y + 24, "velocity", "i"))
    y += 70
    senders = {}
    for i, name in enumerate(("play", "stop", "panic", "state")):
        button = c.bang(20 + 110 * i, y, name, f"v2m.{name}")
        senders[name] = _sender(c, 20 + 110 * i, y + 30, name)
        c.chain(button, senders[name])
    ask = c.obj(620, 290, "delay 200")
    c.connect(boot, 0, ask, 0)
    c.chain(ask, senders["state"])

    y += 90
    c.comment(20, y - 16, "anchor (texture): by index or by name")
    index = c.hradio(20, y, max(len(names.anchors), 1))
    c.chain(index, _sender(c, 20, y + 26, "anchor", "i"))
    y += 60
    pick = c.obj(20, y + 50, "t s s")
    c.chain(c.obj(120, y + 50, "r v2m.anchor"), pick)
    c.chain(pick, _sender(c, 20, y + 76, "anchor"))
    for i, name in enumerate(names.anchors):
        c.chain(c.msg(20 + 100 * (i % 5), y + 22 * (i // 5), f"symbol {name}"), pick)

    y += 130
    c.comment(20, y - 16, "style: a content piece played with the current anchor's texture")
    style = c.obj(20, y + 30, "list append")
    c.connect(pick, 1, style, 1)
    c.chain(style, _sender(c, 20, y + 56, "style"))
    for i, name in enumerate(names.pieces):
        c.chain(c.msg(20 + 120 * i, y, f"symbol {name}"), style)
    if names.anchors:
        first = c.msg(240, y + 30, f"symbol {names.anchors[0]}")
        c.connect(load, 0, first, 0)
        c.connect(first, 0, style, 1)
    c.chain(c.bang(460, y, "style-off", "v2m.style-off"), _sender(c, 460, y + 30, "style/off"))

    y += 110
    c.comment(20, y - 16, "chords: click a progression (edit a box in edit mode to enter your own)")
    join = c.subpatch(20, y + 52, _chord_joiner())
    c.chain(join, _sender(c, 20, y + 78, "chords"))
    c.chain(c.obj(200, y + 52, "r v2m.chords"), join)
    for i, prog in enumerate(PROGRESSIONS):
        c.chain(c.msg(20 + 90 * i, y, prog), join)
    c.chain(c.bang(480, y + 52, "chords-off", "v2m.chords-off"), _sender(c, 480, y + 78, "chords/off"))

    y += 130
    c.comment(20, y - 16, "quantum")
    quantum = _sender(c, 20, y + 30, "quantum")
    for i, q in enumerate(QUANTA):
        c.chain(c.msg(20 + 70 * i, y, f"symbol {q}"), quantum)
    c.chain(c.obj(240, y, "r v2m.quantum"), quantum)
    c.comment(360, y - 16, "source")
    source = _sender(c, 360, y + 30, "source")
    for i, s in enumerate(SOURCES):
        c.chain(c.msg(360 + 80 * i, y, f"symbol {s}"), source)
    y += 80
    c.comment(20, y - 16, "preset")
    c.chain(c.hradio(20, y, PRESETS), _sender(c, 20, y + 26, "preset", "i"))

    # feedback
    fields = state_fields()
    shown = [key for key, _ in fields if key not in GUI_FEEDBACK]
    fy = 330
    c.comment(620, fy, "feedback from the server")
    for i, key in enumerate(("bar", "beat")):
        c.floatatom(620 + 90 * i, fy + 24, 4, 0, 0, key, f"{LOCAL}-{key}")
    c.symbolatom(680, fy + 54, 24, "error", f"{LOCAL}-error")
    for i, (key, sig) in enumerate(f for f in fields if f[0] in shown):
        if key == "playing":
            c.toggle(800, fy + 24, key, f"{LOCAL}-{key}")
        elif sig == "s":
            c.symbolatom(680, fy + 80 + 26 * i, 24, key, f"{LOCAL}-{key}")
        else:
            c.floatatom(680, fy + 80 + 26 * i, 4, 0, 0, key, f"{LOCAL}-{key}")
    trim = c.obj(700, 285, "list trim")
    fan = c.obj(700, 310, "t a a")
    c.chain(parse, trim, fan)
    c.connect(fan, 1, c.obj(800, 310, "s v2m.feedback"), 0)
    fy = 640
    top = c.obj(620, fy, "route vis2mus")
    kind = c.obj(620, fy + 25, "route beat error state")
    c.connect(fan, 0, top, 0)
    c.chain(top, kind)
    beat = c.obj(620, fy + 50, "unpack f f")
    c.chain(kind, beat)
    c.chain(beat, c.obj(620, fy + 75, f"s {LOCAL}-bar"))
    c.connect(beat, 1, c.obj(700, fy + 75, f"s {LOCAL}-beat"), 0)
    err = c.obj(780, fy + 50, "list")
    c.connect(kind, 1, err, 0)
    err_fan = c.obj(780, fy + 75, "t a a")
    c.chain(err, err_fan)
    c.connect(err_fan, 1, c.obj(860, fy + 100, "print vis2mus-error"), 0)
    c.chain(err_fan, c.msg(780, fy + 100, "set \\$1"), c.obj(780, fy + 125, f"s {LOCAL}-error"))
    route = c.obj(620, fy + 155, "route " + " ".join(key for key, _ in fields))
    c.connect(kind, 2, route, 0)
    for i, (key, _) in enumerate(fields):
        x = 620 + 30 * i
        row = fy + 180 + 20 * (i % 3)
        as_list = c.obj(x, row, "list")
        c.connect(route, i, as_list, 0)
        target = GUI_FEEDBACK.get(key, f"{LOCAL}-{key}")
        c.chain(as_list, c.msg(x, row + 60, "set \\$1"), c.obj(x, row + 120, f"s {target}"))
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
    c = Canvas(640, 480)
    c.comment(10, 8, "Headless driver for tests: pd -nogui -nosound -open test_driver.pd -send \"v2m.test run 9000 9001 NAME\"")
    c.obj(10, 40, "vis2mus")
    r = c.obj(10, 80, "r v2m.test")
    run = c.obj(10, 105, "route run")
    args = c.obj(10, 130, "unpack f f s")
    c.chain(r, run, args)
    name = c.obj(200, 230, "symbol")
    c.connect(args, 2, name, 1)
    c.connect(args, 1, c.msg(120, 160, "listen \\$1"), 0)
    c.chain(c.count - 1, c.obj(120, 185, "s v2m.listen"))
    start = c.obj(10, 160, "t b f")
    c.chain(args, start)
    c.connect(start, 1, c.msg(40, 185, f"connect {SERVER_HOST} \\$1"), 0)
    c.chain(c.count - 1, c.obj(40, 210, "s v2m.connect"))
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
        d = c.obj(10 + 85 * i, 260, f"delay {ms}")
        c.connect(start, 0, d, 0)
        if text is None:
            c.chain(d, name, c.obj(200, 290, "s v2m.anchor"))
        elif text == "done":
            c.chain(d, c.msg(10 + 85 * i, 290, "done"), c.obj(10 + 85 * i, 320, "print v2m-driver"))
        else:
            c.chain(d, c.msg(10 + 85 * i, 290, text))
    c.chain(c.obj(10, 380, "r v2m.feedback"), c.obj(10, 405, "print v2m-fb"))
    return c.text()
