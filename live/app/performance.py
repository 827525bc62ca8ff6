"""``Performance``: the parts of a running performance wired together.

The anchors (``live.texture.library``: shipped, ``--anchor`` folders, ``--anchors`` directories,
re-scanned at every bar on a thread of their own), performance state (``live.control.params``),
OSC input (``live.control.osc``), the optional
camera/video/image source (``live.control.camera``), renders in the render child
(``live.app.render_child``), the send thread (``live.playback.scheduler``) on a
``live.playback.clock`` clock, MIDI out (``live.playback.midiout``) and the recording
(``live.playback.recorder``). The main thread only shows the status line, sends beat feedback,
flushes the recording and pokes the anchor re-scan at each bar (every half second while
stopped) and watches the MIDI port.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from live.app.render_child import RenderProcess
from live.app.renderer import Renderer, panic_key, render_key
from live.app.status import StatusLine
from live.app.terminal import TerminalKeys
from live.music.notes import BEATS_PER_BAR, STEPS_PER_BEAT
from live.playback.clock import Clock, ExternalClock
from live.playback.midiout import MidiOut
from live.playback.recorder import Recorder, reason
from live.playback.scheduler import LATE_S, VERY_LATE_S, Regenerator, Scheduler

TICK_S = 0.05
PORT_CHECK_S = 0.5
WARM_UP_ALPHA = 0.5
START_DELAY_S = 0.3  # lets a freshly made MIDI connection settle before beat 0

log = logging.getLogger(__name__)


class Performance:
    """A performance built from ``settings`` (``live.app.config.Settings``). ``__init__`` only
    loads the anchors and builds the state; ``open()`` starts the render child, renders the first
    loop and opens the ports; ``run()`` (which opens first if needed) blocks until ``stop()``;
    ``shutdown()`` closes whatever was opened."""

    def __init__(self, settings) -> None:
        from live.app.config import build_params
        from live.texture.library import Library

        self.settings = settings
        self._stop = threading.Event()
        self.library = Library.from_values(settings.anchor, settings.anchors, log=log.warning)
        self.anchors, self.contents = self.library.anchors, self.library.contents
        settings = self.settings = self._without_failed_presets(settings)
        self.params = build_params(settings, list(self.anchors), list(self.contents),
                                   start=self.library.start_anchor(settings.anchor))
        self._counter = Renderer(self.anchors, self.contents)
        self.rescanner = None
        self.record_path = Path(settings.record) if settings.record and not settings.no_record else None
        self.renderer: RenderProcess | None = None
        self.recorder: Recorder | None = None
        self.midi: MidiOut | None = None
        self.clock: Clock | None = None
        self.external: ExternalClock | None = None
        self.scheduler: Scheduler | None = None
        self.regenerator: Regenerator | None = None
        self.osc = None
        self.camera = None
        self.midi_in = None
        self.oscquery = None
        self.link = None
        self.keys = None
        self.engine_note = ""
        self.first_render_ms = self.regen_ms = 0.0

    # Opening

    def open(self) -> "Performance":
        """Start the render child, render the first loop, open MIDI/OSC/camera; returns ``self``."""
        settings = self.settings
        state = self.params.snapshot()
        self.renderer = RenderProcess(settings, self._counter.count, self.anchors, self.contents)
        self.renderer.start()
        self.engine_note = self.renderer.note
        t0 = time.perf_counter()
        n_segments, sections = self.renderer(state, list(range(self.renderer.count(state))))
        self.first_render_ms = (time.perf_counter() - t0) * 1000.0
        self.recorder = self._make_recorder(state.tempo)
        self.midi = MidiOut(api=settings.midi_api, port=settings.midi_port, name=settings.midi_name,
                            recorder=self.recorder)
        self.clock = Clock(state.tempo)
        if settings.clock_in:
            try:
                self.external = ExternalClock(self.clock, settings.clock_in, settings.midi_api,
                                              on_transport=self._external_transport)
            except RuntimeError as exc:
                log.warning("%s; using the internal clock at %g BPM", exc, state.tempo)
        self.link = self._make_link(state)
        self.scheduler = Scheduler(self.clock, self.midi, sections, recorder=self.recorder,
                                   quantum=state.quantum, max_note_steps=round(settings.max_note * STEPS_PER_BEAT),
                                   velocity=state.velocity, follow_velocity=settings.follow_velocity,
                                   clock_out=settings.clock_out, melody_channel=settings.melody_channel - 1,
                                   accompaniment_channel=settings.accompaniment_channel - 1,
                                   offset_s=state.midi_offset / 1000.0)
        self.regenerator = Regenerator(self.scheduler, self.renderer, self.renderer.count,
                                       render_key, panic_key)
        self.regen_ms = self._warm_up(state, n_segments)
        self.regenerator.last_ms = self.regen_ms
        self.params.subscribe(self._on_change)
        self.params.on_action("play", lambda s: self.play())
        self.params.on_action("stop", lambda s: self.pause())
        self.params.on_action("panic", lambda s: self.scheduler.panic())
        self.midi_in = self._make_midi_in()
        self.osc = self._make_osc()
        self.oscquery = self._make_oscquery()
        self.camera = self._make_camera()
        if self.library.watched:
            from live.texture.library import Rescanner

            self.rescanner = Rescanner(self.library, self._on_library, log=log.warning)
        return self

    def _make_recorder(self, bpm: float) -> Recorder | None:
        if self.record_path is None:
            return None
        try:
            return Recorder(self.record_path, bpm=bpm)
        except OSError as exc:
            log.warning("recording off: cannot write %s: %s", self.record_path, reason(exc))
            self.record_path = None
            return None

    def _without_failed_presets(self, settings):
        """``settings`` less the presets that name an anchor folder that did not load (one line each)."""
        failed = self.library.failed
        keep = {}
        for number, preset in settings.presets.items():
            missing = next((n for n in (preset.anchor, preset.content) if n in failed), None)
            if missing is None:
                keep[number] = preset
            else:
                log.warning("preset %d names anchor %r, which did not load; preset %d left out", number, missing,
                            number)
        return settings if len(keep) == len(settings.presets) else replace(settings, presets=keep)

    def _warm_up(self, state, n_segments: int) -> float:
        """Time one real regeneration (current + next segment, brightness 0.5): the figure the
        start-up screen shows. A first, untimed call warms the engine up and does the anchor's
        load-time work (feel mode); the results are thrown away."""
        warm = replace(state, alpha_b=WARM_UP_ALPHA)
        indices = list(range(min(2, n_segments)))
        try:
            self.renderer(warm, indices)
            t0 = time.perf_counter()
            self.renderer(warm, indices)
            return (time.perf_counter() - t0) * 1000.0
        except Exception as exc:  # reported, the anchors still play
            log.warning("warm-up render failed: %s", exc)
            return 0.0

    def _make_link(self, state):
        if not self.settings.link:
            return None
        if self.external is not None:
            log.warning("--link ignored: following MIDI clock from --clock-in")
            return None
        from live.playback.link import LinkSync, available

        reason = available()
        if reason is not None:
            log.warning("%s; using the internal clock", reason)
            return None
        return LinkSync(self.clock, state.tempo, on_tempo=self._link_tempo, on_transport=self._link_transport)

    def _link_tempo(self, bpm: float) -> None:
        self.params.set_tempo(bpm)

    def _link_transport(self, kind: str) -> None:
        if kind == "start":
            self.params.play()
        else:
            self.params.stop()

    def _make_midi_in(self):
        from live.control.midiin import MidiIn
        from live.control.midimap import DEFAULT_MAP

        s = self.settings
        if s.no_midi_in:
            return None
        midi_in = MidiIn(self.params, api=s.midi_api, port=s.midi_in, name=s.midi_name,
                         bindings=DEFAULT_MAP if s.midi_map is None else s.midi_map,
                         chord_channel=None if s.chord_channel is None else s.chord_channel - 1,
                         chord_split=s.chord_split, chord_hold=s.chord_hold,
                         thru_channel=None if s.thru_channel is None else s.thru_channel - 1, thru=self._thru)
        midi_in.open()
        return midi_in

    def _thru(self, message: list[int]) -> None:
        """A note of the played melody, out unchanged (tracked, so panic and shutdown end it)."""
        channel, pitch = message[0] & 0x0F, message[1]
        if message[0] & 0xF0 == 0x90 and message[2] > 0:
            self.midi.note_on(channel, pitch, message[2])
        else:
            self.midi.note_off(channel, pitch)

    def _learn(self, values: list) -> None:
        if self.midi_in is None:
            raise ValueError("MIDI input is off (--no-midi-in)")
        self.midi_in.learn(values[0])

    def _learn_save(self, values: list) -> None:
        if self.midi_in is None:
            raise ValueError("MIDI input is off (--no-midi-in)")
        self.midi_in.save(self.settings.config)

    def _on_key(self, key: str) -> None:
        """``l``: arm MIDI learn for the next control in turn; ``s``: save the CC map."""
        from live.control.midimap import MAPPABLE

        if self.midi_in is None:
            return
        try:
            if key == "l":
                current = self.midi_in.learning
                self.midi_in.learn(MAPPABLE[(MAPPABLE.index(current) + 1) % len(MAPPABLE) if current else 0])
            elif key == "s":
                self.midi_in.save(self.settings.config)
        except ValueError as exc:
            log.warning("%s", exc)

    def _make_osc(self):
        from live.control.osc import OscServer
        from live.control.oscspace import PREFIX

        s = self.settings
        try:
            return OscServer(self.params, host=s.osc_host, port=s.osc_port, allow=s.osc_allow,
                             reply=s.osc_reply, extra={f"{PREFIX}/learn": self._learn,
                                                       f"{PREFIX}/learn/save": self._learn_save})
        except OSError as exc:
            log.warning("%s; running without OSC input", exc)
            return None

    def _make_oscquery(self):
        s = self.settings
        if s.oscquery is None:
            return None
        from live.control.oscquery import OscQueryServer

        try:
            return OscQueryServer(self.params, osc_port=self.osc.address[1] if self.osc else s.osc_port,
                                  host=s.oscquery_host, port=s.oscquery, osc_host=s.osc_host)
        except OSError as exc:
            log.warning("%s; running without OSCQuery", exc)
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
            if self.link is not None:
                self.link.set_tempo(state.tempo)
        if "quantum" in changed:
            self.scheduler.quantum = state.quantum
        if "velocity" in changed:
            self.scheduler.velocity = state.velocity
        if "midi_offset" in changed:
            self.scheduler.offset_s = state.midi_offset / 1000.0
        self.regenerator.submit(state)

    def _on_library(self, library) -> None:
        """A re-scan changed the anchors (rescanner thread): the renderers first, then the state."""
        self.renderer.set_anchors(library.anchors, library.contents)
        self._counter.anchors, self._counter.contents = library.anchors, library.contents
        self.anchors, self.contents = library.anchors, library.contents
        if self.camera is not None:
            self.camera.anchors = library.anchors
        update = self.params.set_library(list(library.anchors), list(library.contents), library.reloaded)
        if update.note:
            log.warning("%s", update.note)
        log.warning("anchors now: %s", ", ".join(f"{i} {name}" for i, name in enumerate(library.anchors)))

    def _external_transport(self, kind: str) -> None:
        self.params.set_playing(kind != "stop")
        if kind == "stop":
            self.scheduler.panic()

    def play(self) -> None:
        """Start the transport from the next beat (in phase with a Link session; or follow the
        external clock)."""
        if self.external is None and not self.clock.running:
            self.scheduler.transport("start")
            if self.link is not None:
                now = time.perf_counter()
                self.clock.start(beat=self.link.phase_start(now), at=now)
                self.link.set_playing(True)
            else:
                self.clock.start(beat=float(np.ceil(self.clock.beat())))

    def pause(self) -> None:
        """Stop the transport; all notes off."""
        if self.external is None:
            self.clock.stop()
        if self.link is not None:
            self.link.set_playing(False)
        self.scheduler.transport("stop")
        self.scheduler.panic()

    # Running

    def banner(self) -> str:
        s = self.settings
        state = self.params.snapshot()
        osc = (f"{self.osc.address[0]}:{self.osc.address[1]}" if self.osc else "off")
        reply = f"{s.osc_reply[0]}:{s.osc_reply[1]}" if s.osc_reply else "to each sender"
        clock = (f"following MIDI clock on {s.clock_in!r}" if self.external else
                 f"Ableton Link ({self.link.peers} peers), {state.tempo:g} BPM" if self.link else
                 f"internal {state.tempo:g} BPM")
        lines = [
            "vis2mus-live",
            f"  OSC        {osc} (replies {reply}); send /vis2mus/brightness f, /vis2mus/contrast f, ...",
            f"  MIDI out   {self.midi.description}; melody ch {s.melody_channel}, accompaniment ch "
            f"{s.accompaniment_channel}; offset {state.midi_offset:+g} ms",
            f"  MIDI in    {self.midi_in.description if self.midi_in else 'off'}"
            f"{'; CC map from ' + s.config if s.midi_map is not None else '; default CC map (CC 20-27 faders)'}",
            f"  OSCQuery   {'http://%s:%d/' % self.oscquery.address if self.oscquery else 'off'}",
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
        beat = max(0, self.scheduler.next_step - 1) // STEPS_PER_BEAT
        mode = f"{state.content}->{state.anchor}" if state.content else state.anchor
        play = "" if self.clock.running else " [stopped]"
        source = f"  {state.source}" + (f" ({self.camera.status})" if self.camera is not None else "")
        keys = f"  {self.midi_in.status}" if self.midi_in is not None and self.midi_in.status else ""
        return (f"{beat // BEATS_PER_BAR + 1}:{beat % BEATS_PER_BAR + 1}{play}  b={state.alpha_b:+.2f} "
                f"c={state.alpha_c:+.2f}  {mode}{source}{keys}  regen {self.regenerator.last_ms:.0f} ms  "
                f"late {self.scheduler.late}")

    def run(self) -> None:
        """Start the threads and the clock; serve until ``stop()``, then ``shutdown()``."""
        if self.scheduler is None:
            self.open()
        print(self.banner(), file=sys.stderr, flush=True)
        status = StatusLine(mode=self.settings.status)
        if self.midi_in is not None and self.settings.status == "line":
            keys = TerminalKeys(self._on_key)
            self.keys = keys if keys.start() else None
            if self.keys is not None:
                log.info("keys: l = MIDI learn the next control, s = save the CC map")
        if self.osc is not None:
            self.osc.start()
        if self.midi_in is not None:
            self.midi_in.start()
        if self.oscquery is not None:
            self.oscquery.start()
            if self.settings.oscquery_advertise:
                self.oscquery.advertise()
        if self.camera is not None:
            self.camera.start()
        if self.rescanner is not None:
            self.rescanner.start()
        self.scheduler.start()
        self.regenerator.start(self.params.snapshot())
        if self.external is None:
            self.scheduler.transport("start")
            at = time.perf_counter() + START_DELAY_S
            if self.link is None:
                self.clock.start(beat=0.0, at=at)
            else:
                self.link.start()
                self.clock.start(beat=self.link.phase_start(at), at=at)
                if self.link.peers == 0:
                    self.link.set_playing(True)
        last_bar = -1
        next_check = time.monotonic() + PORT_CHECK_S
        try:
            while not self._stop.wait(TICK_S):
                while not self.scheduler.beats.empty():
                    bar, beat = self.scheduler.beats.get()
                    if self.osc is not None:
                        self.osc.send_beat(bar, beat)
                    if bar != last_bar and self.recorder is not None:
                        self.recorder.flush_due()
                    if bar != last_bar and self.rescanner is not None:
                        self.rescanner.poke()
                    last_bar = bar
                if time.monotonic() >= next_check:
                    self.midi.check()
                    if self.midi_in is not None:
                        self.midi_in.check()
                    if self.rescanner is not None and not self.clock.running:
                        self.rescanner.poke()  # no bars while stopped: anchors still load
                    next_check = time.monotonic() + PORT_CHECK_S
                status.show(self.status())
        finally:
            status.end()
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """All notes off + CC 123, threads and children stopped, recording closed (whatever of it
        ``open()`` got to)."""
        if self.osc is not None:
            self.osc.stop()
        if self.keys is not None:
            self.keys.stop()
        if self.midi_in is not None:
            self.midi_in.close()
        if self.oscquery is not None:
            self.oscquery.stop()
        if self.rescanner is not None:
            self.rescanner.stop()
        if self.camera is not None:
            self.camera.stop()
        if self.regenerator is not None:
            self.regenerator.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown()
        if self.renderer is not None:
            self.renderer.close()
        if self.external is not None:
            self.external.close()
        if self.link is not None:
            self.link.close()
        if self.midi is not None:
            self.midi.close()
        if self.recorder is not None:
            self.recorder.close()
            if self.recorder.failed:
                log.warning("recording closed: %s keeps its last good save (%s; %d events played)",
                            self.record_path, self.recorder.failed, self.recorder.events)
            else:
                log.warning("recording closed: %s (%d events)", self.record_path, self.recorder.events)
        if self.scheduler is not None:
            log.warning("%s", self.summary())
        if self.osc is not None:
            log.warning("%s", self.osc.summary())

    def summary(self) -> str:
        """One line of timing figures for the whole run."""
        sch, regen = self.scheduler, self.regenerator
        lateness = np.array(sch.lateness) * 1000.0
        if len(lateness) == 0:
            return "played no steps"
        p50, p99, worst = np.percentile(lateness, [50, 99, 100])
        return (f"played {sch.steps} steps, late {sch.late} (>{LATE_S * 1000:g} ms), {sch.very_late} over "
                f"{VERY_LATE_S * 1000:g} ms; send lateness ms "
                f"p50 {p50:.3f} p99 {p99:.3f} max {worst:.3f} (step {sch.worst[1]}); renders {regen.renders}, "
                f"failed {regen.errors}, last {regen.last_ms:.0f} ms; send priority {sch.priority}")
