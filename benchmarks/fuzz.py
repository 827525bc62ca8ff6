"""Hostile input against the running server: the hardening table of docs/live.md, re-measured.

Starts a private JACK server (dummy driver), a python-rtmidi JACK peer and ``python run_live.py``
(``--midi-port`` the peer, recording into a temporary folder), then runs each case and prints one
table row per case (what was measured; it asserts nothing):

- ``poison``: the 20-byte bundle whose element size is -4; OSC answers ``/vis2mus/state`` after it?
  stderr growth and server CPU over the next seconds.
- ``zero``: bundles of 1,020 zero-size elements; stderr lines per packet.
- ``unknown``: ``/vis2mus/brightness ,Z`` packets; stderr lines in all.
- ``evasion``: one sender on 1,100 source ports at about 3 kHz; packets the server rate-limited.
- ``flood``: hostile and valid packets for ``--duration`` s (valid fader floods at 1-5 kHz from
  child processes, random and mutated packets, the three above), ``/vis2mus/state`` probed twice a
  second; late steps (server send thread) and probe answers.
- ``disk``: recording onto a 256 KB tmpfs (needs root to mount; skipped otherwise) that fills up.
- ``weights``: random bytes, 0 bytes and an exported ONNX folder as ``--weights``.
- ``data-out``: ``vis2mus-data prepare --out data.out``.
- ``sigkill``: SIGKILL mid-bar, then ``vis2mus-live --panic`` to the peer; notes left sounding.
- ``soak`` (not in the default set): 100 Hz sweeps for ``--soak`` s; the server's RSS slope.

Usage: ``python -m benchmarks.fuzz [--duration 40] [--cases flood,poison,...] [--root TREE]``
(``--root`` runs another checkout's ``run_live.py``, e.g. main before a change).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.support.jackrig import JackServer, Peer

ROOT = Path(__file__).resolve().parent.parent
POISON = b"#bundle\x00" + struct.pack(">Qi", 1, -4)
ZERO = b"#bundle\x00" + struct.pack(">Q", 1) + bytes(4080)
UNKNOWN = b"/vis2mus/brightness\x00,Z\x00\x00"
SUMMARY = re.compile(r"played (\d+) steps, late (\d+)(?: \(>[\d.]+ ms\))?(?:, (\d+) over 10 ms)?.*max ([\d.]+) "
                     r"\(step -?\d+\); renders (\d+)")
OSC_LINE = re.compile(r"OSC: (\d+) packets.*?rate-limited (\d+)")


def encode(address: str, *values: object) -> bytes:
    from pythonosc.osc_message_builder import OscMessageBuilder

    builder = OscMessageBuilder(address)
    for value in values:
        builder.add_arg(value, "f" if isinstance(value, float) else None)
    return builder.build().dgram


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``run_live.py`` of ``root`` into ``peer``; stdout+stderr in ``log``."""

    def __init__(self, root: Path, work: Path, tag: str, args: list[str], record: Path | None = None) -> None:
        self.osc_port = free_port()
        self.log = work / f"{tag}.log"
        self.record = record or work / f"{tag}.mid"
        self._out = open(self.log, "w")
        cmd = [sys.executable, "run_live.py", "--midi-api", "jack", "--osc-port", str(self.osc_port),
               "--status", "off", "--record", str(self.record), *args]
        self.proc = subprocess.Popen(cmd, cwd=root, stdout=self._out, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(root)})
        self.target = ("127.0.0.1", self.osc_port)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while "recording" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.text()[-3000:]}")
            time.sleep(0.1)

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


