"""Timing figures of the live server, measured at a JACK MIDI peer (prints figures; asserts nothing).

Every mode starts a private JACK server (dummy driver, no realtime) and runs ``python run_live.py``
as a subprocess connected to a python-rtmidi JACK input in this process.

- ``timing``: event timing error at the peer while regeneration runs continuously (brightness
  moves every 250 ms). The server sends MIDI clock; the error of an event is its arrival time minus
  the ideal grid fitted through all arrivals (so the constant JACK latency drops out). Also
  prints the server's own send-thread lateness (deadline -> rtmidi call).
- ``latency``: control-to-sound. Brightness jumps by OSC at random moments; for each jump: ms from
  the OSC packet to the first note at the peer that differs from the old render, and at which beat
  boundary after the packet the change landed (0 = the next beat).
- ``stress``: 240 BPM, brightness and contrast swept by OSC at 100 Hz and a 30 fps video steering
  alpha at the same time; late events (> 2 ms after their deadline) over the run.
- ``streams``: N server instances at once (each its own virtual port, OSC port and 10 Hz sweep);
  the largest N (of ``--streams``) with no late event.

Usage: ``python -m benchmarks.live_timing all --duration 60`` (``--weights`` a ``.pt``; default
the shipped weights; ``--period`` the JACK period in frames at 48 kHz).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from pythonosc.udp_client import SimpleUDPClient

from tests.support.jackrig import JackServer, Peer, note_steps

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"played (\d+) steps, late (\d+) .*p50 ([\d.]+) p99 ([\d.]+) max ([\d.]+) \(step (-?\d+)\); renders (\d+), "
                     r"failed (\d+), last (\d+) ms; send priority (.*)$")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``run_live.py`` subprocess with its log in a temporary folder."""

    def __init__(self, work: Path, tag: str, args: list[str]) -> None:
        self.osc_port = free_port()
        self.log = work / f"{tag}.log"
        self._out = open(self.log, "w")
        cmd = [sys.executable, "run_live.py", "--midi-api", "jack", "--osc-port", str(self.osc_port),
               "--record", str(work / f"{tag}.mid"), "--status", "off", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT)
        self.osc = SimpleUDPClient("127.0.0.1", self.osc_port)

    def wait_started(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while "recording" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> dict:
        """SIGTERM; returns the parsed summary line."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        self._out.close()
        for line in self.log.read_text().splitlines():
            found = SUMMARY.search(line)
            if found:
                g = found.groups()
                return {"steps": int(g[0]), "late": int(g[1]), "p50": float(g[2]), "p99": float(g[3]),
                        "max": float(g[4]), "worst_step": int(g[5]), "renders": int(g[6]), "failed": int(g[7]),
                        "regen_ms": int(g[8]), "priority": g[9]}
        raise RuntimeError(f"no summary line:\n{self.log.read_text()}")


class Sweeper(threading.Thread):
    """Sends brightness (and contrast) as sines at ``rate`` Hz until stopped."""

    def __init__(self, server: Server, rate: float, contrast: bool = False) -> None:
        super().__init__(daemon=True)
        self.server, self.rate, self.contrast = server, rate, contrast
        self.halt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        t0 = time.perf_counter()
        period = 1.0 / self.rate
        k = 0
        while not self.halt.is_set():
            t = time.perf_counter() - t0
            self.server.osc.send_message("/vis2mus/brightness", 0.8 * math.sin(2 * math.pi * t / 7.0))
            if self.contrast:
                self.server.osc.send_message("/vis2mus/contrast", 0.6 * math.sin(2 * math.pi * t / 5.0))
            self.sent += 1
            k += 1
            self.halt.wait(max(0.0, t0 + k * period - time.perf_counter()))


def grid_errors(times: np.ndarray, period_s: float) -> np.ndarray:
    """Arrival minus the least-squares grid ``a + k * period`` (ms), ``k`` from rounding."""
    k = np.round((times - times[0]) / period_s)
    slope, intercept = np.polyfit(k, times, 1)
    return (times - (intercept + slope * k)) * 1000.0


def pct(values: np.ndarray) -> str:
    a = np.abs(values)
    return f"p50 {np.percentile(a, 50):.2f}  p99 {np.percentile(a, 99):.2f}  max {a.max():.2f} ms"


def weights_args(args) -> list[str]:
    return ["--weights", args.weights] if args.weights else []


def swept_run(work: Path, name: str, server_args: list[str], duration: float, rate: float,
              contrast: bool = False) -> tuple[dict, np.ndarray, int]:
    """Run a server into a JACK peer for ``duration`` s while OSC moves the alphas at ``rate`` Hz.

    Returns the server's run summary, the MIDI clock tick arrival times at the peer, and the
    number of OSC sweep messages sent."""
    peer = Peer("bench")
    srv = Server(work, name, ["--midi-port", peer.port, "--clock-out", *server_args])
    srv.wait_started()
    sweep = Sweeper(srv, rate=rate, contrast=contrast)
    sweep.start()
    time.sleep(duration)
    sweep.halt.set()
    summary = srv.stop()
    messages = peer.snapshot()
    peer.close()
    return summary, np.array([t for t, m in messages if m == [0xF8]]), sweep.sent


def splice_step(played: dict[int, list[int]], old: dict[int, list[int]], new: dict[int, list[int]],
                sent_step: int, loop: int) -> int | None:
    """The beat (in steps) where the render ``new`` replaced ``old`` after a change sent at
    ``sent_step``, judged from the steps where the two differ; ``None`` when the notes do not
    decide it. ``old``/``new`` map a loop step to its sorted pitches."""
    window = [s for s in range(sent_step + 1, sent_step + 24) if s in played
              and old.get(s % loop, []) != new.get(s % loop, [])]
    olds = [s for s in window if sorted(played[s]) == old.get(s % loop, [])]
    news = [s for s in window if sorted(played[s]) == new.get(s % loop, [])]
    if not news or (olds and max(olds) > min(news)):
        return None
    return -(-(max(olds) + 1 if olds else sent_step + 1) // 4) * 4


def beat_splices(messages, trials, expected, step_s: float, loop: int
                 ) -> tuple[list[float], list[int], list[float], int]:
    """Where each change of ``trials`` ``[(sent perf_counter, old key, new key)]`` landed at the
    peer (``messages`` with MIDI clock; ``expected`` maps a key to its loop's pitches per step):
    latency ms from sending to the splice beat, beats after the next beat boundary, ms the change
    was sent ahead of that boundary (for each decidable change), and how many were undecidable."""
    first_tick = next(t for t, m in messages if m == [0xF8])
    played = note_steps(messages, first_tick, step_s)
    lat_ms, beats, ahead, unclear = [], [], [], 0
    for sent, old, new in trials:
        sent_step = int((sent - first_tick) / step_s)
        splice = splice_step(played, expected[old], expected[new], sent_step, loop)
        if splice is None:
            unclear += 1
            continue
        next_beat = -(-(sent_step + 1) // 4) * 4
        lat_ms.append((first_tick + splice * step_s - sent) * 1000.0)
        beats.append((splice - next_beat) // 4)
        ahead.append((first_tick + next_beat * step_s - sent) * 1000.0)
    return lat_ms, beats, ahead, unclear


def mode_timing(args, work: Path) -> None:
    summary, ticks, _ = swept_run(work, "timing", ["--bpm", str(args.bpm), "--anchor", args.anchor,
                                                   *weights_args(args)], args.duration, rate=4.0)
    tick_s = 60.0 / args.bpm / 24
    err = grid_errors(ticks, tick_s)
    expected = int(summary["steps"]) * 6
    print(f"[timing] {args.duration:g} s at {args.bpm:g} BPM, brightness moved 4x/s "
          f"({summary['renders']} renders, last {summary['regen_ms']} ms), jackd {'-R' if args.realtime else '--no-realtime'} "
          f"period {args.period} frames = {args.period / 48:.2f} ms")
    print(f"  at the JACK peer (MIDI clock, {len(ticks)} of ~{expected} ticks): error vs ideal grid {pct(err)}")
    print(f"  send thread (deadline -> rtmidi): p50 {summary['p50']:.3f}  p99 {summary['p99']:.3f}  "
          f"max {summary['max']:.3f} ms; late steps {summary['late']}; priority {summary['priority']}")


def mode_latency(args, work: Path) -> None:
    from export import exporter
    from live.app.renderer import Renderer
    from live.control.params import State
    from live.inference.engine import Engine
    from live.texture.anchors import content_pieces, default_anchors
    from live.texture.vis2mus import Vis2Mus

    engine = Engine.from_weights(args.weights, device="cpu", threads=1, log=lambda _: None, exporter=exporter())
    renderer = Renderer(default_anchors(), content_pieces(), Vis2Mus(engine))
    values = [0.0, 0.8, -0.6]
    expected = {}
    for v in values:
        state = State(anchor=args.anchor, alpha_b=v)
        n, sections = renderer(state, list(range(renderer.count(state))))
        expected[v] = {i * 32 + int(o): sorted(int(p) for p in s.accompaniment[s.accompaniment[:, 0] == o, 1])
                       for i, s in enumerate(sections) for o in np.unique(s.accompaniment[:, 0])}
    loop = n * 32
    peer = Peer("bench")
    srv = Server(work, "latency", ["--midi-port", peer.port, "--bpm", str(args.bpm), "--clock-out",
                                   "--anchor", args.anchor, *weights_args(args)])
    srv.wait_started()
    time.sleep(2.0)
    rng = np.random.default_rng(1)
    step_s = 60.0 / args.bpm / 4
    trials = []
    current = 0.0
    for k in range(args.trials):
        target = values[1 + k % 2]
        time.sleep(rng.uniform(0.0, 4 * step_s))
        sent = time.perf_counter()
        srv.osc.send_message("/vis2mus/brightness", target)
        time.sleep(6 * 4 * step_s)
        trials.append((sent, current, target))
        current = target
    summary = srv.stop()
    messages = peer.snapshot()
    peer.close()
    lat_ms, beats, ahead, unclear = beat_splices(messages, trials, expected, step_s, loop)
    lat = np.array(lat_ms)
    print(f"[latency] {len(trials)} brightness jumps at {args.bpm:g} BPM (a beat is {4 * step_s * 1000:.0f} ms); "
          f"{len(lat)} clean switches, {unclear} not decidable from the notes")
    if len(lat):
        print(f"  OSC -> the beat where the new render starts: p50 {np.median(lat):.0f}  max {lat.max():.0f} ms")
        for b, a in zip(beats, ahead):
            print(f"    packet {a:4.0f} ms before the next beat -> landed {'on it' if b == 0 else f'{b} beat(s) later'}")
        print(f"  render time (last, from the server): {summary['regen_ms']} ms")


def write_video(path: Path, anchor: str, seconds: float = 6.0) -> None:
    import cv2

    from live.texture.anchors import default_anchors
    from live.texture.transform import adjust

    image = default_anchors()[anchor].image
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (w, h))
    frames = int(seconds * 30)
    for i in range(frames):
        alpha = 0.7 * math.sin(2 * math.pi * i / frames)
        writer.write(cv2.cvtColor(adjust(image, alpha, -alpha / 2), cv2.COLOR_RGB2BGR))
    writer.release()


def mode_stress(args, work: Path) -> None:
    video = work / "sweep.avi"
    write_video(video, args.anchor)
    summary, ticks, sent = swept_run(work, "stress", ["--bpm", "240", "--anchor", args.anchor, "--video", str(video),
                                                      *weights_args(args)], args.duration, rate=100.0, contrast=True)
    err = grid_errors(ticks, 60.0 / 240 / 24)
    print(f"[stress] {args.duration:g} s at 240 BPM, OSC brightness+contrast at 100 Hz ({sent} pairs), "
          f"30 fps video steering alpha")
    print(f"  late steps (> 2 ms): {summary['late']} of {summary['steps']}; renders {summary['renders']} "
          f"(failed {summary['failed']}); send p99 {summary['p99']:.3f} max {summary['max']:.3f} ms")
    print(f"  at the JACK peer: error vs ideal grid {pct(err)}")


def mode_streams(args, work: Path) -> None:
    best = 0
    for count in args.streams:
        servers, sweeps = [], []
        for i in range(count):
            srv = Server(work, f"stream{count}-{i}", ["--midi-name", f"V2M{i}", "--bpm", str(args.bpm),
                                                      "--anchor", args.anchor, *weights_args(args)])
            servers.append(srv)
        for srv in servers:
            srv.wait_started()
        for srv in servers:
            sweep = Sweeper(srv, rate=10.0)
            sweep.start()
            sweeps.append(sweep)
        time.sleep(args.duration)
        for sweep in sweeps:
            sweep.halt.set()
        summaries = [srv.stop() for srv in servers]
        if args.verbose:
            for i, s in enumerate(summaries):
                print(f"    instance {i}: late {s['late']} of {s['steps']}, send p99 {s['p99']:.3f} max {s['max']:.3f} ms "
                      f"(step {s['worst_step']}), {s['renders']} renders, last {s['regen_ms']} ms")
        late = sum(s["late"] for s in summaries)
        worst = max(s["max"] for s in summaries)
        renders = sum(s["renders"] for s in summaries)
        print(f"[streams] {count} instances x {args.duration:g} s at {args.bpm:g} BPM, 10 Hz sweeps: "
              f"late {late}, worst send lateness {worst:.2f} ms, {renders} renders")
        if late == 0:
            best = count
        else:
            break
    print(f"  largest stream count with no late event: {best}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("timing", "latency", "stress", "streams", "all"))
    p.add_argument("--duration", type=float, default=60.0, help="seconds per run (default 60)")
    p.add_argument("--bpm", type=float, default=120.0)
    p.add_argument("--anchor", default="arpeggios")
    p.add_argument("--weights", default=None, help="weights .pt (default: the shipped weights)")
    p.add_argument("--period", type=int, default=128, help="JACK period in frames at 48 kHz (default 128)")
    p.add_argument("--realtime", action="store_true", help="run jackd -R (realtime) instead of --no-realtime")
    p.add_argument("--verbose", action="store_true", help="per-instance figures in the streams mode")
    p.add_argument("--trials", type=int, default=12, help="brightness jumps in the latency mode")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 4, 8, 16, 24])
    args = p.parse_args(argv)
    modes = ("timing", "latency", "stress", "streams") if args.mode == "all" else (args.mode,)
    with tempfile.TemporaryDirectory() as tmp, JackServer(f"v2mbench{os.getpid()}", period=args.period,
                                                                     realtime=args.realtime):
        for mode in modes:
            globals()[f"mode_{mode}"](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
