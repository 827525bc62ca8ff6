"""vis2mus-live: the long-running performance server (``python run_live.py`` or ``vis2mus-live``).

``Performance`` wires the parts: performance state (``live.control.params``), OSC input (``live.control.osc``),
optional camera/video/image source (``live.control.camera``), engine + ``live.texture.vis2mus`` renders on the
inference worker, the send thread (``live.playback.scheduler``) on a ``live.playback.clock`` clock, MIDI out
(``live.playback.midiout``) and the recording (``live.playback.recorder``). Rendering runs in a child process
(``RenderProcess``) so that the send thread never waits for a GIL held by inference. The main
thread only shows the status line, sends beat feedback, flushes the recording at each bar and
watches the MIDI port.
SIGINT/SIGTERM: all notes off + CC 123, recording closed, exit 0.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from live.music.notes import empty_notes
from live.playback.clock import Clock, ExternalClock
from live.playback.midiout import MidiOut
from live.playback.recorder import Recorder
from live.playback.scheduler import LATE_S, Regenerator, Scheduler, Section, follow_velocities

GIL_SWITCH_S = 0.0005
TICK_S = 0.05
PORT_CHECK_S = 0.5
STATUS_EVERY_S = 5.0
RENDER_NICE = 5
WARM_UP_ALPHA = 0.5
START_DELAY_S = 0.3  # lets a freshly made MIDI connection settle before beat 0


def log(line: str) -> None:
    """One line on stderr, prefixed ``vis2mus:``."""
    print(f"vis2mus: {line}", file=sys.stderr, flush=True)


def render_key(state) -> tuple:
    """The fields whose change re-renders the loop."""
    return (round(state.alpha_b, 4), round(state.alpha_c, 4), state.anchor, state.content, state.chords)


def panic_key(state) -> tuple:
    """The fields whose change also sends all notes off (a different piece)."""
    return (state.anchor, state.content)


class Renderer:
    """Renders loop sections for a performance state: ``Vis2Mus`` when an engine is loaded, else
    the anchors' own notes (the performance goes on without regeneration)."""

    def __init__(self, anchors: dict, contents: dict, vis2mus=None, follow_velocity: bool = False) -> None:
        self.anchors = anchors
        self.contents = contents
        self.vis2mus = vis2mus
        self.follow_velocity = follow_velocity
        self._warmed: set[str] = set()

    def warm_one(self) -> bool:
        """Do the load-time work of feel mode (``Vis2Mus.feel``) for one anchor that has not had it
        yet, so the first render after an anchor switch does not pay for it; False when none is
        left (or without feel mode). An anchor that fails is logged once and left to its render."""
        if self.vis2mus is None or getattr(self.vis2mus, "mode", "paper") != "feel":
            return False
        for anchor in list(self.anchors.values()):
            if anchor.digest in self._warmed:
                continue
            self._warmed.add(anchor.digest)
            try:
                self.vis2mus.feel(anchor)
            except Exception as exc:  # a bad anchor: its own render reports it again
                log(f"anchor {anchor.name}: cannot prepare feel mode ({type(exc).__name__}: {exc})")
            return True
        return False

    def count(self, state) -> int:
        """Loop length in segments under ``state``."""
        piece = self.contents[state.content] if state.content else self.anchors[state.anchor]
        return int(piece.n_segments)

    def __call__(self, state, indices: list[int]) -> tuple[int, list[Section]]:
        anchor = self.anchors[state.anchor]
        content = self.contents[state.content] if state.content else None
        n_segments = self.count(state)
        if not indices:
            return n_segments, []
        if self.vis2mus is None:
            piece = content or anchor
            sections = [Section(piece.segment("accompaniment", i),
                                piece.segment("melody", i) if content is not None else empty_notes())
                        for i in indices]
        else:
            from live.music.chords import progression_rows

            chords = progression_rows(state.chords, n_segments * 8) if state.chords else None
            rendered = self.vis2mus.render(anchor, state.alpha_b, state.alpha_c, list(indices),
                                           chords=chords, content=content)
            sections = [Section(seg.accompaniment, seg.melody) for seg in rendered]
        if self.follow_velocity and getattr(self.vis2mus, "mode", "paper") == "paper":
            sections = [Section(follow_velocities(s.accompaniment, anchor.segment("accompaniment", i % anchor.n_segments)),
                                s.melody) for s, i in zip(sections, indices)]
        return n_segments, sections