def probe(sock: socket.socket, target, timeout: float = 1.0) -> float | None:
    """ms until ``/vis2mus/state/anchor`` answers a ``/vis2mus/state``; ``None`` when it does not."""
    sock.setblocking(False)
    while True:  # drop earlier replies (beats, errors)
        try:
            sock.recv(65536)
        except BlockingIOError:
            break
    t0 = time.perf_counter()
    sock.sendto(encode("/vis2mus/state"), target)
    deadline = t0 + timeout
    while (left := deadline - time.perf_counter()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if data.startswith(b"/vis2mus/state/anchor"):
            return (time.perf_counter() - t0) * 1000.0
    return None


def summary(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        found = SUMMARY.search(line)
        if found:
            out.update(steps=int(found[1]), late=int(found[2]), over10=int(found[3] or -1), max=float(found[4]),
                       renders=int(found[5]))
        found = OSC_LINE.search(line)
        if found:
            out.update(packets=int(found[1]), limited=int(found[2]))
    return out


def recorded_balance(path: Path) -> tuple[int, int]:
    """(note-ons, note-offs) in a recording (mido raises on an invalid file)."""
    import mido

    track = mido.MidiFile(path).tracks[0]
    ons = sum(1 for m in track if m.type == "note_on" and m.velocity > 0)
    offs = sum(1 for m in track if m.type == "note_off" or (m.type == "note_on" and m.velocity == 0))
    return ons, offs


def row(case: str, measured: str) -> None:
    print(f"| {case} | {measured} |", flush=True)


# Flood children: ``python -m benchmarks.fuzz _flood KIND PORT SECONDS SEED``

def flood_child(kind: str, port: int, seconds: float, seed: int) -> None:
    rng = random.Random(seed)
    target = ("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    until = time.monotonic() + seconds
    valid = [encode("/vis2mus/brightness", 0.5), encode("/vis2mus/contrast", -0.5),
             encode("/vis2mus/tempo", 120.0), encode("/vis2mus/anchor", "arpeggios")]
    i = 0
    while time.monotonic() < until:
        i += 1
        if kind == "sweep":
            t = time.monotonic()
            sock.sendto(encode("/vis2mus/brightness", 0.8 * np.sin(t / 7.0)), target)
            sock.sendto(encode("/vis2mus/contrast", 0.6 * np.sin(t / 5.0)), target)
            time.sleep(0.01)
        elif kind == "valid":
            rate = (1000, 2000, 5000)[(i // 5000) % 3]
            name = "/vis2mus/brightness" if i % 2 else "/vis2mus/contrast"
            sock.sendto(encode(name, 0.9 * np.sin(i / 400.0)), target)
            time.sleep(max(0.0, 1.0 / rate - 0.00012))
        elif kind == "ports":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(3):
                s.sendto(encode("/vis2mus/contrast", rng.uniform(-1, 1)), target)
            s.close()
            time.sleep(0.001)
        else:
            choice = rng.randrange(6)
            if choice == 0:
                data = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 700)))
            elif choice == 1:
                data = bytearray(rng.choice(valid))
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] = rng.getrandbits(8)
                data = bytes(data)
            elif choice == 2:
                data = b"#bundle\x00" + bytes(8) + b"".join(struct.pack(">i", rng.randint(-64, 5000))
                                                           for _ in range(rng.randint(1, 6)))
            else:
                data = (POISON, ZERO, UNKNOWN)[choice - 3]
            sock.sendto(data, target)
            time.sleep(0.0005)


def spawn_flood(kind: str, port: int, seconds: float, seed: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.fuzz", "_flood", kind, str(port), str(seconds),
                             str(seed)], cwd=ROOT)


# Cases

def case_poison(srv: Server, sock: socket.socket) -> None:
    before, cpu0 = srv.log.stat().st_size, srv.cpu_s()
    for _ in range(10):
        sock.sendto(POISON, srv.target)
    time.sleep(3.0)
    grew, cpu = srv.log.stat().st_size - before, srv.cpu_s() - cpu0
    waits = [probe(sock, srv.target) for _ in range(5)]
    answered = [w for w in waits if w is not None]
    row("poison bundle (size -4) x10", f"stderr +{grew} B in 3 s, server CPU {cpu / 3:.2f} s/s; "
        f"/vis2mus/state answered {len(answered)} of 5" + (f" (max {max(answered):.1f} ms)" if answered else ""))


def case_zero(srv: Server, sock: socket.socket) -> None:
    lines0 = srv.text().count("\n")
    for _ in range(50):
        sock.sendto(ZERO, srv.target)
        time.sleep(0.002)
    time.sleep(1.5)
    lines = srv.text().count("\n") - lines0
    row("bundle of 1,020 zero-size elements x50", f"{lines} stderr lines in all ({lines / 50:.2f} per packet)")


