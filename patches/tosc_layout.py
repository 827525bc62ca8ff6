"""Builds patches/vis2mus.tosc: a TouchOSC layout (current format) for a phone held upright.

A .tosc file is zlib-compressed XML: ``<lexml version='3'>`` holding one ``node`` tree, each node
with ``properties``, ``values``, ``messages`` and ``children``. Two pages (a pager): "play" with
the brightness and contrast faders, tempo, transport, anchors and the feedback labels; "more" with
style, chords, quantum, source, presets and velocity. Faders send on their control address and
follow ``/vis2mus/state/...`` (feedback flags off, so a received value is not sent back). Node ids
are derived from the node's place in the tree, so the file is the same on every build.
"""

from __future__ import annotations

import uuid
import zlib
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from live.control.oscspace import FEEDBACK
from patches.catalog import PRESETS, PROGRESSIONS, QUANTA, SOURCES, TEMPO_RANGE, Names, address, range_of

WIDTH, HEIGHT = 720, 1280  # portrait
TAB = 60
_NS = uuid.UUID("6c1a3e0e-1b1e-4a53-9f6f-7f0d2f1b7a10")

Colour = tuple[float, float, float, float]
GREY: Colour = (0.2, 0.2, 0.22, 1.0)
BLUE: Colour = (0.2, 0.45, 0.8, 1.0)
ORANGE: Colour = (0.9, 0.5, 0.15, 1.0)
GREEN: Colour = (0.25, 0.65, 0.35, 1.0)
RED: Colour = (0.8, 0.2, 0.2, 1.0)
WHITE: Colour = (1.0, 1.0, 1.0, 1.0)


def _prop(parent: ET.Element, kind: str, key: str, value: object) -> None:
    p = ET.SubElement(parent, "property", type=kind)
    ET.SubElement(p, "key").text = key
    v = ET.SubElement(p, "value")
    if kind == "r":
        for k, n in zip("xywh", value):  # type: ignore[arg-type]
            ET.SubElement(v, k).text = f"{n:g}"
    elif kind == "c":
        for k, n in zip("rgba", value):  # type: ignore[arg-type]
            ET.SubElement(v, k).text = f"{n:g}"
    else:
        v.text = str(value)


def _value(parent: ET.Element, key: str, default: str) -> None:
    v = ET.SubElement(parent, "value")
    ET.SubElement(v, "key").text = key
    ET.SubElement(v, "locked").text = "0"
    ET.SubElement(v, "lockedDefaultCurrent").text = "0"
    ET.SubElement(v, "default").text = default
    ET.SubElement(v, "defaultPull").text = "0"


def _partial(parent: ET.Element, kind: str, conversion: str, value: str, low: float = 0, high: float = 1) -> None:
    p = ET.SubElement(parent, "partial")
    ET.SubElement(p, "type").text = kind
    ET.SubElement(p, "conversion").text = conversion
    ET.SubElement(p, "value").text = value
    ET.SubElement(p, "scaleMin").text = f"{low:g}"
    ET.SubElement(p, "scaleMax").text = f"{high:g}"


class Node:
    """One TouchOSC node being built."""

    def __init__(self, parent: "Node | None", kind: str, name: str, frame: tuple[float, float, float, float],
                 colour: Colour = GREY, interactive: bool = True):
        self.path = f"{parent.path}/{name}" if parent else name
        self.element = ET.Element("node", ID=str(uuid.uuid5(_NS, self.path)), type=kind)
        if parent is not None:
            parent._children().append(self.element)
        self.properties = ET.SubElement(self.element, "properties")
        self.values = ET.SubElement(self.element, "values")
        _prop(self.properties, "s", "name", name)
        _prop(self.properties, "r", "frame", frame)
        _prop(self.properties, "c", "color", colour)
        _prop(self.properties, "b", "background", 1)
        _prop(self.properties, "b", "outline", 1)
        _prop(self.properties, "b", "visible", 1)
        _prop(self.properties, "b", "interactive", int(interactive))
        _prop(self.properties, "b", "locked", 0)
        _prop(self.properties, "f", "cornerRadius", 4)
        _value(self.values, "touch", "false")

    def _children(self) -> ET.Element:
        found = self.element.find("children")
        return found if found is not None else ET.SubElement(self.element, "children")

    def osc(self, path: str, arguments: list[tuple[str, str, str, float, float]], *, send: bool, receive: bool,
            trigger: str = "ANY") -> None:
        """Add an OSC message: ``arguments`` are (type, conversion, value, scaleMin, scaleMax)."""
        messages = self.element.find("messages")
        if messages is None:
            messages = ET.SubElement(self.element, "messages")
        osc = ET.SubElement(messages, "osc")
        ET.SubElement(osc, "enabled").text = "1"
        ET.SubElement(osc, "send").text = str(int(send))
        ET.SubElement(osc, "receive").text = str(int(receive))
        ET.SubElement(osc, "feedback").text = "0"
        ET.SubElement(osc, "connections").text = "00001"
        triggers = ET.SubElement(osc, "triggers")
        t = ET.SubElement(triggers, "trigger")
        ET.SubElement(t, "var").text = "text" if self.element.get("type") == "LABEL" else "x"
        ET.SubElement(t, "condition").text = trigger
        p = ET.SubElement(osc, "path")
        _partial(p, "CONSTANT", "STRING", path)
        args = ET.SubElement(osc, "arguments")
        for kind, conversion, value, low, high in arguments:
            _partial(args, kind, conversion, value, low, high)


