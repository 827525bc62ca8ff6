"""Builds patches/vis2mus.maxpat: the Max 8 controller and a Jitter camera path.

Controls go out through ``[udpsend 127.0.0.1 9000]`` (message boxes carry whole OSC messages,
``[prepend /vis2mus/...]`` turns a number or slider into one). Feedback comes in on
``[udpreceive 9001]``: Max's udpsend cannot receive, so start the server with
``--osc-reply 127.0.0.1:9001``. The camera path measures the luminance of each frame (mean and
standard deviation, as the server's OpenCV input does) against a reference frame taken with
"set reference" and sends brightness ``2 (m - m_ref)`` and contrast ``s / s_ref - 1``, clipped
to -1..1 (the inverse of the paper's brightness and contrast equations on luminance in 0..1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from live.control.oscspace import FEEDBACK, PREFIX
from patches.catalog import PROGRESSIONS, QUANTA, REPLY_PORT, SERVER_HOST, SERVER_PORT, SOURCES, Names, address, range_of

# inlets and outlets of the objects used here, as Max 8 reports them
_OBJECT_PORTS = {
    "udpsend": (1, 0),
    "udpreceive": (1, 1),
    "prepend": (1, 1),
    "route": (2, None),  # outlets: one per argument plus "no match"
    "unpack": (1, None),  # outlets: one per argument
    "t": (1, None),
    "tosymbol": (1, 1),
    "print": (1, 0),
    "loadbang": (1, 1),
    "qmetro": (2, 1),
    "jit.grab": (1, 2),
    "jit.rgb2luma": (1, 2),
    "jit.matrix": (1, 2),
    "jit.op": (2, 2),
    "jit.3m": (1, 4),
    "expr": (None, 1),  # inlets: one per $f
    "clip": (3, 1),
    "f": (2, 1),
    "sel": (2, None),
}
_GUI_PORTS = {
    "message": (2, 1),
    "comment": (1, 0),
    "flonum": (1, 2),
    "number": (1, 2),
    "slider": (1, 1),
    "button": (1, 1),
    "toggle": (1, 1),
    "textedit": (1, 4),
    "jit.pwindow": (1, 2),
}


def _ports(maxclass: str, text: str) -> tuple[int, int]:
    if maxclass != "newobj":
        return _GUI_PORTS[maxclass]
    name, *args = text.split()
    ins, outs = _OBJECT_PORTS[name]
    if name == "expr":
        ins = max(i for i in range(1, 10) if f"$f{i}" in text)
    if name in ("route", "sel"):
        outs = len(args) + 1
    if name in ("unpack", "t"):
        outs = len(args)
    return ins, outs


@dataclass
class MaxPatch:
    """Boxes and patch lines of one Max patcher."""

    boxes: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)

    def box(self, maxclass: str, x: float, y: float, text: str = "", width: float = 0, **extra) -> str:
        """Add a box; returns its id (``obj-N``)."""
        ins, outs = _ports(maxclass, text)
        ident = f"obj-{len(self.boxes) + 1}"
        box = {
            "id": ident,
            "maxclass": maxclass,
            "numinlets": ins,
            "numoutlets": outs,
            "patching_rect": [float(x), float(y), float(width or _width(text)), 22.0],
        }
        if text:
            box["text"] = text
        box.update(extra)
        self.boxes.append({"box": box})
        return ident

    def obj(self, x: float, y: float, text: str) -> str:
        """An object box."""
        return self.box("newobj", x, y, text)

    def connect(self, src: str, outlet: int, dst: str, inlet: int = 0) -> None:
        """A patch line from ``src`` outlet to ``dst`` inlet."""
        self.lines.append({"patchline": {"source": [src, outlet], "destination": [dst, inlet]}})

    def json(self) -> str:
        """The .maxpat file text."""
        patcher = {
            "patcher": {
                "fileversion": 1,
                "appversion": {"major": 8, "minor": 5, "revision": 0, "architecture": "x64", "modernui": 1},
                "classnamespace": "box",
                "rect": [40.0, 80.0, 1400.0, 900.0],
                "default_fontsize": 12.0,
                "default_fontname": "Arial",
                "gridsize": [15.0, 15.0],
                "boxes": self.boxes,
                "lines": self.lines,
            }
        }
        return json.dumps(patcher, indent=1) + "\n"


LEFT_WIDTH = 960  # the controls' column; feedback sits to its right


def _width(text: str) -> float:
    """Box width for ``text`` in 12 pt Arial."""
    return float(max(40, round(6.6 * len(text)) + 16))


def _quoted(text: str) -> str:
    return f'"{text}"' if " " in text else text


def maxpat(names: Names) -> str:
    """The text of patches/vis2mus.maxpat for these anchor and content-piece names."""
    p = MaxPatch()
    p.box("comment", 20, 10, "vis2mus-live controller: OSC to the server on 127.0.0.1:9000. "
          "Feedback needs the server started with --osc-reply 127.0.0.1:9001.", 900)
    send = p.obj(700, 730, f"udpsend {SERVER_HOST} {SERVER_PORT}")

    def messages(y: float, texts: list[str]) -> float:
        """A row of message boxes into the udpsend, wrapped at the left column's width; next y."""
        x = 20.0
        for text in texts:
            width = _width(text)
            if x + width > LEFT_WIDTH:
                x, y = 20.0, y + 28
            p.connect(p.box("message", x, y, text, width), 0, send)
            x += width + 10
        return y + 40

    def prepend(x: float, y: float, name: str) -> str:
        pre = p.obj(x, y, f"prepend {address(name)}")
        p.connect(pre, 0, send)
        return pre

    y = 50
    for name in ("brightness", "contrast"):
        low, high = range_of(name)
        p.box("comment", 20, y, name, 80)
        slider = p.box("slider", 100, y, width=200, floatoutput=1, min=low, size=high - low, orientation=1)
        p.connect(slider, 0, prepend(320, y, name))
        y += 40
    low, high = range_of("tempo")
    p.box("comment", 20, y, "tempo", 80)
    tempo = p.box("flonum", 100, y, minimum=low, maximum=high, format=6)
    p.connect(tempo, 0, prepend(170, y, "tempo"))
    low, high = range_of("velocity")
    p.box("comment", 380, y, "velocity", 70)
    velocity = p.box("number", 450, y, minimum=int(low), maximum=int(high))
    p.connect(velocity, 0, prepend(510, y, "velocity"))
    y = messages(y + 40, [address(name) for name in ("play", "stop", "panic", "state")])

    p.box("comment", 20, y, "anchor: index or name", 150)
    index = p.box("number", 170, y, minimum=0)
    p.connect(index, 0, prepend(230, y, "anchor"))
    y = messages(y + 30, [f"{address('anchor')} {_quoted(name)}" for name in names.anchors])

    p.box("comment", 20, y, "style: content piece x style anchor", 300)
    y = messages(y + 26, [f"{address('style')} {_quoted(piece)} {_quoted(anchor)}"
                          for piece in names.pieces for anchor in names.anchors] + [address("style/off")])

    p.box("comment", 20, y, "chords: type a progression and press return, or click one", 400)
    text = p.box("textedit", 20, y + 26, width=260, lines=1, keymode=1)
    route = p.obj(300, y + 26, "route text")
    p.connect(text, 0, route)
    join = p.obj(300, y + 54, "tosymbol")
    p.connect(route, 0, join)
    p.connect(route, 1, join)
    p.connect(join, 0, prepend(380, y + 54, "chords"))
    y = messages(y + 86, [f'{address("chords")} "{prog}"' for prog in PROGRESSIONS] + [address("chords/off")])

    p.box("comment", 20, y, "quantum / source", 200)
    p.box("comment", 480, y, "preset", 60)
    preset = p.box("number", 540, y, minimum=0, maximum=127)
    p.connect(preset, 0, prepend(600, y, "preset"))
    messages(y + 26, [f"{address('quantum')} {q}" for q in QUANTA] + [f"{address('source')} {s}" for s in SOURCES])

    load = p.obj(1000, 560, "loadbang")
    ask = p.box("message", 1000, 590, address("state"))
    p.connect(load, 0, ask)
    p.connect(ask, 0, send)

    _feedback(p)
    _camera(p, send)
    return p.json()