def case_unknown(srv: Server, sock: socket.socket) -> None:
    lines0 = srv.text().count("\n")
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 3.0:
        sock.sendto(UNKNOWN, srv.target)
        n += 1
        time.sleep(0.0005)
    time.sleep(1.5)
    lines = srv.text().count("\n") - lines0
    row("unknown type tag ,Z", f"{n} packets in 3 s -> {lines} stderr lines (summary lines, at most one a second)")


def case_evasion(args, work: Path) -> None:
    """Its own server run, so the OSC counters of the exit summary are this case's alone."""
    peer = Peer("evasionpeer")
    srv = Server(Path(args.root).resolve(), work, "evasion", ["--midi-port", peer.port])
    try:
        srv.wait_started()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        flood = spawn_flood("ports", srv.osc_port, 5.0, 1)
        flood.wait(timeout=60)
        answered = probe(sock, srv.target)
        srv.stop()
        text = srv.text()
        found = re.search(r"OSC: (\d+) packets.*?(\d+) applied.*?rate-limited (\d+).*?senders (\d+)", text)
        if found is None:
            row("one sender from ~1,100+ source ports (5 s)", "no OSC summary line")
            return
        packets, applied, limited, senders = (int(g) for g in found.groups())
        row("one sender from 1,100+ source ports at ~3 kHz (5 s)",
            f"{limited} of {packets} packets rate-limited ({applied} applied), {senders} sender in the table; "
            f"state answered after it: {'yes' if answered is not None else 'no'}")
    finally:
        srv.stop()
        peer.close()


def case_flood(srv: Server, sock: socket.socket, duration: float, hostile: bool = True) -> dict:
    floods = [spawn_flood("valid", srv.osc_port, duration, 10)]
    if hostile:
        floods += [spawn_flood("hostile", srv.osc_port, duration, 11), spawn_flood("hostile", srv.osc_port, duration, 12)]
    waits = []
    cpu0, t0 = srv.cpu_s(), time.monotonic()
    t_end = t0 + duration
    while time.monotonic() < t_end:
        waits.append(probe(sock, srv.target))
        time.sleep(0.5)
    cpu = (srv.cpu_s() - cpu0) / (time.monotonic() - t0)
    for f in floods:
        f.wait(timeout=60)
    answered = np.array([w for w in waits if w is not None])
    return {"probes": len(waits), "answered": len(answered), "cpu": cpu,
            "p50": float(np.median(answered)) if len(answered) else float("nan"),
            "max": float(answered.max()) if len(answered) else float("nan")}


