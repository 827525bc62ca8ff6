"""OSC 1.0 packets read defensively: the bytes of one UDP datagram -> its messages.

python-osc's parser trusts the sizes inside a packet (a bundle element of size -4 makes it loop
forever, a bundle of zero-size elements logs one line per element, an unknown type tag logs a
warning per packet), so the server reads packets here and python-osc only builds replies.

Every size and count is checked against the bytes left before it is used, so a malformed packet
costs at most one pass over its own length: bundle elements must be positive multiples of 4 that
fit, bundles nest at most ``MAX_DEPTH`` deep and hold at most ``MAX_ELEMENTS`` elements in all,
a message has at most ``MAX_ARGS`` arguments. Time tags are read and ignored (everything applies on
arrival). Anything else raises ``WireError`` whose ``kind`` names the rejection for the counters.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

MAX_DEPTH = 4
MAX_ELEMENTS = 64
MAX_ARGS = 16
BUNDLE_TAG = b"#bundle\x00"

_INT = struct.Struct(">i")
_FLOAT = struct.Struct(">f")
_LONG = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")
_NO_DATA = {"T": True, "F": False, "N": None, "I": float("inf")}
_UINT = struct.Struct(">I")
_MIDI = struct.Struct(">4B")
_FIXED = {"i": (_INT, 4), "f": (_FLOAT, 4), "h": (_LONG, 8), "d": (_DOUBLE, 8), "t": (_LONG, 8),
          "r": (_UINT, 4), "c": (_INT, 4), "m": (_MIDI, 4)}

KINDS = ("malformed", "empty element", "unknown type tag", "too deep", "too many elements")
"""Every ``WireError.kind``, in the order the summary line lists them."""


class WireError(ValueError):
    """A datagram that is not acceptable OSC; ``kind`` is one of ``KINDS``, the text one line."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


class Message(NamedTuple):
    """One decoded OSC message: its address and argument values (int, float, str, bytes, bool, None;
    ``m`` as a 4-tuple of bytes, ``c`` and ``r`` as their int)."""

    address: str
    args: tuple


def decode(data: bytes) -> list[Message]:
    """All messages of a datagram (a message or a bundle, nested bundles flattened in order)."""
    data = bytes(data)
    out: list[Message] = []
    if data.startswith(BUNDLE_TAG):
        _bundle(data, 0, len(data), 0, out, [0])
    else:
        out.append(_message(data, 0, len(data)))
    return out


def _bundle(data: bytes, start: int, end: int, depth: int, out: list[Message], elements: list[int]) -> None:
    if depth >= MAX_DEPTH:
        raise WireError("too deep", f"bundles nested deeper than {MAX_DEPTH}")
    if end - start < 16:
        raise WireError("malformed", f"bundle of {end - start} bytes has no time tag")
    at = start + 16  # "#bundle\0" and the 8-byte time tag, which is ignored
    while at < end:
        if end - at < 4:
            raise WireError("malformed", f"bundle element size cut off at byte {at}")
        (size,) = _INT.unpack_from(data, at)
        at += 4
        if size <= 0:
            raise WireError("empty element" if size == 0 else "malformed",
                            f"bundle element of size {size} at byte {at - 4}")
        if size % 4 or size > end - at:
            raise WireError("malformed", f"bundle element of size {size} at byte {at - 4} "
                                         f"does not fit the {end - at} bytes left")
        elements[0] += 1
        if elements[0] > MAX_ELEMENTS:
            raise WireError("too many elements", f"more than {MAX_ELEMENTS} bundle elements in one packet")
        if data.startswith(BUNDLE_TAG, at):
            _bundle(data, at, at + size, depth + 1, out, elements)
        else:
            out.append(_message(data, at, at + size))
        at += size


def _string(data: bytes, at: int, end: int, what: str) -> tuple[str, int]:
    """A NUL-terminated, 4-byte padded string at ``at`` -> (text, offset after the padding)."""
    nul = data.find(b"\x00", at, end)
    if nul < 0:
        raise WireError("malformed", f"{what} has no terminating NUL")
    after = at + ((nul - at) // 4 + 1) * 4
    if after > end:
        raise WireError("malformed", f"{what} padding runs past the end")
    try:
        return data[at:nul].decode("utf-8"), after
    except UnicodeDecodeError:
        raise WireError("malformed", f"{what} is not UTF-8") from None


def _message(data: bytes, start: int, end: int) -> Message:
    if (end - start) % 4:
        raise WireError("malformed", f"message of {end - start} bytes is not a multiple of 4")
    address, at = _string(data, start, end, "address")
    if not address.startswith("/"):
        raise WireError("malformed", "address does not start with '/'")
    if at == end:
        return Message(address, ())  # OSC 1.0 tolerates a message without a type tag string
    tags, at = _string(data, at, end, "type tag string")
    if not tags.startswith(","):
        raise WireError("malformed", "type tag string does not start with ','")
    tags = tags[1:]
    if len(tags) > MAX_ARGS:
        raise WireError("malformed", f"{len(tags)} arguments (at most {MAX_ARGS})")
    args: list[object] = []
    for tag in tags:
        if tag in _NO_DATA:
            args.append(_NO_DATA[tag])
        elif tag in _FIXED:
            codec, size = _FIXED[tag]
            if end - at < size:
                raise WireError("malformed", f"argument '{tag}' cut off")
            values = codec.unpack_from(data, at)
            args.append(values if tag == "m" else values[0])
            at += size
        elif tag in "sS":
            text, at = _string(data, at, end, "string argument")
            args.append(text)
        elif tag == "b":
            if end - at < 4:
                raise WireError("malformed", "blob size cut off")
            (size,) = _INT.unpack_from(data, at)
            padded = -(-size // 4) * 4
            if size < 0 or padded > end - at - 4:
                raise WireError("malformed", f"blob of size {size} does not fit")
            args.append(data[at + 4:at + 4 + size])
            at += 4 + padded
        else:
            raise WireError("unknown type tag", f"{address}: unknown type tag {tag!r}")
    if at != end:
        raise WireError("malformed", f"{end - at} bytes after the last argument")
    return Message(address, tuple(args))
