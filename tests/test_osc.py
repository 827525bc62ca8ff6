"""live.control.osc: a real UDP OSC server driven by python-osc clients and liblo's ``oscsend``."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import SimpleUDPClient

from live.control import oscspace
from live.control.osc import MAX_PACKET, OscServer, coerce, encode
from live.control.params import Params, Preset
from live.music.chords import progression_labels

P = oscspace.PREFIX
ANCHORS = ["rain", "sunset", "city"]


@pytest.fixture
def params() -> Params:
    return Params(ANCHORS, ["cat"], {3: Preset("city", alpha_b=0.5, tempo=90)})


@pytest.fixture
def server(params):
    learned: list[list] = []
    extra = {f"{P}/learn": lambda values: learned.append(values), f"{P}/learn/save": lambda values: learned.append(["saved"])}
    with OscServer(params, port=0, extra=extra) as srv:
        srv.learned = learned
        yield srv


@pytest.fixture
def client(server):
    host, port = server.address
    with SimpleUDPClient(host, port, timeout=1.0) as c:
        yield c


def collect(client: SimpleUDPClient, quiet: float = 0.3) -> list[tuple[str, list]]:
    """Everything the server sends until it is quiet for ``quiet`` seconds."""
    out = []
    while True:
        data = client.receive(quiet)
        if not data:
            return out
        message = OscMessage(data)
        out.append((message.address, list(message.params)))


def errors(messages) -> list[str]:
    return [args[0] for address, args in messages if address == f"{P}/error"]


def state_of(messages) -> dict[str, object]:
    prefix = f"{P}/state/"
    return {address[len(prefix):]: args[0] for address, args in messages if address.startswith(prefix)}


def test_every_control_address_is_handled(server, client, params):
    calls = {
        "brightness": [0.25], "contrast": [-0.5], "anchor": ["sunset"], "style": ["cat", "city"],
        "style/off": [], "tempo": [132.0], "play": [], "stop": [], "panic": [], "quantum": ["bar"],
        "source": ["camera"], "preset": [3], "chords": ["C Am | F G"], "chords/off": [],
        "velocity": [100], "state": [], "learn": ["tempo"], "learn/save": [],
    }
    assert {a.path for a in oscspace.CONTROLS} == {f"{P}/{name}" for name in calls}
    fired = []
    for action in ("play", "stop", "panic", "state"):
        params.on_action(action, lambda state, action=action: fired.append(action))
    expectations = {
        "brightness": lambda s: s.alpha_b == 0.25, "contrast": lambda s: s.alpha_c == -0.5,
        "anchor": lambda s: s.anchor == "sunset", "style": lambda s: (s.content, s.anchor) == ("cat", "city"),
        "style/off": lambda s: s.content is None, "tempo": lambda s: s.tempo == 132.0,
        "play": lambda s: s.playing, "stop": lambda s: not s.playing, "panic": lambda s: "panic" in fired,
        "quantum": lambda s: s.quantum == "bar", "source": lambda s: s.source == "camera",
        "preset": lambda s: (s.preset, s.anchor, s.alpha_b, s.tempo) == (3, "city", 0.5, 90.0),
        "chords": lambda s: s.chords == "C Am | F G", "chords/off": lambda s: s.chords is None,
        "velocity": lambda s: s.velocity == 100, "state": lambda s: "state" in fired,
        "learn": lambda s: server.learned[-1] == ["tempo"], "learn/save": lambda s: server.learned[-1] == ["saved"],
    }
    for name, args in calls.items():
        client.send_message(f"{P}/{name}", args or None)
        replies = collect(client, 0.15)
        assert errors(replies) == [], name
        assert expectations[name](params.snapshot()), name


def test_full_state_comes_back_after_a_change(server, client):
    client.send_message(f"{P}/brightness", 0.5)
    state = state_of(collect(client))
    expected = {a.path[len(P) + 7:] for a in oscspace.FEEDBACK if a.path.startswith(f"{P}/state/")}
    assert set(state) == expected
    assert state["brightness"] == 0.5 and state["anchor"] == "rain" and state["preset"] == -1
    client.send_message(f"{P}/state", None)
    assert state_of(collect(client))["brightness"] == 0.5


def test_int_accepted_for_float_and_integral_float_for_int(server, client, params):
    client.send_message(f"{P}/tempo", 100)
    client.send_message(f"{P}/anchor", 2.0)
    assert errors(collect(client)) == []
    assert params.snapshot().tempo == 100.0 and params.snapshot().anchor == "city"


@pytest.mark.parametrize("address, args, fragment", [
    (f"{P}/brightness", [float("nan")], "finite"),
    (f"{P}/contrast", [float("inf")], "finite"),
    (f"{P}/brightness", ["loud"], "expects 'f'"),
    (f"{P}/brightness", [0.1, 0.2], "expects 'f'"),
    (f"{P}/brightness", None, "expects 'f'"),
    (f"{P}/anchor", [1.5], "expects 's' or 'i'"),
    (f"{P}/anchor", ["nowhere"], "unknown anchor"),
    (f"{P}/anchor", [7], "out of range"),
    (f"{P}/style", ["cat"], "expects 'ss'"),
    (f"{P}/preset", [9], "no preset 9"),
    (f"{P}/quantum", ["phrase"], "quantum must be one of"),
    (f"{P}/chords", ["C Xyz"], "cannot read chord"),
    (f"{P}/play", ["now"], "expects no arguments"),
    (f"{P}/beat", [1, 2], "feedback-only"),
    ("/vis2mus/volume", [0.5], "unknown address"),
    ("/other/app", [], "unknown address"),
])
def test_bad_messages_get_an_error_reply_and_change_nothing(server, client, params, address, args, fragment):
    before = params.snapshot()
    client.send_message(address, args)
    replies = collect(client)
    assert len(errors(replies)) == 1
    assert fragment in errors(replies)[0]
    assert params.snapshot() == before


def test_out_of_range_values_are_clamped_and_reported(server, client, params):
    client.send_message(f"{P}/brightness", 2.5)
    client.send_message(f"{P}/velocity", 0)
    replies = collect(client)
    assert any("clamped to 1" in e for e in errors(replies))
    assert any("clamped to 1" in e and "velocity" in e for e in errors(replies))
    assert params.snapshot().alpha_b == 1.0 and params.snapshot().velocity == 1


def test_touchosc_style_button_values(server, client, params):
    client.send_message(f"{P}/stop", 1.0)
    collect(client)
    assert not params.snapshot().playing
    client.send_message(f"{P}/play", 0.0)
    assert errors(collect(client)) == []
    assert not params.snapshot().playing
    client.send_message(f"{P}/play", 1.0)
    collect(client)
    assert params.snapshot().playing


def test_bundles_are_applied_at_once_whatever_their_timetag(server, client, params):
    bundle = OscBundleBuilder(int(time.time()) + 3600)
    for address, value in ((f"{P}/brightness", 0.75), (f"{P}/quantum", "segment")):
        message = OscMessageBuilder(address)
        message.add_arg(value)
        bundle.add_content(message.build())
    client.send(bundle.build())
    collect(client)
    assert params.snapshot().alpha_b == 0.75 and params.snapshot().quantum == "segment"
    immediate = OscBundleBuilder(IMMEDIATELY)
    immediate.add_content(OscMessageBuilder(f"{P}/panic").build())
    client.send(immediate.build())
    assert errors(collect(client)) == []


def test_malformed_and_oversized_packets_get_errors(server, client):
    host, port = server.address
    raw = client._sock
    raw.sendto(b"\x00\x01garbage that is not OSC", (host, port))
    raw.sendto(b"/vis2mus/brightness\x00\x00\x00\x00,f\x00", (host, port))
    raw.sendto(encode(f"{P}/chords", "C " * MAX_PACKET), (host, port))
    found = errors(collect(client))
    assert any("malformed" in e for e in found)
    assert any("exceeds" in e for e in found)
    assert len(found) == 3


def test_random_byte_flood_leaves_the_server_responsive(server, client, params):
    host, port = server.address
    rng = __import__("random").Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        for i in range(3000):
            size = rng.randrange(0, 9000)
            payload = bytes(rng.getrandbits(8) for _ in range(size % 64)) * (size // 64 + 1)
            if i % 3 == 0:
                payload = b"/vis2mus/brightness\x00,f\x00\x00" + payload[:16]
            flood.sendto(payload[:size] if size else b"", (host, port))
    assert wait_until(lambda: server.stats.malformed > 0, 5.0), server.stats
    collect(client, 0.1)
    client.send_message(f"{P}/contrast", 0.125)
    assert state_of(collect(client))["contrast"] == 0.125
    assert server.stats.malformed > 0
    assert params.snapshot().alpha_c == 0.125


def test_fader_floods_coalesce_and_the_last_value_wins(server, client, params):
    applied = []
    params.subscribe(lambda state, changed: applied.append(state.alpha_b) if "alpha_b" in changed else None)
    n = 400
    for i in range(n):
        client.send_message(f"{P}/brightness", (i + 1) / n)
        if i % 20 == 0:
            time.sleep(0.001)
    replies = collect(client)
    assert params.snapshot().alpha_b == 1.0
    assert applied[-1] == 1.0
    assert len(applied) < n / 2, f"{len(applied)} updates applied for {n} messages"
    assert server.stats.coalesced >= n / 2
    state_bursts = [r for r in replies if r[0] == f"{P}/state/brightness"]
    assert len(state_bursts) < n / 4


def test_sender_rate_limit_drops_excess_but_ends_on_the_last_value(server, client, params):
    host, port = server.address
    sender = (
        "import socket, sys, time\n"
        "from live.control.osc import encode\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "n = 3000\n"
        "for i in range(n):\n"
        "    s.sendto(encode('/vis2mus/contrast', (i + 1) / n), (sys.argv[1], int(sys.argv[2])))\n"
        "    time.sleep(0.0002)\n"
    )
    subprocess.run([sys.executable, "-c", sender, host, str(port)], check=True, timeout=60,
                   cwd=Path(__file__).parents[1])
    assert wait_until(lambda: params.snapshot().alpha_c == 1.0, 2.0), params.snapshot()
    assert server.stats.rate_limited > 0
    client.send_message(f"{P}/tempo", 111.0)
    collect(client)
    assert params.snapshot().tempo == 111.0


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


def test_beats_reach_every_peer(server, client):
    client.send_message(f"{P}/state", None)
    collect(client)
    server.send_beat(3, 2)
    assert collect(client) == [(f"{P}/beat", [3, 2])]


def test_reply_target_and_allowlist(params):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(1.0)
        with OscServer(params, port=0, allow=["192.0.2.7"], reply=listener.getsockname()) as srv:
            with SimpleUDPClient(*srv.address) as sender:
                sender.send_message(f"{P}/brightness", "x")
            data, _ = listener.recvfrom(4096)
            assert OscMessage(data).address == f"{P}/error"
            srv.send_beat(0, 0)
            seen = []
            while True:
                try:
                    seen.append(OscMessage(listener.recvfrom(4096)[0]).address)
                except socket.timeout:
                    break
            assert f"{P}/beat" in seen


def test_allowlist_refuses_other_senders(params):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing interface
            lan = probe.getsockname()[0]
        except OSError:
            lan = "127.0.0.1"
    if lan.startswith("127."):
        pytest.skip("no non-loopback IPv4 address on this machine")
    with OscServer(params, host="0.0.0.0", port=0, allow=["192.0.2.7"]) as srv:
        port = srv.address[1]
        with SimpleUDPClient(lan, port) as outsider:
            outsider.send_message(f"{P}/brightness", 0.9)
        assert wait_until(lambda: srv.stats.refused_senders == 1, 5.0), srv.stats
        assert params.snapshot().alpha_b == 0.0


def test_port_in_use_is_one_clear_error(server, params):
    with pytest.raises(OSError, match="cannot listen for OSC on 127.0.0.1"):
        OscServer(params, port=server.address[1])


@pytest.mark.skipif(shutil.which("oscsend") is None, reason="liblo-tools (oscsend) not installed")
def test_oscsend_binary_drives_the_server(params):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(2.0)
        with OscServer(params, port=0, reply=listener.getsockname()) as srv:
            port = str(srv.address[1])

            def oscsend(*args: str) -> None:
                subprocess.run(["oscsend", "127.0.0.1", port, *args], check=True, timeout=10,
                               env={**os.environ, "LC_ALL": "C"})

            oscsend(f"{P}/brightness", "f", "0.6")
            oscsend(f"{P}/anchor", "s", "sunset")
            oscsend(f"{P}/chords", "s", "Am F C G")
            oscsend(f"{P}/tempo", "i", "150")
            oscsend(f"{P}/preset", "d", "3")
            oscsend(f"{P}/brightness", "d", "-0.25")
            deadline = time.monotonic() + 3
            while params.snapshot().alpha_b != -0.25 and time.monotonic() < deadline:
                time.sleep(0.02)
            state = params.snapshot()
            assert (state.anchor, state.chords, state.preset) == ("city", "Am F C G", 3)
            assert state.alpha_b == -0.25
            oscsend(f"{P}/contrast", "s", "high")
            oscsend(f"{P}/brightness", "T")
            found = []
            while len(found) < 2:
                data, _ = listener.recvfrom(4096)
                message = OscMessage(data)
                if message.address == f"{P}/error":
                    found.append(message.params[0])
            assert "expects 'f'" in found[0] and "got 's'" in found[0]
            assert "got 'T'" in found[1]


def test_coerce_matches_signatures():
    brightness = oscspace.BY_PATH[f"{P}/brightness"]
    anchor = oscspace.BY_PATH[f"{P}/anchor"]
    play = oscspace.BY_PATH[f"{P}/play"]
    assert coerce(brightness, [1]) == [1.0]
    assert coerce(anchor, ["rain"]) == ["rain"] and coerce(anchor, [2.0]) == [2]
    assert coerce(play, []) == [] and coerce(play, [0.0]) is None and coerce(play, [1]) == []
    assert struct.pack(">f", coerce(brightness, [0.5])[0]) == struct.pack(">f", 0.5)


def test_docs_carry_the_current_address_table():
    doc = (Path(__file__).parents[1] / "docs" / "osc.md").read_text()
    assert oscspace.markdown_table() in doc, \
        "docs/osc.md is out of date: paste live.control.oscspace.markdown_table() into its Addresses section"


_CHAR = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))  # surrogates cannot be sent
_ARG = st.one_of(
    st.floats(width=32), st.integers(-2**31, 2**31 - 1), st.booleans(),
    st.text(_CHAR, max_size=20),
    st.binary(min_size=1, max_size=8), st.sampled_from(["C Am F G", "rain", "camera", "bar", "G7 | C", ""]),
)
_PATH = st.one_of(st.sampled_from([a.path for a in oscspace.CONTROLS + oscspace.FEEDBACK]),
                  st.text(_CHAR, max_size=12).map(lambda t: "/" + t))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_PATH, st.lists(_ARG, max_size=3)), min_size=1, max_size=6))
def test_random_well_formed_messages_keep_the_state_valid(server, client, params, messages):
    for path, args in messages:
        builder = OscMessageBuilder(path)
        for arg in args:
            builder.add_arg(arg, "f" if isinstance(arg, float) else None)
        client.send(builder.build())
    collect(client, 0.1)
    state = params.snapshot()
    assert -1.0 <= state.alpha_b <= 1.0 and -1.0 <= state.alpha_c <= 1.0
    assert 20.0 <= state.tempo <= 300.0 and 1 <= state.velocity <= 127
    assert state.anchor in ANCHORS and state.content in (None, "cat")
    assert state.quantum in ("beat", "bar", "segment") and state.source in ("osc", "camera")
    if state.chords is not None:
        progression_labels(state.chords)
    client.send_message(f"{P}/state", None)
    assert state_of(collect(client, 0.1))["anchor"] == state.anchor, "the server still answers"


POISON = b"#bundle\x00" + struct.pack(">Qi", 1, -4)


def ask_state(client: SimpleUDPClient, timeout: float = 2.0) -> dict[str, object]:
    """Send ``/vis2mus/state`` until the answer comes (the flood before it may still be draining)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.send_message(f"{P}/state", None)
        state = state_of(collect(client, 0.1))
        if "anchor" in state:
            return state
    return {}