def run_server_cases(args, work: Path) -> None:
    root = Path(args.root).resolve()
    peer = Peer("fuzzpeer")
    srv = Server(root, work, "fuzz", ["--midi-port", peer.port, "--bpm", "120", *args.server_args])
    try:
        srv.wait_started()
        time.sleep(1.0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        cases = args.cases
        if "poison" in cases:
            case_poison(srv, sock)
        if "zero" in cases:
            case_zero(srv, sock)
        if "unknown" in cases:
            case_unknown(srv, sock)
        flood = None
        if "flood" in cases or "valid" in cases:
            flood = case_flood(srv, sock, args.duration, hostile="flood" in cases)
        alive = srv.proc.poll() is None
        code = srv.stop()
        time.sleep(1.0)
        held, sounding = peer.held(), peer.sounding()
        figures = summary(srv.text())
        ons, offs = recorded_balance(srv.record)
        if flood is not None:
            kind = "hostile + valid floods" if "flood" in cases else "valid fader floods only"
            row(f"{kind} for {args.duration:g} s (valid at 1-5 kHz)",
                f"{figures.get('over10', '?')} steps later than 10 ms of {figures.get('steps', '?')} "
                f"({figures.get('late', '?')} over 2 ms, worst {figures.get('max', float('nan')):.1f} ms, "
                f"{figures.get('renders', '?')} renders); "
                f"state answered {flood['answered']} of {flood['probes']} (p50 {flood['p50']:.1f}, "
                f"max {flood['max']:.1f} ms); server process CPU {flood['cpu']:.2f} s/s")
        row("server after the cases", f"{'alive' if alive else 'DEAD'}, exit {code}; at the peer {len(sounding)} "
            f"notes left sounding ({len(held)} without a note-off, CC 123 after them), recording {ons} note-ons / {offs} note-offs; OSC packets {figures.get('packets', '?')}, rate-limited {figures.get('limited', '?')}; "
            f"log {srv.log.stat().st_size} B")
        if args.verbose:
            print(srv.text()[-4000:])
    finally:
        srv.stop()
        peer.close()


def first_line_with(text: str, *needles: str) -> str:
    return next((line.strip() for line in text.splitlines() if any(n in line for n in needles)), "(no such line)")


def case_disk(args, work: Path) -> None:
    where = work / "tmpfs"
    where.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(where)],
                      capture_output=True).returncode != 0:
        row("disk full while recording (256 KB tmpfs)", "not measured: mounting a tmpfs needs root")
        return
    peer = Peer("diskpeer")
    srv = Server(Path(args.root).resolve(), work, "disk", ["--midi-port", peer.port, "--bpm", "240"],
                 record=where / "take.mid")
    try:
        srv.wait_started()
        time.sleep(2.0)
        filler = where / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        for block in (4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
        os.close(fd)
        t_full = time.monotonic()
        before = len(peer.note_ons())
        time.sleep(4.0)
        alive = srv.proc.poll() is None
        playing = len(peer.note_ons()) - before
        try:
            good = recorded_balance(srv.record)[0]
        except Exception as exc:  # an unreadable file is what this case looks for
            good = f"unreadable ({type(exc).__name__})"
        parts = [p.name for p in where.iterdir() if p.name.endswith(".part")]
        filler.unlink()
        deadline = time.monotonic() + 40
        while "recording resumed" not in srv.text() and time.monotonic() < deadline and srv.proc.poll() is None:
            time.sleep(0.2)
        resumed = time.monotonic() - t_full if "recording resumed" in srv.text() else None
        code = srv.stop()
        text = srv.text()
        final = recorded_balance(srv.record)[0] if srv.record.exists() else 0
        row("disk full while recording (256 KB tmpfs)",
            f"{'plays on' if alive else 'EXITED'} ({playing} notes at the peer in the next 4 s); "
            f"\"{first_line_with(text, 'recording stopped', 'Traceback')}\"; {text.count('Traceback')} tracebacks; "
            f"file valid with {good} note-ons; {len(parts)} .part left; "
            f"resumed {f'{resumed:.1f} s after filling, once space returned' if resumed else 'never'}; "
            f"exit {code}, final file {final} note-ons")
    finally:
        srv.stop()
        peer.close()
        subprocess.run(["umount", "-l", str(where)], check=False)


def case_weights(args, work: Path) -> None:
    from export import exporter
    from live.inference import graphs

    empty, noise = work / "empty.pt", work / "noise.pt"
    empty.write_bytes(b"")
    noise.write_bytes(np.random.default_rng(0).bytes(1 << 16))
    folder = graphs.ensure_graphs(graphs.default_weights(), log=lambda _: None, exporter=exporter())
    for label, weights in (("random bytes", noise), ("0 bytes", empty), ("an exported ONNX folder", folder)):
        srv = Server(Path(args.root).resolve(), work, f"w-{label[:5]}", ["--weights", str(weights)])
        deadline = time.monotonic() + 120
        while "engine" not in srv.text() and srv.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        srv.stop()
        text = srv.text()
        line = first_line_with(text, "no regeneration", "engine ", "Traceback")
        row(f"--weights {label}", f"\"{line}\"")


def case_data_out(args, work: Path) -> None:
    from tests.test_pop909 import write_song

    pop = work / "pop"
    for n in range(1, 4):
        write_song(pop / f"{n:03d}", n)
    out = work / "data.out"
    done = subprocess.run([sys.executable, "-m", "model.data_cli", "prepare", "--pop909", str(pop), "--out", str(out)],
                          cwd=Path(args.root).resolve(), capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(args.root).resolve())})
    wrote = sorted(p.name for p in work.iterdir() if p.name.startswith("data.out"))
    refused = subprocess.run([sys.executable, "-m", "model.data_cli", "prepare", "--pop909", str(pop), "--out",
                              "/proc/no/such/dir/x.npz"], cwd=Path(args.root).resolve(), capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(Path(args.root).resolve())})
    row("vis2mus-data prepare --out data.out", f"exit {done.returncode}, wrote {wrote}; an unwritable --out: "
        f"exit {refused.returncode} \"{refused.stderr.strip().splitlines()[-1] if refused.stderr.strip() else ''}\"")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def case_soak(args, work: Path) -> None:
    """100 Hz brightness + contrast sweeps for ``--soak`` s; the server's RSS slope after a
    30 s warm-up (least squares over a sample every 5 s) and its late steps."""
    peer = Peer("soakpeer")
    srv = Server(Path(args.root).resolve(), work, "soak", ["--midi-port", peer.port])
    try:
        srv.wait_started()
        sweep = spawn_flood("sweep", srv.osc_port, args.soak, 20)
        t0 = time.monotonic()
        samples = []
        while sweep.poll() is None:
            if time.monotonic() - t0 >= 30.0:
                samples.append((time.monotonic() - t0, rss_kb(srv.proc.pid)))
            time.sleep(5.0)
        srv.stop()
        figures = summary(srv.text())
        t, kb = np.array(samples).T if len(samples) > 1 else (np.zeros(2), np.zeros(2))
        slope = np.polyfit(t, kb, 1)[0] * 60.0 if len(samples) > 1 else float("nan")
        row(f"soak: 100 Hz brightness + contrast sweeps, {args.soak:g} s",
            f"RSS {kb[0]:.0f} -> {kb[-1]:.0f} kB, {slope:+.0f} kB/min after a 30 s warm-up; "
            f"{figures.get('late', '?')} late steps of {figures.get('steps', '?')} (worst {figures.get('max', float('nan')):.1f} ms, "
            f"{figures.get('over10', '?')} over 10 ms), {figures.get('renders', '?')} renders")
    finally:
        srv.stop()
        peer.close()


