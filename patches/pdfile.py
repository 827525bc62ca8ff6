"""A small writer for Pure Data patch files (text records, Pd vanilla >= 0.51).

Boxes are numbered from 0 in the order they are added, which is how ``#X connect`` refers to
them. Only the record kinds the vis2mus patches use are written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BG = -262144  # IEM GUI colours in the pre-0.51 numeric form that every Pd >= 0.51 still reads
FG = -1
LABEL = -1


def escape(text: str) -> str:
    """Escape the characters that Pd treats as separators inside one atom or a comment."""
    return text.replace("\\", "\\\\").replace(",", " \\,").replace(";", " \\;").replace("$", "\\$")


@dataclass
class Canvas:
    """One Pd canvas (the top patch or a subpatch) and the boxes added to it."""

    width: int = 980
    height: int = 720
    name: str = ""
    records: list[str] = field(default_factory=list)
    count: int = 0

    def _box(self, record: str) -> int:
        self.records.append(record)
        self.count += 1
        return self.count - 1

    def obj(self, x: int, y: int, text: str) -> int:
        """An object box ``[text]``; returns its index."""
        return self._box(f"#X obj {x} {y} {text};")

    def msg(self, x: int, y: int, text: str) -> int:
        """A message box; ``text`` is written as is (escape it first where needed)."""
        return self._box(f"#X msg {x} {y} {text};")

    def comment(self, x: int, y: int, text: str) -> int:
        """A comment; commas and semicolons are escaped."""
        return self._box(f"#X text {x} {y} {escape(text)};")

    def floatatom(self, x: int, y: int, width: int, low: float, high: float, label: str, receive: str = "-") -> int:
        """A number box with limits ``low..high`` (0 0: none), a label on its left and a receive name.

        A box with a receive name has no inlet: send it a float (set and output) or ``set f``.
        """
        return self._box(f"#X floatatom {x} {y} {width} {low:g} {high:g} 1 {label} {receive} -;")

    def symbolatom(self, x: int, y: int, width: int, label: str, receive: str = "-") -> int:
        """A symbol box (used here to display feedback) with a label on its left and a receive name."""
        return self._box(f"#X symbolatom {x} {y} {width} 0 0 1 {label} {receive} -;")

    def hslider(self, x: int, y: int, low: float, high: float, label: str, receive: str = "empty") -> int:
        """A horizontal IEM slider ``low..high``, 200 px wide, resting in the middle.

        With a receive name it has no inlet: a float sent there moves it and is output, ``set f``
        only moves it.
        """
        return self._box(
            f"#X obj {x} {y} hsl 200 18 {low:g} {high:g} 0 0 empty {receive} {label} -2 -9 0 11 "
            f"{BG} {FG} {LABEL} 9950 1;"
        )

    def bang(self, x: int, y: int, label: str, receive: str = "empty") -> int:
        """An IEM bang button with a label on its right; a bang to ``receive`` presses it."""
        return self._box(
            f"#X obj {x} {y} bng 22 200 50 0 empty {receive} {label} 26 11 0 11 {BG} {FG} {LABEL};"
        )

    def toggle(self, x: int, y: int, label: str, receive: str = "empty") -> int:
        """An IEM toggle with a label on its right (here a display: ``set 0|1`` via ``receive``)."""
        return self._box(
            f"#X obj {x} {y} tgl 18 0 empty {receive} {label} 22 9 0 11 {BG} {FG} {LABEL} 0 1;"
        )

    def hradio(self, x: int, y: int, cells: int) -> int:
        """A horizontal IEM radio with ``cells`` cells; outputs the index of the pressed cell."""
        return self._box(
            f"#X obj {x} {y} hradio 20 1 0 {cells} empty empty empty 0 -9 0 11 {BG} {FG} {LABEL} 0;"
        )

    def subpatch(self, x: int, y: int, sub: "Canvas") -> int:
        """Embed ``sub`` as ``[pd name]``; its inlets and outlets are its [inlet]/[outlet] boxes."""
        lines = [f"#N canvas 0 50 {sub.width} {sub.height} {sub.name} 0;", *sub.records, f"#X restore {x} {y} pd {sub.name};"]
        self.records.append("\n".join(lines))
        self.count += 1
        return self.count - 1

    def connect(self, src: int, outlet: int, dst: int, inlet: int) -> None:
        """A patch cord from outlet ``outlet`` of box ``src`` to inlet ``inlet`` of box ``dst``."""
        self.records.append(f"#X connect {src} {outlet} {dst} {inlet};")

    def chain(self, *boxes: int) -> None:
        """Connect outlet 0 of each box to inlet 0 of the next."""
        for a, b in zip(boxes, boxes[1:]):
            self.connect(a, 0, b, 0)

    def text(self, font: int = 11) -> str:
        """The whole patch file."""
        return "\n".join([f"#N canvas 0 50 {self.width} {self.height} {font};", *self.records]) + "\n"
