"""live.control.oscwire and live.control.oscflow: the defensive OSC reader and the input budgets."""

from __future__ import annotations

import random
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from live.control import oscflow
from live.control.oscflow import RejectLog, SenderTable
from live.control.oscwire import KINDS, MAX_DEPTH, MAX_ELEMENTS, WireError, decode

POISON = b"#bundle\x00" + struct.pack(">Qi", 1, -4)
ZERO_ELEMENTS = b"#bundle\x00" + struct.pack(">Q", 1) + bytes(4080)
UNKNOWN_TAG = b"/vis2mus/brightness\x00,Z\x00\x00"


def built(address: str, *args: tuple[object, str | None]) -> bytes:
    builder = OscMessageBuilder(address)
    for value, tag in args:
        builder.add_arg(value, tag)
    return builder.build().dgram


def bundle(*contents: bytes, timetag: int = IMMEDIATELY) -> bytes:
    out = b"#bundle\x00" + struct.pack(">Q", timetag)
    for content in contents:
        out += struct.pack(">i", len(content)) + content
    return out


def kind_of(data: bytes) -> str:
    with pytest.raises(WireError) as caught:
        decode(data)
    assert caught.value.kind in KINDS
    return caught.value.kind


def test_the_issue_packets_are_rejected_with_their_kind():
    assert kind_of(POISON) == "malformed"
    assert kind_of(ZERO_ELEMENTS) == "empty element"
    assert kind_of(UNKNOWN_TAG) == "unknown type tag"


def test_every_python_osc_type_round_trips():
    data = built("/a/b", (1, "i"), (0.5, "f"), ("text", "s"), (b"\x01\x02\x03", "b"), (True, "T"),
                 (False, "F"), (None, "N"), (2 ** 40, "h"), (0.25, "d"), (0xFF8000FF, "r"), ((0, 0x90, 60, 100), "m"))
    (message,) = decode(data)
    assert message.address == "/a/b"
    assert message.args == (1, 0.5, "text", b"\x01\x02\x03", True, False, None, 2 ** 40, 0.25, 0xFF8000FF,
                            (0, 0x90, 60, 100))


def test_bundles_flatten_in_order_and_time_tags_are_ignored():
    inner = bundle(built("/x", (2, "i")), timetag=2 ** 63)
    data = bundle(built("/w", (1, "i")), inner, built("/y", ("z", "s")), timetag=12345)
    assert [(m.address, m.args) for m in decode(data)] == [("/w", (1,)), ("/x", (2,)), ("/y", ("z",))]
    pythonosc_bundle = OscBundleBuilder(IMMEDIATELY)
    pythonosc_bundle.add_content(OscMessageBuilder("/p").build())
    assert decode(pythonosc_bundle.build().dgram)[0].address == "/p"


def test_nesting_and_element_count_are_bounded():
    deep = built("/leaf")
    for _ in range(MAX_DEPTH + 1):
        deep = bundle(deep)
    assert kind_of(deep) == "too deep"
    assert len(decode(bundle(*[built("/m")] * MAX_ELEMENTS))) == MAX_ELEMENTS
    assert kind_of(bundle(*[built("/m")] * (MAX_ELEMENTS + 1))) == "too many elements"


@pytest.mark.parametrize("data", [
    b"", b"/", b"/abc", b"no slash\x00\x00\x00\x00", b"/a\x00\x00,i\x00\x00\x00\x00",
    b"/a\x00\x00,s\x00\x00abcd", b"/a\x00\x00,b\x00\x00" + struct.pack(">i", 2 ** 30),
    b"/a\x00\x00,b\x00\x00" + struct.pack(">i", -8), b"/a\x00\x00,i\x00\x00" + bytes(8),
    b"/\xff\xfe\x00,\x00\x00\x00", b"#bundle\x00" + bytes(4) + b"\x00", b"#bundle\x00" + bytes(8) + b"\x00\x00",
    b"#bundle\x00" + bytes(8) + struct.pack(">i", 6) + bytes(8),
    b"#bundle\x00" + bytes(8) + struct.pack(">i", 2 ** 31 - 1),
])
def test_malformed_packets_raise_wire_errors(data):
    kind_of(data)