def case_sigkill(args, work: Path) -> None:
    peer = Peer("killpeer")
    srv = Server(Path(args.root).resolve(), work, "kill", ["--midi-port", peer.port, "--bpm", "200",
                                                           "--max-note", "16"])
    try:
        srv.wait_started()
        deadline = time.monotonic() + 30
        while len(peer.note_ons()) < 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(random.Random(5).uniform(0.1, 0.6))
        srv.stop(signal.SIGKILL)
        time.sleep(1.0)
        held = len(peer.held())
        try:
            ons, offs = recorded_balance(srv.record)
            valid = f"file valid ({ons} note-ons)"
        except Exception as exc:  # an unreadable file is what this case looks for
            valid = f"file unreadable ({type(exc).__name__})"
        done = subprocess.run([sys.executable, "run_live.py", "--panic", "--midi-api", "jack", "--midi-port", peer.port],
                              cwd=Path(args.root).resolve(), capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(args.root).resolve())})
        time.sleep(0.5)
        row("SIGKILL, then `vis2mus-live --panic --midi-port PEER`",
            f"{valid}; {held} notes left sounding after the kill; --panic exit {done.returncode}, "
            f"{len(peer.held())} left after it")
    finally:
        srv.stop()
        peer.close()


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "_flood":
        flood_child(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=40.0, help="seconds of the flood case (default 40)")
    p.add_argument("--cases", default="poison,zero,unknown,evasion,flood,disk,weights,data-out,sigkill",
                   help="comma-separated; also: valid (valid floods only), soak")
    p.add_argument("--soak", type=float, default=180.0, help="seconds of the soak case (default 180)")
    p.add_argument("--root", default=str(ROOT), help="checkout whose run_live.py runs (default this one)")
    p.add_argument("--server-args", nargs="*", default=[], help="extra run_live.py options")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args(argv)
    args.cases = set(args.cases.split(","))
    print("| case | measured |\n|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp, JackServer(f"v2mfuzz{os.getpid()}", period=1024):
        if args.cases & {"poison", "zero", "unknown", "flood", "valid"}:
            run_server_cases(args, Path(tmp))
        for name in ("evasion", "disk", "weights", "data-out", "sigkill", "soak"):
            if name in args.cases:
                globals()[f"case_{name.replace('-', '_')}"](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
