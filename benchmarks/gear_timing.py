"""Timing figures of the performer's gear, measured at a JACK MIDI peer (prints figures; asserts nothing).

Each mode starts a private JACK server (dummy driver, no realtime) and ``python run_live.py``
(``benchmarks.live_timing.Server``); a python-rtmidi JACK output ``ctl:out`` in this process plays
the controller/keyboard into ``Vis2Mus in:in``.

- ``cc``: brightness jumps by MIDI CC 20 (the default map) at random moments; for each, ms from
  the CC to the first note at the peer that belongs to the new render, and at which beat boundary
  after the CC it landed (0 = the next beat).
- ``keys``: F# A# C# held below the split at random moments with ``--quantum bar``; ms from the
  keys to the first step whose notes are mostly in F# major, and whether that is the next bar.
- ``offset``: presets with ``midi_offset`` -30, 40 and 150 ms recalled by program change; the
  median shift of the notes' grid phase against offset 0, and its error.
- ``flood``: the server's send-thread lateness for ``--duration`` s without MIDI input, then with
  10 k CC/s (an unmapped CC, so only the input's own cost shows) plus 100 sysex/s of 200 bytes.
- ``link``: ``tests/link_session.py`` inside a network namespace: the phase error of the server's
  notes against a second Link peer's beat grid.

Usage: ``python -m benchmarks.gear_timing all`` (``--trials``, ``--bpm``, ``--period``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rtmidi

from tests.support.jackrig import JackServer, Peer, connect, note_steps, wait_for_port
from tests.support.netns import run_in_netns
from benchmarks.live_timing import ROOT, Server, beat_splices

F_SHARP_MAJOR = {6, 10, 1}


def controller() -> rtmidi.MidiOut:
    out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="ctl")
    out.open_virtual_port("out")
    assert wait_for_port("Vis2Mus in:in") and connect("ctl:out", "Vis2Mus in:in"), "no Vis2Mus in:in"
    return out


def mode_cc(args, work: Path) -> None:
    from export import exporter
    from live.app.renderer import Renderer
    from live.control.params import State
    from live.inference.engine import Engine
    from live.texture.anchors import content_pieces, default_anchors
    from live.texture.vis2mus import Vis2Mus

    engine = Engine.from_weights(None, device="cpu", threads=1, log=lambda _: None, exporter=exporter())
    renderer = Renderer(default_anchors(), content_pieces(), Vis2Mus(engine))
    values = {0: -1.0, 127: 1.0}
    expected = {}
    for cc, alpha in values.items():
        state = State(anchor=args.anchor, alpha_b=alpha)
        n, sections = renderer(state, list(range(renderer.count(state))))
        expected[cc] = {i * 32 + int(o): sorted(int(p) for p in s.accompaniment[s.accompaniment[:, 0] == o, 1])
                        for i, s in enumerate(sections) for o in np.unique(s.accompaniment[:, 0])}
    loop = n * 32
    peer = Peer("bench")
    srv = Server(work, "cc", ["--midi-port", peer.port, "--bpm", str(args.bpm), "--clock-out", "--anchor", args.anchor])
    srv.wait_started()
    ctl = controller()
    ctl.send_message([0xB0, 20, 0])
    time.sleep(3.0)
    rng = np.random.default_rng(2)
    step_s = 60.0 / args.bpm / 4
    trials, current = [], 0
    for k in range(args.trials):
        target = 127 if k % 2 == 0 else 0
        time.sleep(rng.uniform(0.0, 4 * step_s))
        sent = time.perf_counter()
        ctl.send_message([0xB0, 20, target])
        time.sleep(6 * 4 * step_s)
        trials.append((sent, current, target))
        current = target
    srv.stop()
    messages = peer.snapshot()
    peer.close()
    ctl.delete()
    lat, beats, _, unclear = beat_splices(messages, trials, expected, step_s, loop)
    print(f"[cc] {len(trials)} brightness jumps by CC 20 at {args.bpm:g} BPM (a beat is {4 * step_s * 1000:.0f} ms); "
          f"{len(lat)} clean switches, {unclear} not decidable from the notes")
    if lat:
        a = np.array(lat)
        print(f"  CC -> the beat where the new render starts: p50 {np.median(a):.0f}  max {a.max():.0f} ms; "
              f"on the next beat {sum(b == 0 for b in beats)}/{len(beats)}, one beat later {sum(b == 1 for b in beats)}")


def mode_keys(args, work: Path) -> None:
    peer = Peer("bench")
    srv = Server(work, "keys", ["--midi-port", peer.port, "--bpm", str(args.bpm), "--clock-out", "--anchor",
                                args.anchor, "--quantum", "bar", "--chord-hold", "0.2"])
    srv.wait_started()
    ctl = controller()
    time.sleep(3.0)
    rng = np.random.default_rng(3)
    step_s = 60.0 / args.bpm / 4
    pressed = []
    for _ in range(args.trials):
        time.sleep(rng.uniform(0.0, 16 * step_s))
        pressed.append(time.perf_counter())
        for pitch in (42, 46, 49):
            ctl.send_message([0x90, pitch, 90])
        time.sleep(3 * 16 * step_s)
        for pitch in (42, 46, 49):
            ctl.send_message([0x80, pitch, 0])
        time.sleep(3 * 16 * step_s)
    srv.stop()
    messages = peer.snapshot()
    peer.close()
    ctl.delete()
    first_tick = next(t for t, m in messages if m == [0xF8])
    played = note_steps(messages, first_tick, step_s)
    lat, bars, missed = [], [], 0
    for t in pressed:
        sent_step = int((t - first_tick) / step_s)
        hit = [s for s in range(sent_step + 1, sent_step + 48) if s in played
               and np.mean([p % 12 in F_SHARP_MAJOR for p in played[s]]) >= 0.75]
        if not hit:
            missed += 1
            continue
        next_bar = -(-(sent_step + 1) // 16) * 16
        lat.append((first_tick + hit[0] * step_s - t) * 1000.0)
        bars.append((hit[0] - next_bar) // 16)
    print(f"[keys] {len(pressed)} F# major chords held at {args.bpm:g} BPM, quantum bar (a bar is "
          f"{16 * step_s * 1000:.0f} ms); {missed} without an F#-major step within 3 bars")
    if lat:
        a = np.array(lat)
        print(f"  keys -> first re-harmonised step: p50 {np.median(a):.0f}  max {a.max():.0f} ms; in the next bar "
              f"{sum(b == 0 for b in bars)}/{len(bars)}, one bar later {sum(b == 1 for b in bars)}")


def mode_offset(args, work: Path) -> None:
    offsets = (0.0, -30.0, 40.0, 150.0)
    config = work / "offsets.toml"
    config.write_text("".join(f'[presets.{i}]\nanchor = "{args.anchor}"\nmidi_offset = {o}\n\n'
                              for i, o in enumerate(offsets)))
    peer = Peer("bench")
    srv = Server(work, "offset", ["--midi-port", peer.port, "--bpm", str(args.bpm), "--anchor", args.anchor,
                                  "--config", str(config)])
    srv.wait_started()
    ctl = controller()
    step_s = 60.0 / args.bpm / 4
    spans = []
    for i in range(len(offsets)):
        ctl.send_message([0xC0, i])
        start = time.perf_counter() + 1.0
        time.sleep(1.0 + 48 * step_s)
        spans.append((start, time.perf_counter()))
    srv.stop()
    ons = np.array([t for t, m in peer.snapshot() if len(m) == 3 and m[0] & 0xF0 == 0x90 and m[2] > 0])
    peer.close()
    ctl.delete()
    origin = ons[0]

    def phase(lo: float, hi: float) -> float:
        times = ons[(ons >= lo) & (ons < hi)]
        wrapped = (times - origin + step_s / 2) % step_s - step_s / 2
        return float(np.median(wrapped) * 1000.0)

    base = phase(*spans[0])
    print(f"[offset] presets recalled by program change at {args.bpm:g} BPM; median note phase vs offset 0 "
          f"(JACK period {args.period / 48:.2f} ms)")
    step_ms = step_s * 1000.0
    for offset, span in zip(offsets[1:], spans[1:]):
        error = (phase(*span) - base - offset + step_ms / 2) % step_ms - step_ms / 2  # phases wrap at a step
        print(f"  midi_offset {offset:+5.0f} ms: measured {offset + error:+7.2f} ms (error {error:+.2f} ms)")


def mode_flood(args, work: Path) -> None:
    results = {}
    for flood in (False, True):
        peer = Peer("bench")
        srv = Server(work, f"flood{int(flood)}", ["--midi-port", peer.port, "--bpm", str(args.bpm), "--anchor",
                                                 args.anchor])
        srv.wait_started()
        ctl = controller()
        t0 = time.perf_counter()
        sent = 0
        while time.perf_counter() < t0 + args.duration:
            if flood:
                for _ in range(100):
                    ctl.send_message([0xB0, 90, sent % 128])
                    sent += 1
                ctl.send_message([0xF0] + [0x11] * 200 + [0xF7])
            time.sleep(0.01)
        summary = srv.stop()
        lines = sum("MIDI in:" in line for line in srv.log.read_text().splitlines())
        notes = len(peer.note_ons())
        peer.close()
        ctl.delete()
        results[flood] = (summary, sent / args.duration, lines, notes)
    print(f"[flood] {args.duration:g} s at {args.bpm:g} BPM each; send-thread lateness (deadline -> rtmidi call)")
    for flood, (s, rate, lines, notes) in results.items():
        what = f"{rate:,.0f} CC/s + 100 sysex/s" if flood else "no MIDI input"
        print(f"  {what:>28}: p50 {s['p50']:.3f}  p99 {s['p99']:.3f}  max {s['max']:.3f} ms, late {s['late']} of "
              f"{s['steps']} steps, {notes} notes at the peer, {lines} 'MIDI in:' log lines")


def mode_link(args, work: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("JACK_DEFAULT_SERVER", None)
    done = run_in_netns("tests/link_session.py", str(work / "link.log"), str(args.period), cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        print(f"[link] not measured: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        return
    result = json.loads(done.stdout.strip().splitlines()[-1])
    phase = result["phase_ms"]
    print(f"[link] {phase['count']} notes at 100 BPM against a second Link peer's grid (network namespace): "
          f"median {phase['median']:+.2f} ms, p99 |error - median| {phase['p99_abs_from_median']:.2f} ms; "
          f"tempo followed {result['server_follows_tempo']}, start/stop followed "
          f"{result['silent_when_stopped'] and result['plays_again']}, OSC tempo sent {result['session_follows_osc_tempo']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("cc", "keys", "offset", "flood", "link", "all"))
    p.add_argument("--bpm", type=float, default=120.0)
    p.add_argument("--anchor", default="block_chords")
    p.add_argument("--period", type=int, default=128, help="JACK period in frames at 48 kHz (default 128)")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--duration", type=float, default=20.0, help="seconds per run in the flood mode")
    args = p.parse_args(argv)
    modes = ("cc", "keys", "offset", "flood", "link") if args.mode == "all" else (args.mode,)
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            if mode == "link":
                mode_link(args, Path(tmp))
                continue
            with JackServer(f"v2mgear{os.getpid()}", period=args.period):
                globals()[f"mode_{mode}"](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
