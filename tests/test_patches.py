"""The controller patches (Pd, Max, TouchOSC) against the server's address space, and the Pd patch
run headless with real Pure Data against the real server (JACK MIDI peer, recording, OSC state)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import mido
import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from live.control import oscspace
from live.control.oscspace import DEFAULT_HOST, DEFAULT_PORT
from tests.support.polling import wait_until

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT / "patches"
CONTROLS = {a.path: a for a in oscspace.CONTROLS}
FEEDBACK = {a.path: a for a in oscspace.FEEDBACK}
PERFORMER = {a.path for a in oscspace.CONTROLS if a.performer}


def signature_ok(path: str, sig: str) -> bool:
    """Whether the server accepts ``sig`` on ``path`` (an ``f`` slot also takes an ``i``)."""
    for accepted in CONTROLS[path].signatures:
        if len(accepted) == len(sig) and all(a == s or (a == "f" and s == "i") for a, s in zip(accepted, sig)):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Pure Data: a reader for the text records


@dataclass
class PdCanvas:
    boxes: list[list[str]] = field(default_factory=list)  # [kind, *atoms]
    subs: dict[int, "PdCanvas"] = field(default_factory=dict)
    wires: list[tuple[int, int, int, int]] = field(default_factory=list)

    def sources(self, box: int, inlet: int = 0) -> list[tuple[int, int]]:
        return [(a, o) for a, o, b, i in self.wires if b == box and i == inlet]

    def targets(self, box: int, outlet: int = 0) -> list[tuple[int, int]]:
        return [(b, i) for a, o, b, i in self.wires if a == box and o == outlet]


def read_pd(text: str) -> PdCanvas:
    records = [r.strip() for r in re.split(r"(?<!\\);\s*\n", text) if r.strip()]
    stack: list[PdCanvas] = []
    for record in records:
        atoms = record.split()
        if atoms[:2] == ["#N", "canvas"]:
            stack.append(PdCanvas())
        elif atoms[:2] == ["#X", "restore"]:
            sub = stack.pop()
            stack[-1].subs[len(stack[-1].boxes)] = sub
            stack[-1].boxes.append(["obj", *atoms[4:]])
        elif atoms[:2] == ["#X", "connect"]:
            stack[-1].wires.append(tuple(int(a) for a in atoms[2:6]))  # type: ignore[arg-type]
        elif atoms[0] == "#X" and atoms[1] in ("obj", "msg", "text", "floatatom", "symbolatom"):
            stack[-1].boxes.append([atoms[1], *atoms[4:]])
        else:
            raise AssertionError(f"unexpected Pd record: {record[:60]}")
    assert len(stack) == 1, "unbalanced #N canvas / #X restore"
    return stack[0]


_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)(e-?\d+)?$")


def pd_out_types(c: PdCanvas, box: int, outlet: int) -> set[str] | None:
    """Argument signatures a box sends from ``outlet`` (None: whatever a [receive] brings)."""
    kind, *atoms = c.boxes[box]
    if kind == "floatatom":
        return {"f"}
    if kind == "msg":
        if atoms[0] == "symbol":
            return {"s"}
        values = atoms[1:] if atoms[0] == "list" else atoms
        return {"".join("f" if _NUMBER.match(a) else "s" for a in values)}
    name = atoms[0]
    if name in ("hsl", "vsl", "nbx", "hradio", "vradio", "tgl"):
        return {"f"}
    if name in ("bng", "delay", "del", "loadbang"):
        return {""}
    if name in ("r", "receive", "inlet", "route"):  # whatever another patch or the network brings
        return None
    if name == "pd" and atoms[1] == "join-chords":
        return {"s"}
    if name in ("t", "trigger"):
        spec = atoms[1 + outlet]
        if spec in ("s", "symbol"):
            return {"s"}
        if spec in ("f", "float"):
            return {"f"}
        if spec in ("b", "bang"):
            return {""}
        return pd_in_types(c, box, 0)
    if name == "list" and atoms[1:2] in ([], ["append"]):
        left, right = pd_in_types(c, box, 0), pd_in_types(c, box, 1)
        if left is None or right is None:
            return None
        return {a + b for a in left for b in right}
    raise AssertionError(f"no type rule for [{' '.join(atoms)}]")


def pd_in_types(c: PdCanvas, box: int, inlet: int) -> set[str] | None:
    found: set[str] = set()
    for src, outlet in c.sources(box, inlet):
        types = pd_out_types(c, src, outlet)
        if types is not None:
            found |= types
    return found


def pd_sent(c: PdCanvas) -> dict[str, set[str]]:
    """OSC path -> signatures sent by every top-level [oscformat] of the patch."""
    sent: dict[str, set[str]] = {}
    for i, (kind, *atoms) in enumerate(c.boxes):
        if kind != "obj" or atoms[0] != "oscformat":
            continue
        forced = None
        parts = atoms[1:]
        if parts[:1] == ["-f"]:
            forced, parts = parts[1], parts[2:]
        path = "/" + "/".join(parts)
        types = pd_in_types(c, i, 0) or set()
        if forced is not None:
            types = {forced[: len(t)] if len(t) == len(forced) else t for t in types}
        assert types, f"nothing feeds [oscformat {' '.join(atoms[1:])}]"
        sent.setdefault(path, set()).update(types)
        # every formatted message must reach the netsend: [s $0-out] -> [r $0-out] -> [netsend]
        outs = [c.boxes[b] for b, _ in c.targets(i)]
        assert ["obj", "s", "\\$0-out"] in outs, f"[oscformat {path}] is not wired to the netsend"
    return sent


def test_pd_patch_sends_only_known_addresses_with_accepted_types():
    c = read_pd((PATCHES / "vis2mus.pd").read_text())
    sent = pd_sent(c)
    for path, sigs in sent.items():
        assert path in CONTROLS, f"{path} is not in live.control.oscspace"
        for sig in sigs:
            assert signature_ok(path, sig), f"vis2mus.pd sends {path} ',{sig}', server wants {CONTROLS[path].signatures}"
    assert PERFORMER <= set(sent), f"not reachable from vis2mus.pd: {sorted(PERFORMER - set(sent))}"
    assert "/vis2mus/state" in sent


def test_pd_patch_network_and_feedback_wiring():
    c = read_pd((PATCHES / "vis2mus.pd").read_text())
    boxes = [" ".join(b) for b in c.boxes]
    netsend = boxes.index("obj netsend -u -b")
    assert f"msg connect {DEFAULT_HOST} {DEFAULT_PORT}" in boxes
    assert (boxes.index("obj r \\$0-out"), 0, netsend, 0) in c.wires
    parse = boxes.index("obj oscparse")
    assert (netsend, 1, parse, 0) in c.wires, "replies to the sender's socket must reach [oscparse]"
    assert (boxes.index("obj netreceive -u -b"), 0, parse, 0) in c.wires
    routes = [b.split()[2:] for b in boxes if b.startswith("obj route ")]
    assert ["vis2mus"] in routes and ["beat", "error", "state"] in routes
    state_keys = next(r for r in routes if "brightness" in r)
    assert {f"/vis2mus/state/{k}" for k in state_keys} == {p for p in FEEDBACK if "/state/" in p}
    for a, o, b, i in c.wires:  # every wire joins existing boxes
        assert 0 <= a < len(c.boxes) and 0 <= b < len(c.boxes)


# ---------------------------------------------------------------------------------------------
# Max


def test_maxpat_structure_addresses_and_types():
    patcher = json.loads((PATCHES / "vis2mus.maxpat").read_text())["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    assert len(boxes) == len(patcher["boxes"]), "duplicate box ids"
    wires = [(l["patchline"]["source"], l["patchline"]["destination"]) for l in patcher["lines"]]
    for (src, outlet), (dst, inlet) in wires:
        assert src in boxes and dst in boxes, f"patchline to a missing box {src} -> {dst}"
        assert 0 <= outlet < boxes[src]["numoutlets"], f"{src} has no outlet {outlet}"
        assert 0 <= inlet < boxes[dst]["numinlets"], f"{dst} has no inlet {inlet}"

    def text(ident: str) -> str:
        return boxes[ident].get("text", "")

    sends = [i for i in boxes if text(i).startswith("udpsend ")]
    assert len(sends) == 1
    assert text(sends[0]).split()[1:] == [DEFAULT_HOST, str(DEFAULT_PORT)]

    def out_type(ident: str) -> str:
        box = boxes[ident]
        if box["maxclass"] == "slider":
            return "f" if box.get("floatoutput") else "i"
        if box["maxclass"] in ("flonum", "number"):
            return "f" if box["maxclass"] == "flonum" else "i"
        name, *args = text(ident).split()
        if name == "tosymbol":
            return "s"
        if name == "clip":
            assert all("." in a for a in args), "clip needs float bounds to output floats"
            return "f"
        raise AssertionError(f"no type rule for {box['maxclass']} {text(ident)!r}")

    sent: dict[str, set[str]] = {}
    for (src, _), (dst, _) in wires:
        if dst != sends[0]:
            continue
        box = boxes[src]
        if box["maxclass"] == "message":
            path, *args = shlex.split(text(src))
            assert "$" not in text(src)
            sig = "".join("i" if re.fullmatch(r"-?\d+", a) else "f" if _NUMBER.match(a) else "s" for a in args)
        else:
            name, path = text(src).split()
            assert name == "prepend"
            feeds = {out_type(s) for (s, _), (d, _) in wires if d == src}
            assert len(feeds) == 1, f"[prepend {path}] fed by {feeds}"
            sig = feeds.pop()
        assert path in CONTROLS, f"{path} is not in live.control.oscspace"
        assert signature_ok(path, sig), f"vis2mus.maxpat sends {path} ',{sig}'"
        sent.setdefault(path, set()).add(sig)
    assert PERFORMER <= set(sent), f"not reachable from vis2mus.maxpat: {sorted(PERFORMER - set(sent))}"

    receives = [i for i in boxes if text(i).startswith("udpreceive ")]
    assert len(receives) == 1
    routed = next(text(i).split()[1:] for i in boxes if text(i).startswith("route /"))
    assert set(routed) == set(FEEDBACK)
    # the camera path: jit.grab -> luminance -> statistics -> brightness and contrast
    names = [text(i).split()[0] for i in boxes if text(i)]
    for needed in ("jit.grab", "jit.rgb2luma", "jit.3m", "qmetro"):
        assert needed in names
    camera_targets = {text(d).split()[1] for (s, _), (d, _) in wires if text(s).startswith("clip ")}
    assert camera_targets == {"/vis2mus/brightness", "/vis2mus/contrast"}


# ---------------------------------------------------------------------------------------------
# TouchOSC


def _tosc_root() -> ET.Element:
    data = (PATCHES / "vis2mus.tosc").read_bytes()
    root = ET.fromstring(zlib.decompress(data))
    assert root.tag == "lexml" and root.get("version") == "3"
    return root


def _frame(node: ET.Element) -> tuple[float, ...]:
    for prop in node.find("properties"):
        if prop.findtext("key") == "frame":
            value = prop.find("value")
            return tuple(float(value.findtext(k)) for k in "xywh")
    raise AssertionError("node without a frame")


def test_tosc_addresses_types_ranges_and_portrait_layout():
    root = _tosc_root()
    top = root.find("node")
    x, y, w, h = _frame(top)
    assert h > w, "the layout should be portrait (for a phone)"
    ids = [n.get("ID") for n in root.iter("node")]
    assert len(ids) == len(set(ids))
    conversion = {"FLOAT": "f", "INTEGER": "i", "STRING": "s"}
    sent: dict[str, set[str]] = {}
    received: set[str] = set()
    for parent in root.iter("node"):  # child frames are relative to the parent and must fit in it
        _, _, pw, ph = _frame(parent)
        for child in parent.iterfind("children/node"):
            cx, cy, cw, ch = _frame(child)
            assert cw > 0 and ch > 0 and cx >= 0 and cy >= 0 and cx + cw <= pw + 0.5 and cy + ch <= ph + 0.5, (
                f"{child.get('type')} {(cx, cy, cw, ch)} sticks out of its {pw}x{ph} parent")
    for node in root.iter("node"):
        for osc in node.iterfind("messages/osc"):
            path = "".join(p.findtext("value") for p in osc.iterfind("path/partial"))
            args = list(osc.iterfind("arguments/partial"))
            if osc.findtext("send") == "1":
                assert path in CONTROLS, f"{path} is not in live.control.oscspace"
                sig = "".join(conversion[a.findtext("conversion")] for a in args)
                assert signature_ok(path, sig), f"vis2mus.tosc sends {path} ',{sig}'"
                address = CONTROLS[path]
                for a in args:
                    if a.findtext("type") == "VALUE" and address.low is not None:
                        lo, hi = float(a.findtext("scaleMin")), float(a.findtext("scaleMax"))
                        assert address.low <= lo < hi <= address.high, f"{path} fader range {lo}..{hi}"
                assert osc.findtext("feedback") == "0"
                sent.setdefault(path, set()).add(sig)
            if osc.findtext("receive") == "1":
                assert path in FEEDBACK, f"{path} is not a feedback address"
                received.add(path)
    assert PERFORMER <= set(sent), f"not reachable from vis2mus.tosc: {sorted(PERFORMER - set(sent))}"
    assert {"/vis2mus/state/brightness", "/vis2mus/state/contrast", "/vis2mus/error"} <= received


def test_generated_files_match_the_generator():
    from patches.catalog import default_names
    from patches.make_patches import render

    for name, data in render(default_names()).items():
        assert (PATCHES / name).read_bytes() == data, f"patches/{name} is stale: run python -m patches.make_patches"


# ---------------------------------------------------------------------------------------------
# Real Pure Data

PD = shutil.which("pd")
needs_pd = pytest.mark.skipif(PD is None, reason="Pure Data not installed (apt-get install puredata-core)")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def osc(address: str, *args: object) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def pd_command(*sends: str, patch: str = "vis2mus.pd") -> list[str]:
    cmd = [PD, "-nogui", "-nosound", "-nomidi", "-noprefs", "-open", str(PATCHES / patch)]
    for s in sends:
        cmd += ["-send", s]
    return cmd


def collect(sock: socket.socket, seconds: float) -> list[tuple[bytes, tuple[str, int]]]:
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            out.append(sock.recvfrom(65536))
        except socket.timeout:
            break
    return out


@needs_pd
def test_pd_patch_formats_each_control_as_the_server_expects():
    """Real Pd, real UDP: the GUI objects' receive names drive the same [oscformat] chains, and
    feedback is parsed both from the sending socket and from the listen port."""
    listen = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        proc = subprocess.Popen(pd_command(
            f"v2m.connect connect 127.0.0.1 {port}", f"v2m.listen listen {listen}",
            "v2m.brightness 0.25", "v2m.velocity 90", "v2m.chords C G | Am F", "v2m.chords Dm G C C",
            "v2m.anchor symbol stride", "v2m.play bang"), stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        try:
            got = collect(server, 2.0)
            assert got, "nothing arrived from Pd"
            server.sendto(osc("/vis2mus/error", "reply-to-the-sender"), got[0][1])
            server.sendto(osc("/vis2mus/error", "reply-to-the-listen-port"), ("127.0.0.1", listen))
            assert wait_until(lambda: sum("reply-to-the-" in l for l in lines) >= 2, 10), "".join(lines)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            reader.join(timeout=5)
        log = "".join(lines)
    assert "couldn't create" not in log and not re.search(r"^error:", log, re.M), log
    assert "reply-to-the-sender" in log and "reply-to-the-listen-port" in log, log
    raw = {OscMessage(d).address: d for d, _ in got}
    messages = {OscMessage(d).address: OscMessage(d).params for d, _ in got}
    chords = [OscMessage(d).params for d, _ in got if OscMessage(d).address == "/vis2mus/chords"]
    assert chords == [["C G | Am F"], ["Dm G C C"]]  # one string each, nothing left from the first
    assert messages["/vis2mus/brightness"] == [pytest.approx(0.25)]
    assert b",f\x00" in raw["/vis2mus/brightness"]
    assert messages["/vis2mus/velocity"] == [90] and b",i\x00" in raw["/vis2mus/velocity"]
    assert messages["/vis2mus/anchor"] == ["stride"]
    assert messages["/vis2mus/play"] == []
    assert "/vis2mus/state" in messages  # asked once connected


# ---------------------------------------------------------------------------------------------
# Real Pure Data against the real server


def _server_ready(sock: socket.socket, port: int, server: subprocess.Popen, log: list[str],
                  timeout: float = 60.0) -> dict[str, object]:
    """Wait for the server's first state reply (it may be exporting ONNX graphs first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        state = query_state(sock, port, 1.0)
        if state:
            return state
    raise AssertionError("the server did not answer /vis2mus/state:\n" + "".join(log))