def _feedback(p: MaxPatch) -> None:
    """udpreceive -> route by address -> displays (message boxes and numbers set by ``set``)."""
    x = 1000
    p.box("comment", x, 40, f"feedback (udpreceive {REPLY_PORT})")
    recv = p.obj(x, 66, f"udpreceive {REPLY_PORT}")
    paths = [a.path for a in FEEDBACK]
    route = p.obj(x, 96, "route " + " ".join(paths))
    p.connect(recv, 0, route)
    for i, path in enumerate(paths):
        y = 130 + 28 * i
        p.box("comment", x, y, path.removeprefix(PREFIX + "/"), 130)
        if path == address("beat"):
            beat = p.obj(x + 140, y, "unpack 0 0")
            p.connect(route, i, beat)
            for j in range(2):
                p.connect(beat, j, p.box("number", x + 230 + 60 * j, y))
            continue
        if path == address("error"):
            p.connect(route, i, p.obj(x + 400, y, "print vis2mus-error"))
        setter = p.obj(x + 140, y, "prepend set")
        p.connect(route, i, setter)
        p.connect(setter, 0, p.box("message", x + 230, y, "", width=160))


def _camera(p: MaxPatch, send: str) -> None:
    """jit.grab -> luminance mean/std -> alpha_b, alpha_c against a reference frame -> OSC."""
    x, y = 20, 790
    p.box("comment", x, y - 26, "camera (Max-side alternative to the server's --camera): "
          "toggle on, point at the anchor picture, set reference, then move", 760)
    on = p.box("toggle", x, y)
    split = p.obj(x, y + 30, "t i i")
    p.connect(on, 0, split)
    only_osc = p.obj(x + 60, y + 60, "sel 1")
    p.connect(split, 1, only_osc)
    source = p.box("message", x + 60, y + 90, f"{address('source')} osc")
    p.connect(only_osc, 0, source)
    p.connect(source, 0, send)
    metro = p.obj(x, y + 120, "qmetro 40")
    p.connect(split, 0, metro)
    grab = p.obj(x, y + 150, "jit.grab 320 240")
    p.connect(metro, 0, grab)
    p.connect(grab, 0, p.box("jit.pwindow", x + 420, y + 150, width=160))
    luma = p.obj(x, y + 180, "jit.rgb2luma")
    p.connect(grab, 0, luma)
    unit = p.obj(x, y + 210, "jit.matrix 1 float32 320 240")
    p.connect(luma, 0, unit)
    frames = p.obj(x, y + 240, "t l l l")
    p.connect(unit, 0, frames)
    mean_stats = p.obj(x + 200, y + 270, "jit.3m")
    p.connect(frames, 2, mean_stats)
    square = p.obj(x, y + 270, "jit.op @op *")
    p.connect(frames, 1, square, 1)
    p.connect(frames, 0, square, 0)
    sq_stats = p.obj(x, y + 300, "jit.3m")
    p.connect(square, 0, sq_stats)
    mean = p.obj(x + 200, y + 300, "t f f f")
    p.connect(mean_stats, 1, mean)
    std = p.obj(x, y + 330, "expr sqrt(abs($f1 - $f2 * $f2))")
    p.connect(mean, 2, std, 1)
    p.connect(sq_stats, 1, std, 0)
    std_fan = p.obj(x, y + 360, "t f f")
    p.connect(std, 0, std_fan)

    reference = p.box("button", x + 420, y + 60, width=24)
    p.box("comment", x + 470, y + 60, "set reference", 110)
    take = p.obj(x + 420, y + 90, "t b b")
    p.connect(reference, 0, take)
    ref_mean = p.obj(x + 420, y + 330, "f")
    ref_std = p.obj(x + 480, y + 330, "f")
    p.connect(take, 1, ref_mean)
    p.connect(take, 0, ref_std)
    p.connect(mean, 1, ref_mean, 1)
    p.connect(std_fan, 1, ref_std, 1)

    bright = p.obj(x + 260, y + 390, "expr 2. * ($f1 - $f2)")
    p.connect(mean, 0, bright, 0)
    p.connect(ref_mean, 0, bright, 1)
    contrast = p.obj(x, y + 390, "expr $f1 / ($f2 + 0.0001) - 1.")
    p.connect(std_fan, 0, contrast, 0)
    p.connect(ref_std, 0, contrast, 1)
    for expr, name, cx in ((bright, "brightness", x + 260), (contrast, "contrast", x)):
        clip = p.obj(cx, y + 420, "clip -1. 1.")
        p.connect(expr, 0, clip)
        pre = p.obj(cx, y + 450, f"prepend {address(name)}")
        p.connect(clip, 0, pre)
        p.connect(pre, 0, send)