def load_renderer(settings, anchors: dict, contents: dict) -> tuple[Renderer, str]:
    """A ``Renderer`` on the engine of ``settings.weights`` and a one-line engine description; when
    the weights are missing or corrupt, one line says so and the anchors play as they are."""
    try:
        from export import exporter
        from live.inference.engine import Engine
        from live.texture.vis2mus import Vis2Mus

        engine = Engine.from_weights(settings.weights, device=settings.device, threads=settings.threads, log=log,
                                     exporter=exporter())
        vis2mus = Vis2Mus(engine, mode=settings.mode, register=settings.register)
        note = f"{engine.provider}, {settings.mode} mode"
    except Exception as exc:  # missing/corrupt weights or an ONNX failure: play on without regeneration
        line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"no regeneration ({line}); playing the anchors as they are")
        vis2mus, note = None, f"off ({line})"
    return Renderer(anchors, contents, vis2mus, settings.follow_velocity), note


def _render_main(conn, settings) -> None:
    """Child process: load the engine, then answer ``("render", state, indices)`` until ``quit``."""
    from live.texture.anchors import content_pieces, default_anchors

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # lowering our own priority only fails on exotic systems
        os.nice(RENDER_NICE)
    renderer, note = load_renderer(settings, default_anchors(), content_pieces())
    conn.send(("ready", note))
    while True:
        while not conn.poll() and renderer.warm_one():
            pass
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] != "render":
            return
        _, state, indices = message
        try:
            conn.send(("ok", renderer(state, indices)))
        except Exception as exc:  # reported to the worker thread, which keeps the current loop
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class RenderProcess:
    """Renders in a child process, so inference never holds the send thread's GIL (a descheduled
    GIL holder on a busy machine would delay the send thread by whole time slices).

    Callable like ``Renderer``: ``(state, indices) -> (n_segments, [Section])``; ``note`` describes
    the engine. One request at a time. A child that died (killed, crashed) is restarted and the
    request sent again; if that fails too, the call raises and the worker keeps the current loop.
    """

    def __init__(self, settings, count, log=None) -> None:
        self._settings = settings
        self._log = log or (lambda line: print(f"vis2mus: {line}", file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self.count = count
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_render_main, args=(child, self._settings), name="vis2mus-render",
                                 daemon=True)
        self._proc.start()
        child.close()
        kind, self.note = self._conn.recv()

    def __call__(self, state, indices: list[int]) -> tuple[int, list[Section]]:
        with self._lock:
            try:
                kind, payload = self._request(state, indices)
            except (EOFError, OSError):
                self._log(f"render process exited (code {self._proc.exitcode}); restarting it")
                self._conn.close()
                self._start()
                kind, payload = self._request(state, indices)
        if kind != "ok":
            raise RuntimeError(payload)
        return payload

    def _request(self, state, indices: list[int]) -> tuple[str, object]:
        self._conn.send(("render", state, list(indices)))
        return self._conn.recv()

    def close(self) -> None:
        try:
            self._conn.send(("quit",))
        except OSError:
            pass
        self._proc.join(timeout=2.0)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=2.0)
        self._conn.close()


class StatusLine:
    """The live status line on stderr (``mode`` ``line``): rewritten in place on a TTY, a periodic
    line otherwise; ``log`` always prints periodic lines; ``off`` prints nothing."""

    def __init__(self, mode: str = "line", stream=sys.stderr) -> None:
        self.stream = stream
        self.mode = mode
        self.tty = mode == "line" and stream.isatty()
        self._last = 0.0

    def show(self, text: str) -> None:
        now = time.monotonic()
        if self.mode == "off":
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
        elif now - self._last >= STATUS_EVERY_S:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last = now

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


