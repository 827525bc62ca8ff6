"""Input checks and the one-line error message, shared by every stage.

Bad input anywhere (an OSC value, a config entry, a preset, an exception from a library) ends as
one clear line; these are the only definitions of how a number is checked and how an exception
becomes that line.
"""

from __future__ import annotations

import math
import numbers


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def finite(name: str, value: object) -> float:
    """``value`` as a finite float, or ``ValueError`` naming ``name`` (bools and strings rejected;
    an empty ``name`` for a caller that puts its own prefix on the line)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {type(value).__name__}".lstrip())
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}".lstrip())
    return number


def in_range(name: str, value: object, low: float, high: float) -> float:
    """``value`` as a finite float inside ``[low, high]``, else ``ValueError`` (one line)."""
    number = finite(name, value)
    if not low <= number <= high:
        raise ValueError(f"{name} {number:g} is out of range {low:g}..{high:g}".lstrip())
    return number


def clamp(name: str, value: float, low: float, high: float) -> tuple[float, str | None]:
    """Clamp ``value`` into ``[low, high]``; the second item is a one-line notice when it moved."""
    clamped = min(max(value, low), high)
    if clamped != value:
        return clamped, f"{name} {value:g} out of range {low:g}..{high:g}, clamped to {clamped:g}"
    return clamped, None