def _label(parent: Node, name: str, frame: tuple[float, float, float, float], text: str, size: int = 20) -> Node:
    label = Node(parent, "LABEL", name, frame, GREY, interactive=False)
    _prop(label.properties, "b", "background", 0)
    _prop(label.properties, "b", "outline", 0)
    _prop(label.properties, "i", "textSize", size)
    _prop(label.properties, "c", "textColor", WHITE)
    _value(label.values, "text", text)
    return label


def _button(parent: Node, name: str, frame: tuple[float, float, float, float], caption: str, path: str,
            args: list[tuple[str, str]], colour: Colour = BLUE) -> Node:
    """A momentary button that sends ``path`` with constant ``args`` [(conversion, value)] on press."""
    button = Node(parent, "BUTTON", name, frame, colour)
    _prop(button.properties, "i", "buttonType", 0)
    _value(button.values, "x", "0")
    button.osc(path, [("CONSTANT", conv, value, 0, 1) for conv, value in args], send=True, receive=False, trigger="RISE")
    _label(parent, f"{name}-caption", frame, caption, 18)
    return button


def _fader(parent: Node, name: str, frame: tuple[float, float, float, float], control: str,
           span: tuple[float, float], conversion: str = "FLOAT", colour: Colour = ORANGE) -> Node:
    """A horizontal fader sending ``control`` over ``span`` and following ``/vis2mus/state/control``."""
    fader = Node(parent, "FADER", name, frame, colour)
    _prop(fader.properties, "i", "orientation", 1)
    _value(fader.values, "x", "0.5")
    low, high = span
    fader.osc(address(control), [("VALUE", conversion, "x", low, high)], send=True, receive=False)
    state = f"state/{control}"
    if any(a.path == f"/vis2mus/{state}" for a in FEEDBACK):
        fader.osc(address(state), [("VALUE", conversion, "x", low, high)], send=False, receive=True)
    _label(parent, f"{name}-caption", (frame[0] + 10, frame[1], 300, 30), name, 18)
    return fader