def test_poison_bundle_is_one_error_and_osc_keeps_answering(server, client, params):
    """Regression: python-osc's parser looped forever on a bundle element of size -4."""
    host, port = server.address
    client._sock.sendto(POISON, (host, port))
    found = errors(collect(client))
    assert len(found) == 1 and "malformed" in found[0] and "size -4" in found[0]
    client.send_message(f"{P}/brightness", 0.5)
    assert ask_state(client)["brightness"] == 0.5


def test_the_issue_packets_each_cost_one_rejection_and_one_summary_line_a_second(server, client, params, caplog):
    host, port = server.address
    zero = b"#bundle\x00" + struct.pack(">Q", 1) + bytes(4080)
    unknown = b"/vis2mus/brightness\x00,Z\x00\x00"
    with caplog.at_level("DEBUG"):
        t0 = time.monotonic()
        for _ in range(150):
            for packet in (POISON, zero, unknown):
                client._sock.sendto(packet, (host, port))
            time.sleep(0.01)
        assert wait_until(lambda: server.stats.malformed >= 450, 5.0), server.stats
        elapsed = time.monotonic() - t0
        assert "anchor" in ask_state(client)
        assert wait_until(lambda: server.rejects.lines >= 1, 3.0)
        lines = server.rejects.lines
        client._sock.sendto(unknown, (host, port))
        assert wait_until(lambda: server.rejects.lines > lines, 3.0), "a later rejection is summarised too"
    assert server.stats.malformed == 451 and server.stats.messages <= 2
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert all(r.name == "live.control.osc" for r in warnings), [r.getMessage() for r in warnings]
    assert len(warnings) <= elapsed + 3, [r.getMessage() for r in warnings]
    summaries = " ".join(r.getMessage() for r in warnings)
    assert "empty element" in summaries and "unknown type tag" in summaries and "malformed" in summaries
    assert not [r for r in caplog.records if "Unhandled parameter type" in r.getMessage()]