class Performance:
    """A running performance built from ``settings`` (``live.app.config.Settings``); see the module
    docstring. ``run()`` blocks until ``stop()`` (or SIGINT/SIGTERM via ``main``)."""

    def __init__(self, settings) -> None:
        from live.app.config import build_params
        from live.texture.anchors import content_pieces, default_anchors

        self.settings = settings
        self._stop = threading.Event()
        self.anchors = default_anchors()
        self.contents = content_pieces()
        self.params = build_params(settings, list(self.anchors), list(self.contents))
        state = self.params.snapshot()
        self.renderer = RenderProcess(settings, Renderer(self.anchors, self.contents).count)
        self.engine_note = self.renderer.note
        t0 = time.perf_counter()
        n_segments, sections = self.renderer(state, list(range(self.renderer.count(state))))
        self.first_render_ms = (time.perf_counter() - t0) * 1000.0
        self.record_path = Path(settings.record) if settings.record and not settings.no_record else None
        self.recorder = Recorder(self.record_path, bpm=state.tempo) if self.record_path else None
        self.midi = MidiOut(api=settings.midi_api, port=settings.midi_port, name=settings.midi_name,
                            recorder=self.recorder, log=log)
        self.clock = Clock(state.tempo)
        self.external = None
        if settings.clock_in:
            try:
                self.external = ExternalClock(self.clock, settings.clock_in, settings.midi_api,
                                              on_transport=self._external_transport)
            except RuntimeError as exc:
                log(f"{exc}; using the internal clock at {state.tempo:g} BPM")
        self.scheduler = Scheduler(self.clock, self.midi, sections, recorder=self.recorder,
                                   quantum=state.quantum, max_note_steps=round(settings.max_note * 4),
                                   velocity=state.velocity, follow_velocity=settings.follow_velocity,
                                   clock_out=settings.clock_out)
        self.regenerator = Regenerator(self.scheduler, self.renderer, self.renderer.count,
                                       render_key, panic_key, log=log)
        self.regen_ms = self._warm_up(state, n_segments)
        self.regenerator.last_ms = self.regen_ms
        self.params.subscribe(self._on_change)
        self.params.on_action("play", lambda s: self.play())
        self.params.on_action("stop", lambda s: self.pause())
        self.params.on_action("panic", lambda s: self.scheduler.panic())
        self.osc = self._make_osc()
        self.camera = self._make_camera()

    # Start-up helpers

    def _warm_up(self, state, n_segments: int) -> float:
        """Time one real regeneration (current + next segment, brightness 0.5): the figure the
        start-up screen shows; it also warms the engine up. Its result is thrown away."""
        t0 = time.perf_counter()
        try:
            self.renderer(replace(state, alpha_b=WARM_UP_ALPHA), list(range(min(2, n_segments))))
        except Exception as exc:  # reported, the anchors still play
            log(f"warm-up render failed: {exc}")
        return (time.perf_counter() - t0) * 1000.0

    def _make_osc(self):
        from live.control.osc import OscServer

        s = self.settings
        try:
            return OscServer(self.params, host=s.osc_host, port=s.osc_port, allow=s.osc_allow,
                             reply=s.osc_reply)
        except OSError as exc:
            log(f"{exc}; running without OSC input")
            return None

    def _make_camera(self):
        s = self.settings
        if s.camera is None and s.video is None and s.image is None:
            return None
        from live.control.camera import CameraSource

        return CameraSource.from_settings(self.params, self.anchors, s)

    # Reactions (called from OSC/camera threads)

    def _on_change(self, state, changed: frozenset) -> None:
        if "tempo" in changed and self.external is None:
            self.clock.set_bpm(state.tempo)
            if self.recorder is not None:
                self.recorder.set_tempo(state.tempo)
        if "quantum" in changed:
            self.scheduler.quantum = state.quantum
        if "velocity" in changed:
            self.scheduler.velocity = state.velocity
        self.regenerator.submit(state)

    def _external_transport(self, kind: str) -> None:
        self.params.set_playing(kind != "stop")
        if kind == "stop":
            self.scheduler.panic()

    def play(self) -> None:
        """Start the transport from the next beat (or follow the external clock)."""
        if self.external is None and not self.clock.running:
            self.scheduler.transport("start")
            self.clock.start(beat=float(np.ceil(self.clock.beat())))

    def pause(self) -> None:
        """Stop the transport; all notes off."""
        if self.external is None:
            self.clock.stop()
        self.scheduler.transport("stop")
        self.scheduler.panic()

    # Running

    def banner(self) -> str:
        s = self.settings
        state = self.params.snapshot()
        osc = (f"{self.osc.address[0]}:{self.osc.address[1]}" if self.osc else "off")
        reply = f"{s.osc_reply[0]}:{s.osc_reply[1]}" if s.osc_reply else "to each sender"
        clock = (f"following MIDI clock on {s.clock_in!r}" if self.external else f"internal {state.tempo:g} BPM")
        lines = [
            "vis2mus-live",
            f"  OSC        {osc} (replies {reply}); send /vis2mus/brightness f, /vis2mus/contrast f, ...",
            f"  MIDI out   {self.midi.description}; melody ch 1, accompaniment ch 2",
            f"  clock      {clock}; MIDI clock out {'on' if s.clock_out else 'off'}; quantum {state.quantum}",
            f"  anchor     {state.anchor} ({self.renderer.count(state)} segments); anchors: {', '.join(self.anchors)}",
            f"  engine     {self.engine_note}",
            f"  regen      {self.regen_ms:.0f} ms for 2 segments (first loop {self.first_render_ms:.0f} ms)",
            f"  alpha      {self._alpha_source()}",
            f"  recording  {self.record_path if self.record_path else 'off'}",
        ]
        return "\n".join(lines)

    def _alpha_source(self) -> str:
        s = self.settings
        if self.camera is None:
            return "OSC faders"
        spec = s.video if s.video is not None else s.image if s.image is not None else f"camera {s.camera}"
        return f"{spec} (switch with /vis2mus/source osc|camera)"

    def status(self) -> str:
        state = self.params.snapshot()
        beat = max(0, self.scheduler.next_step - 1) // 4
        mode = f"{state.content}->{state.anchor}" if state.content else state.anchor
        play = "" if self.clock.running else " [stopped]"
        source = f"  {state.source}" + (f" ({self.camera.status})" if self.camera is not None else "")
        return (f"{beat // 4 + 1}:{beat % 4 + 1}{play}  b={state.alpha_b:+.2f} c={state.alpha_c:+.2f}  "
                f"{mode}{source}  regen {self.regenerator.last_ms:.0f} ms  late {self.scheduler.late}")

    def run(self) -> None:
        """Start the threads and the clock; serve until ``stop()``."""
        print(self.banner(), file=sys.stderr, flush=True)
        status = StatusLine(mode=self.settings.status)
        if self.osc is not None:
            self.osc.start()
        if self.camera is not None:
            self.camera.start()
        self.scheduler.start()
        self.regenerator.start(self.params.snapshot())
        if self.external is None:
            self.scheduler.transport("start")
            self.clock.start(beat=0.0, at=time.perf_counter() + START_DELAY_S)
        last_bar = -1
        next_check = time.monotonic() + PORT_CHECK_S
        try:
            while not self._stop.wait(TICK_S):
                while not self.scheduler.beats.empty():
                    bar, beat = self.scheduler.beats.get()
                    if self.osc is not None:
                        self.osc.send_beat(bar, beat)
                    if bar != last_bar and self.recorder is not None:
                        self.recorder.flush()
                    last_bar = bar
                if time.monotonic() >= next_check:
                    self.midi.check()
                    next_check = time.monotonic() + PORT_CHECK_S
                status.show(self.status())
        finally:
            status.end()
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """All notes off + CC 123, threads stopped, recording closed."""
        if self.osc is not None:
            self.osc.stop()
        if self.camera is not None:
            self.camera.stop()
        self.regenerator.stop()
        self.scheduler.shutdown()
        self.renderer.close()
        if self.external is not None:
            self.external.close()
        self.midi.close()
        if self.recorder is not None:
            self.recorder.close()
            log(f"recording closed: {self.record_path} ({self.recorder.events} events)")
        log(self.summary())

    def summary(self) -> str:
        """One line of timing figures for the whole run."""
        sch, regen = self.scheduler, self.regenerator
        lateness = np.array(sch.lateness) * 1000.0
        if len(lateness) == 0:
            return "played no steps"
        p50, p99, worst = np.percentile(lateness, [50, 99, 100])
        return (f"played {sch.steps} steps, late {sch.late} (>{LATE_S * 1000:g} ms); send lateness ms "
                f"p50 {p50:.3f} p99 {p99:.3f} max {worst:.3f} (step {sch.worst[1]}); renders {regen.renders}, "
                f"failed {regen.errors}, last {regen.last_ms:.0f} ms; send priority {sch.priority}")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: parse the options (``live.app.config``), run until SIGINT/SIGTERM, exit 0."""
    from live.app.config import load_settings

    settings = load_settings(argv)
    sys.setswitchinterval(GIL_SWITCH_S)
    try:
        performance = Performance(settings)
    except Exception as exc:
        log(f"cannot start: {exc}")
        return 1

    def on_signal(signum, _frame) -> None:
        performance.stop()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    performance.run()
    return 0