def _grid(count: int, columns: int, top: float, height: float, gap: float = 10) -> list[tuple[float, float, float, float]]:
    width = (WIDTH - 20 - gap * (columns - 1)) / columns
    return [(10 + (i % columns) * (width + gap), top + (i // columns) * (height + gap), width, height) for i in range(count)]


def _play_page(pager: Node, names: Names) -> None:
    page = Node(pager, "GROUP", "play", (0, TAB, WIDTH, HEIGHT - TAB), (0.08, 0.08, 0.1, 1.0), interactive=False)
    _prop(page.properties, "s", "tabLabel", "play")
    _fader(page, "brightness", (10, 10, WIDTH - 20, 110), "brightness", range_of("brightness"))
    _fader(page, "contrast", (10, 130, WIDTH - 20, 110), "contrast", range_of("contrast"))
    _fader(page, "tempo", (10, 250, WIDTH - 20, 80), "tempo", TEMPO_RANGE, colour=GREEN)
    for frame, (name, colour) in zip(_grid(4, 4, 345, 90), (("play", GREEN), ("stop", GREY), ("panic", RED), ("state", BLUE))):
        _button(page, name, frame, name, address(name), [], colour)
    _label(page, "anchors", (10, 445, 300, 30), "anchor", 18)
    top = 480
    for i, (frame, name) in enumerate(zip(_grid(len(names.anchors), 3, top, 80), names.anchors)):
        _button(page, f"anchor-{i}", frame, name, address("anchor"), [("STRING", name)])
    top += 90 * ((len(names.anchors) + 2) // 3) + 10
    bar = _label(page, "bar", (10, top, 220, 60), "bar", 28)
    bar.osc(address("beat"), [("VALUE", "INTEGER", "text", 0, 1)], send=False, receive=True)
    shown = _label(page, "current-anchor", (240, top, WIDTH - 250, 60), "anchor", 24)
    shown.osc(address("state/anchor"), [("VALUE", "STRING", "text", 0, 1)], send=False, receive=True)
    error = _label(page, "error", (10, top + 70, WIDTH - 20, 60), "", 16)
    error.osc(address("error"), [("VALUE", "STRING", "text", 0, 1)], send=False, receive=True)


def _more_page(pager: Node, names: Names) -> None:
    page = Node(pager, "GROUP", "more", (0, TAB, WIDTH, HEIGHT - TAB), (0.08, 0.08, 0.1, 1.0), interactive=False)
    _prop(page.properties, "s", "tabLabel", "more")
    _label(page, "styles", (10, 5, 400, 30), "style: content x texture", 18)
    top = 40
    for p, piece in enumerate(names.pieces):
        frames = _grid(len(names.anchors), 3, top, 56, 6)
        for i, (frame, anchor) in enumerate(zip(frames, names.anchors)):
            _button(page, f"style-{p}-{i}", frame, f"{piece} x {anchor}", address("style"),
                    [("STRING", piece), ("STRING", anchor)], ORANGE)
        top += 62 * ((len(names.anchors) + 2) // 3) + 8
    _button(page, "style-off", (10, top, WIDTH - 20, 50), "style off", address("style/off"), [], GREY)
    top += 60
    count = len(PROGRESSIONS) + 1
    frames = _grid(count, 3, top, 56, 6)
    for i, (frame, prog) in enumerate(zip(frames, PROGRESSIONS)):
        _button(page, f"chords-{i}", frame, prog, address("chords"), [("STRING", prog)], GREEN)
    _button(page, "chords-off", frames[-1], "own chords", address("chords/off"), [], GREY)
    top += 62 * ((count + 2) // 3) + 8
    options = [("quantum", q) for q in QUANTA] + [("source", s) for s in SOURCES]
    for frame, (control, value) in zip(_grid(len(options), 5, top, 56, 6), options):
        _button(page, f"{control}-{value}", frame, value, address(control), [("STRING", value)], BLUE)
    top += 70
    for i, frame in enumerate(_grid(PRESETS, PRESETS, top, 56, 6)):
        _button(page, f"preset-{i}", frame, str(i), address("preset"), [("INTEGER", str(i))], GREY)
    top += 70
    _fader(page, "velocity", (10, top, WIDTH - 20, 70), "velocity", range_of("velocity"), "INTEGER", BLUE)


def layout_xml(names: Names) -> bytes:
    """The uncompressed XML of the layout."""
    root = Node(None, "GROUP", "vis2mus", (0, 0, WIDTH, HEIGHT), (0, 0, 0, 1), interactive=False)
    pager = Node(root, "PAGER", "pages", (0, 0, WIDTH, HEIGHT))
    _prop(pager.properties, "b", "tabbar", 1)
    _prop(pager.properties, "i", "tabbarSize", TAB)
    _value(pager.values, "page", "0")
    _play_page(pager, names)
    _more_page(pager, names)
    doc = ET.Element("lexml", version="3")
    doc.append(root.element)
    return ("<?xml version='1.0' encoding='UTF-8'?>\n" + _serialise(doc)).encode("utf-8")


def _serialise(element: ET.Element, cdata: bool = False) -> str:
    """Write ``element`` as TouchOSC does: single-quoted attributes; keys, defaults and string
    values in CDATA sections."""
    attributes = "".join(f" {k}='{escape(v)}'" for k, v in element.attrib.items())
    inner = ""
    for child in element:
        wrap = child.tag in ("key", "default", "var") or (child.tag == "value" and (
            element.tag == "partial" or (element.tag == "property" and element.get("type") == "s")))
        inner += _serialise(child, wrap)
    text = element.text or ""
    text = f"<![CDATA[{text}]]>" if cdata else escape(text)
    if not text and not inner:
        return f"<{element.tag}{attributes}/>\n"
    newline = "\n" if inner else ""
    return f"<{element.tag}{attributes}>{newline}{text}{inner}</{element.tag}>\n"


def tosc(names: Names) -> bytes:
    """The .tosc file: zlib-compressed layout XML."""
    return zlib.compress(layout_xml(names), 9)