def query_state(sock: socket.socket, port: int, seconds: float = 2.0) -> dict[str, object]:
    """Ask the server for its state over real UDP; ``{field: value}`` of the last burst."""
    sock.sendto(osc("/vis2mus/state"), ("127.0.0.1", port))
    state: dict[str, object] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and len(state) < len([p for p in FEEDBACK if "/state/" in p]):
        for data, _ in collect(sock, min(0.3, deadline - time.monotonic())):
            m = OscMessage(data)
            if m.address.startswith("/vis2mus/state/"):
                state[m.address.rsplit("/", 1)[1]] = m.params[0]
    return state


def share(pitches: list[int], allowed: set[int]) -> float:
    """Fraction of ``pitches`` that lie in ``allowed``."""
    return sum(p in allowed for p in pitches) / max(1, len(pitches))


def _expected_pitches(anchor: str, alpha_b: float, alpha_c: float, engine_on: bool) -> set[int]:
    """Pitches of the whole loop the server renders for this state (same renderer as the server)."""
    from live.app.renderer import Renderer
    from live.control.params import State
    from live.texture.anchors import content_pieces, default_anchors

    vis2mus = None
    if engine_on:
        from export import exporter
        from live.inference.engine import Engine
        from live.texture.vis2mus import Vis2Mus

        vis2mus = Vis2Mus(Engine.from_weights(None, device="cpu", threads=1, exporter=exporter()))
    renderer = Renderer(default_anchors(), content_pieces(), vis2mus)
    state = State(anchor=anchor, alpha_b=alpha_b, alpha_c=alpha_c)
    _, sections = renderer(state, list(range(renderer.count(state))))
    return {int(p) for s in sections for p in s.accompaniment[:, 1]}


