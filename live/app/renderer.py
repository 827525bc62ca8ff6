"""The renderer: performance state -> loop segments (``Vis2Mus`` on the engine, else the anchors' notes)."""

from __future__ import annotations

import logging
from dataclasses import replace

from live.checks import one_line
from live.music.notes import BEATS_PER_SEGMENT, Segment
from live.playback.scheduler import follow_velocities

log = logging.getLogger(__name__)


def render_key(state) -> tuple:
    """The fields whose change re-renders the loop."""
    return (round(state.alpha_b, 4), round(state.alpha_c, 4), state.anchor, state.content, state.chords,
            state.revision)


def panic_key(state) -> tuple:
    """The fields whose change also sends all notes off (a different piece)."""
    return (state.anchor, state.content, state.revision)


class Renderer:
    """Renders loop segments for a performance state: ``Vis2Mus`` when an engine is loaded, else
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
                log.warning("anchor %s: cannot prepare feel mode (%s: %s)", anchor.name, type(exc).__name__, exc)
            return True
        return False

    def count(self, state) -> int:
        """Loop length in segments under ``state``."""
        piece = self.contents[state.content] if state.content else self.anchors[state.anchor]
        return int(piece.n_segments)

    def __call__(self, state, indices: list[int]) -> tuple[int, list[Segment]]:
        """``(n_segments, [Segment])`` for the loop segments ``indices`` (note arrays ``(N, 4)``,
        onsets 0..31)."""
        anchor = self.anchors[state.anchor]
        content = self.contents[state.content] if state.content else None
        n_segments = self.count(state)
        if not indices:
            return n_segments, []
        if self.vis2mus is None:
            piece = content or anchor
            segments = [Segment(piece.segment("accompaniment", i), piece.segment("melody", i), index=i)
                        for i in indices]
        else:
            from live.music.chords import progression_rows

            chords = progression_rows(state.chords, n_segments * BEATS_PER_SEGMENT) if state.chords else None
            segments = self.vis2mus.render(anchor, state.alpha_b, state.alpha_c, list(indices),
                                           chords=chords, content=content)
        if self.follow_velocity and getattr(self.vis2mus, "mode", "paper") == "paper":
            segments = [replace(seg, accompaniment=follow_velocities(
                            seg.accompaniment, anchor.segment("accompaniment", i % anchor.n_segments)))
                        for seg, i in zip(segments, indices)]
        return n_segments, segments


def load_renderer(settings, anchors: dict, contents: dict) -> tuple[Renderer, str]:
    """A ``Renderer`` on the engine of ``settings.weights`` and a one-line engine description; when
    the weights are missing or corrupt, one line says so and the anchors play as they are."""
    try:
        from export import exporter
        from live.inference.engine import Engine
        from live.texture.vis2mus import Vis2Mus

        engine = Engine.from_weights(settings.weights, device=settings.device, threads=settings.threads,
                                     log=log.info, exporter=exporter())
        vis2mus, note = Vis2Mus(engine, mode=settings.mode, register=settings.register), engine.provider
    except Exception as exc:  # missing/corrupt weights or an ONNX failure: play on without regeneration
        log.warning("no regeneration (%s); playing the anchors as they are", one_line(exc))
        vis2mus, note = None, f"off ({one_line(exc)})"
    return Renderer(anchors, contents, vis2mus, settings.follow_velocity), note