def test_a_malformed_packet_costs_its_own_length():
    """The poison bundle and 4 KB worst cases decode (or fail) in well under a millisecond each."""
    worst = [POISON, ZERO_ELEMENTS, UNKNOWN_TAG, b"/" + b"a" * 4094 + b"\x00",
             bundle(*[bundle()] * 255), bundle(*[built("/m")] * MAX_ELEMENTS)]
    t0 = time.perf_counter()
    for _ in range(200):
        for data in worst:
            try:
                decode(data)
            except WireError:
                pass
    per_packet = (time.perf_counter() - t0) / (200 * len(worst))
    assert per_packet < 0.005, f"{per_packet * 1e3:.3f} ms per packet"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_only_ever_raise_wire_errors(data):
    try:
        decode(data)
    except WireError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-2 ** 31, max_value=2 ** 31 - 1), max_size=8), st.binary(max_size=64))
def test_bundles_with_hostile_sizes_only_ever_raise_wire_errors(sizes, tail):
    data = b"#bundle\x00" + bytes(8) + b"".join(struct.pack(">i", s) for s in sizes) + tail
    try:
        decode(data)
    except WireError:
        pass


def test_mutated_valid_packets_only_ever_raise_wire_errors():
    rng = random.Random(3)
    seeds = [built("/vis2mus/brightness", (0.5, "f")), built("/vis2mus/style", ("a", "s"), ("b", "s")),
             bundle(built("/vis2mus/tempo", (100.0, "f")), built("/vis2mus/play"))]
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        try:
            decode(bytes(data))
        except WireError:
            pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sender_table_is_bounded_and_never_forgets_an_active_sender():
    clock = FakeClock()
    table = SenderTable(capacity=4, clock=clock)
    active = table.get("10.0.0.1")
    for _ in range(int(oscflow.MESSAGES_PER_S)):
        assert active.spend(clock.now)
    assert not active.spend(clock.now)
    for i in range(2, 5):
        table.get(f"10.0.0.{i}")
    newcomer = table.get("10.0.0.9")  # table full, all seen just now: the newcomer shares the overflow
    assert newcomer is table.overflow and len(table) == 4
    assert table.get("10.0.0.1") is active and not active.spend(clock.now), "the flood's budget was reset"
    clock.now += oscflow.IDLE_S + 0.1
    table.get("10.0.0.1")  # still active: seen now
    for i in range(20, 40):
        table.get(f"10.0.1.{i}")
    assert len(table) == 4 and "10.0.0.1" in table
    assert table.get("10.0.0.1") is active


def test_deferred_packets_keep_the_latest_per_address():
    clock = FakeClock()
    sender = SenderTable(clock=clock).get("127.0.0.1")
    sender.tokens = 0.0
    for i in range(100):
        sender.defer(built("/vis2mus/brightness", (i / 100, "f")), ("127.0.0.1", 1))
    sender.defer(built("/vis2mus/state"), ("127.0.0.1", 2))
    assert len(sender.deferred) == 2
    clock.now += 0.01
    taken = sender.take_deferred(clock.now)
    assert [decode(d)[0] for d, _ in taken] == [decode(built("/vis2mus/brightness", (0.99, "f")))[0],
                                                decode(built("/vis2mus/state"))[0]]


def test_reject_log_says_at_most_one_line_a_second(caplog):
    clock = FakeClock()
    rejects = RejectLog(clock=clock)
    with caplog.at_level("WARNING", logger="live.control.osc"):
        for i in range(5000):
            rejects.count("malformed" if i % 2 else "unknown type tag", "127.0.0.1")
            clock.now += 0.001
            rejects.tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "live.control.osc"]
    assert 4 <= len(lines) <= 6, lines
    assert "unknown type tag" in lines[-1] and "malformed" in lines[-1]