@needs_pd
@pytest.mark.jack
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("jackd") is None, reason="jackd not installed (apt-get install jackd2)")
def test_pd_driver_steers_the_running_server(tmp_path):
    from live.texture.anchors import default_anchors
    from tests.support.jackrig import CALM_PERIOD, JackServer, Peer, released

    anchors = default_anchors()
    names = sorted(anchors)
    # switch to the anchor that shares the fewest pitches with the first, so the MIDI check bites
    start_notes = [int(p) for p in anchors[names[0]].accompaniment[:, 1]]
    target = min(names[1:], key=lambda n: share(start_notes, {int(p) for p in anchors[n].accompaniment[:, 1]}))
    record = tmp_path / "take.mid"
    port, reply_port = free_udp_port(), free_udp_port()
    with JackServer(f"v2mpatches{os.getpid()}", period=CALM_PERIOD):
        peer = Peer("patchpeer")
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "run_live.py"), "--osc-port", str(port), "--midi-api", "jack",
             "--midi-port", peer.port, "--record", str(record), "--status", "log", "--bpm", "240",
             "--anchor", names[0]],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log: list[str] = []
        threading.Thread(target=lambda: log.extend(server.stdout), daemon=True).start()
        pd = None
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as me:
                me.bind(("127.0.0.1", 0))
                before = _server_ready(me, port, server, log)
                assert before["anchor"] == names[0]
                assert wait_until(lambda: (ons := peer.note_ons()) and ons[-1][0] - ons[0][0] >= 1.5, 30), \
                    "the first anchor plays for 1.5 s"
                t_pd = time.perf_counter()
                pd = subprocess.Popen(pd_command(f"v2m.test run {port} {reply_port} {target}", patch="test_driver.pd"),
                                      stderr=subprocess.PIPE, text=True)
                pd_lines: list[str] = []
                reader = threading.Thread(target=lambda: pd_lines.extend(pd.stderr), daemon=True)
                reader.start()
                deadline = time.monotonic() + 20
                while not any("v2m-driver: done" in l for l in pd_lines):
                    assert time.monotonic() < deadline, "driver did not finish:\n" + "".join(pd_lines)
                    time.sleep(0.1)
                t_done = time.perf_counter()  # the anchor switch was sent 2 s before
                # beats keep coming back to the patch; the new anchor plays for 3 s
                assert wait_until(lambda: peer.note_ons()[-1][0] > t_done + 3.0, 20), "notes stopped after the switch"
                after = query_state(me, port)
            pd.terminate()
            pd.wait(timeout=10)
            reader.join(timeout=5)
        finally:
            if pd is not None and pd.poll() is None:
                pd.kill()
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
        assert released(peer), ("SIGTERM closes every note", peer.held(), "".join(log)[-3000:])
        notes = peer.note_ons()
        peer.close()
    banner = "".join(log)
    fb = "".join(pd_lines)

    # the server's state shows the patch's moves (queried by the test over UDP)
    assert after["brightness"] == pytest.approx(0.6, abs=1e-6), banner
    assert after["contrast"] == pytest.approx(-0.5, abs=1e-6)
    assert after["anchor"] == target
    assert after["quantum"] == before["quantum"], "an invalid quantum must be rejected"
    # the patch received the feedback through its [oscparse] chain
    assert f"v2m-fb: vis2mus state anchor {target}" in fb
    assert re.search(r"v2m-fb: vis2mus state brightness 0\.6", fb)
    assert re.search(r"v2m-fb: vis2mus beat \d+ \d+", fb)
    assert re.search(r"vis2mus-error: .*quantum", fb), fb
    # the MIDI peer shows it: from 2 s after the switch (a beat for the splice plus the
    # regeneration) the notes come from the new anchor's loop, rendered as the server renders it
    engine_on = "engine     off" not in banner
    new = _expected_pitches(target, after["brightness"], after["contrast"], engine_on)
    old_notes = [p for t, ch, p, v in notes if t < t_pd]
    new_notes = [p for t, ch, p, v in notes if t > t_done]
    assert old_notes and new_notes, f"no notes before/after the switch ({len(notes)} in all)"
    assert share(old_notes, new) < 0.7, "the two anchors share too many pitches: the check could not fail"
    # (>= 95 %, not 100 %: a regenerated loop may differ by a rare near-tie between batch shapes)
    assert share(new_notes, new) >= 0.95, f"pitches {sorted(set(new_notes) - new)} after the switch are not in {target}'s loop"
    # so does the recording (a valid MIDI file): the first anchor's pitches at first, the last two
    # seconds (all after the switch) from the new anchor
    timed, now = [], 0.0
    for m in mido.MidiFile(record):
        now += m.time
        if m.type == "note_on" and m.velocity > 0:
            timed.append((now, m.note))
    assert timed, "empty recording"
    assert share([p for t, p in timed if t < 1.0], new) < 0.7
    tail = [p for t, p in timed if t > timed[-1][0] - 2.0]
    assert share(tail, new) >= 0.95, f"recording ends with pitches {sorted(set(tail) - new)} outside {target}'s loop"
