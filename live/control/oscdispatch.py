"""Which ``Params`` call each OSC control address makes, and the argument checks before it.

``handlers(params, on_state)`` is the address table ``{path: handler}`` the server dispatches
from; ``coerce`` matches a message's arguments against the address's signatures in
``live.control.oscspace``. A handler raises ``ValueError`` (from ``Params``) for a value it refuses.
"""

from __future__ import annotations

import math
from typing import Callable

from live.checks import finite
from live.control import oscspace
from live.control.params import Params, Update

Peer = tuple[str, int]
Handler = Callable[[list, Peer], "Update | None"]


class OscInputError(ValueError):
    """A message that cannot be accepted; the text is the one-line reply."""


def handlers(params: Params, on_state: Callable[[Peer], None]) -> dict[str, Handler]:
    """The address table: every path of ``oscspace.CONTROLS`` -> ``handler(values, peer)``.

    A handler returns the setter's ``Update`` (its ``note`` says when a value was clamped) or
    ``None``. ``on_state(peer)`` is called for ``/vis2mus/state`` (the server answers that peer).
    """
    p = params

    def query(values: list, peer: Peer) -> None:
        p.query()
        on_state(peer)

    table: dict[str, Handler] = {
        "brightness": lambda v, _: p.set_brightness(v[0]),
        "contrast": lambda v, _: p.set_contrast(v[0]),
        "tempo": lambda v, _: p.set_tempo(v[0]),
        "velocity": lambda v, _: p.set_velocity(v[0]),
        "anchor": lambda v, _: p.set_anchor(v[0]),
        "style": lambda v, _: p.set_style(v[0], v[1]),
        "style/off": lambda v, _: p.style_off(),
        "play": lambda v, _: p.play(),
        "stop": lambda v, _: p.stop(),
        "panic": lambda v, _: p.panic(),
        "quantum": lambda v, _: p.set_quantum(v[0]),
        "source": lambda v, _: p.set_source(v[0]),
        "preset": lambda v, _: p.recall(v[0]),
        "chords": lambda v, _: p.set_chords(v[0]),
        "chords/off": lambda v, _: p.set_chords(None),
        "state": query,
    }
    table = {f"{oscspace.PREFIX}/{name}": handler for name, handler in table.items()}
    differ = {a.path for a in oscspace.CONTROLS} ^ set(table)
    if differ:
        raise RuntimeError(f"OSC address table and oscspace.CONTROLS differ: {sorted(differ)}")
    return table


def address_of(path: str) -> oscspace.Address:
    """The control address of ``path``; ``OscInputError`` for a feedback-only or unknown one."""
    address = oscspace.BY_PATH.get(path)
    if address is None or address not in oscspace.CONTROLS:
        kind = "feedback-only" if address is not None else "unknown"
        raise OscInputError(f"{kind} address {path!r} (see docs/osc.md)")
    return address


def coerce(address: oscspace.Address, args: list[object]) -> list[object] | None:
    """Match ``args`` against the address's signatures; return the values to apply.

    ``f`` accepts int or float, ``i`` accepts int or an integral float (Pure Data sends floats),
    ``s`` a string. An address without arguments also accepts one number, acting only when it is
    non-zero (a TouchOSC button sends 1 on press and 0 on release): ``None`` means "ignore".
    Raises ``OscInputError`` when no signature fits or a float is NaN or infinite.
    """
    for signature in address.signatures:
        if len(signature) != len(args):
            continue
        try:
            name = address.path.rsplit("/", 1)[-1]
            values = [_coerce_one(tag, arg, name) for tag, arg in zip(signature, args)]
        except ValueError as error:
            raise OscInputError(f"{address.path}: {error}") from None
        if all(v is not _NO_MATCH for v in values):
            return values
    if "" in address.signatures and len(args) == 1 and _is_number(args[0]):
        return [] if args[0] else None
    wanted = " or ".join(f"'{s}'" if s else "no arguments" for s in address.signatures)
    got = "".join(_tag_of(a) for a in args) or "no arguments"
    raise OscInputError(f"{address.path}: expects {wanted}, got '{got}'")


_NO_MATCH = object()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce_one(tag: str, value: object, name: str = "value") -> object:
    if tag == "f" and _is_number(value):
        return finite(name, value)
    if tag == "i" and _is_number(value):
        if isinstance(value, int):
            return value
        if math.isfinite(value) and float(value).is_integer():
            return int(value)
        return _NO_MATCH
    if tag == "s" and isinstance(value, str):
        return value
    return _NO_MATCH


def _tag_of(value: object) -> str:
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int):
        return "i"
    if isinstance(value, float):
        return "f"
    if isinstance(value, str):
        return "s"
    if isinstance(value, bytes):
        return "b"
    if value is None:
        return "N"
    if isinstance(value, tuple):
        return "m"
    return "?"