def test_one_sender_on_many_ports_shares_one_budget(server, client, params):
    host, port = server.address
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(500)]
    try:
        data = encode(f"{P}/contrast", 0.25)
        for _ in range(6):
            for i, s in enumerate(sockets):
                s.sendto(data, (host, port))
                if i % 100 == 99:
                    time.sleep(0.001)  # paced so the kernel's receive buffer keeps every packet
    finally:
        for s in sockets:
            s.close()
    assert wait_until(lambda: server.stats.packets >= 3000, 5.0), server.stats
    assert server.stats.rate_limited > 0, server.stats
    assert len(server.senders) == 1
    client.send_message(f"{P}/tempo", 123.0)
    assert ask_state(client)["tempo"] == 123.0


def test_a_state_probe_is_answered_through_a_fader_flood_from_the_same_host(server, client, params):
    host, port = server.address
    halt = time.monotonic() + 1.5
    sender = (
        "import socket, sys, time\n"
        "from live.control.osc import encode\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "until = time.monotonic() + float(sys.argv[3])\n"
        "i = 0\n"
        "while time.monotonic() < until:\n"
        "    s.sendto(encode('/vis2mus/brightness', (i % 100) / 100), (sys.argv[1], int(sys.argv[2])))\n"
        "    i += 1\n"
    )
    flood = subprocess.Popen([sys.executable, "-c", sender, host, str(port), "1.5"], cwd=Path(__file__).parents[1])
    try:
        assert wait_until(lambda: server.stats.rate_limited > 0, 5.0), server.stats
        waits = []
        while time.monotonic() < halt - 0.2:
            t0 = time.monotonic()
            client.send_message(f"{P}/state", None)
            deadline = t0 + 1.0
            while time.monotonic() < deadline:
                data = client.receive(max(0.01, deadline - time.monotonic()))
                if data and OscMessage(data).address == f"{P}/state/anchor":
                    waits.append(time.monotonic() - t0)
                    break
            else:
                waits.append(None)
    finally:
        flood.wait(timeout=10)
    assert waits and None not in waits, waits


def test_junk_from_many_ports_never_evicts_a_peer(server, client, params):
    client.send_message(f"{P}/brightness", 0.25)
    collect(client)
    host, port = server.address
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            junk.sendto(POISON, (host, port))
    assert wait_until(lambda: server.stats.malformed >= 50, 3.0)
    collect(client, 0.1)
    server.send_beat(1, 2)
    assert (f"{P}/beat", [1, 2]) in collect(client)
