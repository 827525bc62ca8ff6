"""Vis2Mus on anchors: brightness/contrast on the texture feature map, chords, style transfer.

Two modes (:data:`MODES`). *Paper mode* is described below. *Feel mode* (the default) plays a
base at 0 (the anchor itself; with a chord override or in style mode, the model's unedited decode
with those chords) and the base changed note by note by what the model's decodes of the edited map
add and remove (``live.texture.relative``), a share of those changes proportional to fader travel
(``live.texture.calibration``). The decodes are made once per anchor at load (:meth:`Vis2Mus.feel`)
and once per fader side for other chords, so a fader move decodes nothing. The notes are folded
into the register and kept under the melody (``live.texture.register``) and take the anchor's
dynamics (``live.texture.dynamics``).

In paper mode, for each requested 2-bar segment of an anchor, the accompaniment's texture feature map
``(10, 8, 29)`` is edited with :func:`live.texture.transform.adjust` (eq. 1/2). The edited map goes through
the rest of the texture encoder to give ``z_txt``. ``z_chd`` is the encoding of the anchor's
chords (or an override, or a content piece's shifted chords), and the pair is decoded greedily.
Every requested segment goes through one batched engine call.

Feature maps and chord latents are computed once per (weights, anchor) and kept in memory. They
are also kept on disk when a ``cache_dir`` is given; the key is the weights' and the anchor's
content hashes.

Style transfer (``content=``): the content melody is moved in register by
:func:`live.texture.style.register_shift`, against the style anchor's whole original accompaniment, so
that every segment and every alpha uses the same shift and the tune never jumps while faders
move. The content chords are shifted with it. With a chord override in style mode, the override
is played as written and the melody moves by whole octaves only, so tune and chords share a key.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from live.music.chords import ROW
from live.music.notes import BEATS_PER_SEGMENT, VELOCITY, Segment, notes_to_pr_mat, transpose_notes
from live.texture import dynamics, relative
from live.texture.anchors import Anchor
from live.texture.calibration import CAPS, GRID, REACH_FACTORS, SIDES, choose_reach, contrast_factor, side
from live.texture.register import DEFAULT_RANGE, check_range, fold_into, keep_under
from live.texture.style import octave_shift, register_shift, shifted_chords
from live.texture.transform import adjust, adjust_factor, check_alpha

LOAD_BATCH = 128
"""Rows per engine call when an anchor is decoded for feel mode at load."""
FOREIGN_CACHE = 64
"""(anchor, chords) pairs whose feel-mode changes are kept (chord overrides, style transfer)."""
MODES = ("feel", "paper")
"""``feel``: the anchor changed by the model's load-time decodes in proportion to fader travel,
register, melody on top, the anchor's dynamics (``docs/vis2mus.md``); ``paper``: eq. (1)/(2)
straight, the decode as it is, one velocity per segment."""


@dataclass(frozen=True)
class Feel:
    """What feel mode knows of an anchor after load: per fader side (``calibration.SIDES``) the
    ordered changes of each segment, and the anchor's dynamics."""

    moves: dict[str, tuple[relative.Moves, ...]]
    dynamics: dynamics.Dynamics
    reach: float


class Vis2Mus:
    """Renders anchors through an engine (``live.inference.engine.Engine`` API). Thread-safe.

    ``mode``: one of :data:`MODES`. ``keep_original`` (paper mode): with both alphas 0, no chord
    override and no content, return the anchor's own accompaniment instead of the model's
    reconstruction (as Vis2Mus does); feel mode always plays the anchor at 0. ``register``: the
    ``(low, high)`` MIDI pitch range feel mode folds notes into. ``reach``: contrast's factor at
    the top of the fader in feel mode (default: calibrated per anchor at load).
    """

    def __init__(self, engine, cache_dir: str | os.PathLike | None = None, keep_original: bool = True,
                 mode: str = "feel", register: tuple[int, int] = DEFAULT_RANGE, reach: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} ({', '.join(MODES)})")
        self.engine = engine
        self.mode = mode
        self.register = check_range(*register)
        self.reach = None if reach is None else float(reach)
        self.keep_original = keep_original
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        manifest = getattr(engine, "manifest", None) or {}
        self.weights_key = str(manifest.get("weights_sha256", f"engine-{id(engine)}"))[:16]
        self._lock = threading.Lock()
        self._maps: dict[str, np.ndarray] = {}
        self._z_chd: dict[str, np.ndarray] = {}
        self._override_z_chd: dict[str, np.ndarray] = {}
        self._feel: dict[str, Feel] = {}
        self._foreign_moves: dict[str, tuple[tuple[np.ndarray, ...], dict]] = {}

    # caches

    def _cache_file(self, anchor: Anchor) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / self.weights_key / f"{anchor.digest[:32]}.npz"

    def _load_disk(self, anchor: Anchor) -> tuple[np.ndarray, np.ndarray] | None:
        path = self._cache_file(anchor)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path) as data:
                maps, z_chd = data["maps"], data["z_chd"]
        except (OSError, ValueError, KeyError):
            return None
        if maps.shape != (anchor.n_segments, 10, 8, 29) or z_chd.shape[0] != anchor.n_segments:
            return None
        return maps, z_chd

    def _save_disk(self, anchor: Anchor, maps: np.ndarray, z_chd: np.ndarray) -> None:
        path = self._cache_file(anchor)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{threading.get_ident()}.tmp.npz")
            np.savez(tmp, maps=maps, z_chd=z_chd)
            os.replace(tmp, path)
        except OSError:
            pass

    def prepare(self, anchor: Anchor) -> tuple[np.ndarray, np.ndarray]:
        """Feature maps ``(S, 10, 8, 29)`` and chord latents ``(S, 256)`` of an anchor (cached)."""
        with self._lock:
            if anchor.digest in self._maps:
                return self._maps[anchor.digest], self._z_chd[anchor.digest]
        cached = self._load_disk(anchor)
        if cached is None:
            pr_mats = np.stack([notes_to_pr_mat(anchor.segment("accompaniment", i)) for i in range(anchor.n_segments)])
            maps = np.asarray(self.engine.texture_map(pr_mats), dtype=np.float32)
            z_chd = np.asarray(self.engine.encode_chords(self._segment_rows(anchor.chords, anchor.n_segments)),
                               dtype=np.float32)
            self._save_disk(anchor, maps, z_chd)
        else:
            maps, z_chd = cached
        maps.setflags(write=False)
        z_chd.setflags(write=False)
        with self._lock:
            self._maps.setdefault(anchor.digest, maps)
            self._z_chd.setdefault(anchor.digest, z_chd)
            return self._maps[anchor.digest], self._z_chd[anchor.digest]

    def feel(self, anchor: Anchor) -> Feel:
        """The :class:`Feel` of an anchor (cached): every segment decoded unedited and at each
        |alpha| of ``calibration.GRID`` on each side of both faders, in batches of
        :data:`LOAD_BATCH` rows."""
        with self._lock:
            if anchor.digest in self._feel:
                return self._feel[anchor.digest]
        maps, z_chd = self.prepare(anchor)
        reach = self._reach(maps)
        profile = dynamics.profile(anchor.accompaniment)
        reference = self._decode(z_chd, maps)
        own = [self._own(anchor, t) for t in range(anchor.n_segments)]
        feel = Feel(moves=self._side_moves(SIDES, own, reference, own, maps, z_chd, reach, profile),
                    dynamics=profile, reach=reach)
        with self._lock:
            return self._feel.setdefault(anchor.digest, feel)

    def _decode(self, z_chd: np.ndarray, maps: np.ndarray) -> list[np.ndarray]:
        """Decodes of ``maps`` ``(R, 10, 8, 29)`` with ``z_chd`` ``(R, 256)`` in batches of
        :data:`LOAD_BATCH` rows, folded into the register: one ``(N, 4)`` per row."""
        decoded = []
        for start in range(0, len(maps), LOAD_BATCH):
            part = slice(start, start + LOAD_BATCH)
            decoded += self.engine.decode(z_chd[part], self.engine.texture_latent(maps[part]))
        return [fold_into(np.asarray(d, dtype=np.int32), *self.register) for d in decoded]

    def _side_moves(self, names, bases: list[np.ndarray], references: list[np.ndarray], velocity_refs: list[np.ndarray],
                    maps: np.ndarray, z_chd: np.ndarray, reach: float, profile: dynamics.Dynamics
                    ) -> dict[str, tuple[relative.Moves, ...]]:
        """The ordered changes of the fader sides ``names`` for each of ``S`` segments: their maps
        ``(S, 10, 8, 29)`` decoded with ``z_chd`` ``(S, 256)`` at each |alpha| of ``GRID`` (one
        batched call), compared with ``references`` and applied to ``bases``; new notes take
        their velocities from ``velocity_refs`` and ``profile``."""
        n = len(maps)
        edits = []
        for name in names:
            sign = 1.0 if name.endswith("+") else -1.0
            for a in GRID:
                if name.startswith("brightness"):
                    edits.append(adjust_factor(maps, sign * a, 1.0))
                else:
                    edits.append(adjust_factor(maps, 0.0, contrast_factor(sign * a, reach)))
        decoded = self._decode(np.tile(z_chd, (len(edits), 1)), np.concatenate(edits))
        table = {}
        for s, name in enumerate(names):
            per_segment = []
            for t in range(n):
                grid = [decoded[(s * len(GRID) + k) * n + t] for k in range(len(GRID))]
                found = relative.moves(bases[t], references[t], grid, *CAPS[name], top=self.register[1])
                per_segment.append(relative.Moves(dynamics.follow(found.additions, velocity_refs[t], profile),
                                                  found.removals))
            table[name] = tuple(per_segment)
        return table

    def _foreign(self, anchor: Anchor, z_all: np.ndarray, names) -> tuple[tuple[np.ndarray, ...], dict]:
        """Feel mode with other chords than the anchor's (an override, or a content piece's in
        style mode): the loop's unedited decode (the base that plays at 0, ``(N, 4)`` per
        segment) and the ordered changes of the fader sides ``names`` against it, both cached per
        anchor and chord latents ``z_all`` ``(total, 256)``; sides are decoded when first asked."""
        feel = self.feel(anchor)
        maps, _ = self.prepare(anchor)
        rows = maps[np.arange(len(z_all)) % anchor.n_segments]
        refs = [anchor.segment("accompaniment", i % anchor.n_segments) for i in range(len(z_all))]
        key = anchor.digest + hashlib.sha256(np.ascontiguousarray(z_all).tobytes()).hexdigest()
        with self._lock:
            entry = self._foreign_moves.get(key)
        if entry is None:
            base = tuple(dynamics.follow(d, ref, feel.dynamics) for d, ref in zip(self._decode(z_all, rows), refs))
            entry = (base, {})
        base, table = entry
        missing = [name for name in names if name not in table]
        if missing:
            found = self._side_moves(missing, list(base), list(base), refs, rows, z_all, feel.reach, feel.dynamics)
        with self._lock:
            if len(self._foreign_moves) >= FOREIGN_CACHE and key not in self._foreign_moves:
                self._foreign_moves.clear()
            base, table = self._foreign_moves.setdefault(key, entry)
            if missing:
                table.update(found)
            return base, dict(table)

    def _reach(self, maps: np.ndarray) -> float:
        """Contrast's reach for feature maps ``(S, 10, 8, 29)``: ``calibration.choose_reach`` on
        the mean texture-latent distances of the flat map and of each candidate factor (one
        engine call); the fixed ``reach`` when one was given."""
        if self.reach is not None:
            return self.reach
        factors = (0.0,) + REACH_FACTORS
        latents = self.engine.texture_latent(np.concatenate([adjust_factor(maps, 0.0, f) for f in factors]))
        base = self.engine.texture_latent(maps)
        n = len(maps)
        dist = [float(np.linalg.norm(latents[k * n:(k + 1) * n] - base, axis=1).mean()) for k in range(len(factors))]
        return choose_reach(dist[0], dist[1:])

    def _own(self, anchor: Anchor, texture: int) -> np.ndarray:
        """The anchor's accompaniment segment ``texture`` folded into the register ``(N, 4)``."""
        return fold_into(anchor.segment("accompaniment", texture), *self.register)

    def _chord_latents(self, rows: np.ndarray, n_segments: int) -> np.ndarray:
        """``z_chd`` ``(n_segments, 256)`` of chord rows looped to ``n_segments * 8`` beats (cached)."""
        key = hashlib.sha256(np.ascontiguousarray(rows, dtype=np.float32).tobytes()).hexdigest() + f":{n_segments}"
        with self._lock:
            hit = self._override_z_chd.get(key)
        if hit is not None:
            return hit
        z_chd = np.asarray(self.engine.encode_chords(self._segment_rows(rows, n_segments)), dtype=np.float32)
        z_chd.setflags(write=False)
        with self._lock:
            if len(self._override_z_chd) >= 256:
                self._override_z_chd.clear()
            self._override_z_chd[key] = z_chd
        return z_chd

    @staticmethod
    def _segment_rows(rows: np.ndarray, n_segments: int) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != 36 or len(rows) == 0:
            raise ValueError(f"chord rows must have shape (n_beats, 36), got {rows.shape}")
        if not np.isfinite(rows).all():
            raise ValueError("chord rows contain NaN or inf")
        beats = np.arange(n_segments * BEATS_PER_SEGMENT) % len(rows)
        return rows[beats].reshape(n_segments, BEATS_PER_SEGMENT, ROW)

    # rendering

    @staticmethod
    def n_segments(anchor: Anchor, content: Anchor | None = None) -> int:
        """Loop length in segments: the content piece's in style mode, else the anchor's."""
        return content.n_segments if content is not None else anchor.n_segments

    def melody_shift(self, anchor: Anchor, content: Anchor, chords: np.ndarray | None = None) -> int:
        """The semitones the content melody moves to sit on top of ``anchor``'s texture."""
        shift = register_shift(content.melody, anchor.accompaniment)
        return octave_shift(shift) if chords is not None else shift

    def render(self, anchor: Anchor, alpha_b: float, alpha_c: float, segments: list[int],
               chords: np.ndarray | None = None, content: Anchor | None = None) -> list[Segment]:
        """Render loop segments ``segments`` of ``anchor`` under brightness ``alpha_b`` and
        contrast ``alpha_c`` (each in [-1, 1]).

        ``chords``: override rows ``(n_beats, 36)``, looped over the piece. ``content``: a content
        piece for style transfer. In that mode segment ``i`` takes the content's segment ``i`` and
        the anchor's texture segment ``i mod anchor.n_segments``. Returns one :class:`Segment` per
        requested index, in order.
        """
        alpha_b = check_alpha(alpha_b, "brightness alpha")
        alpha_c = check_alpha(alpha_c, "contrast alpha")
        total = self.n_segments(anchor, content)
        indices = [int(i) for i in segments]
        bad = [i for i in indices if not 0 <= i < total]
        if bad:
            raise ValueError(f"segment index {bad[0]} out of range 0..{total - 1}")
        if not indices:
            return []
        if content is not None and len(content.melody) == 0:
            raise ValueError(f"content piece {content.name!r} has no melody")
        maps, own_z_chd = self.prepare(anchor)
        texture = [i % anchor.n_segments for i in indices]
        shift = self.melody_shift(anchor, content, chords) if content is not None else 0
        if chords is not None:
            z_all = self._chord_latents(chords, total)
        elif content is not None:
            z_all = self._chord_latents(shifted_chords(content.chords, shift), total)
        else:
            z_all = own_z_chd[np.arange(total) % anchor.n_segments]
        z_chd = z_all[indices]
        melodies = [transpose_notes(content.segment("melody", i), shift) if content is not None
                    else anchor.segment("melody", t) for i, t in zip(indices, texture)]
        if self.mode == "feel":
            return self._render_feel(anchor, alpha_b, alpha_c, indices, texture, z_all, melodies, shift,
                                     relative_to_anchor=chords is None and content is None)
        if alpha_b == 0.0 and alpha_c == 0.0 and chords is None and content is None and self.keep_original:
            return [Segment(anchor.segment("accompaniment", t), melody, index=i)
                    for i, t, melody in zip(indices, texture, melodies)]
        z_txt = self.engine.texture_latent(adjust(maps[texture], alpha_b, alpha_c))
        decoded = self.engine.decode(z_chd, z_txt)
        out = []
        for i, t, notes, melody in zip(indices, texture, decoded, melodies):
            notes = np.array(notes, dtype=np.int32)
            notes[:, VELOCITY] = _segment_velocity(anchor, t)
            out.append(Segment(notes, melody, index=i, shift=shift))
        return out

    def _render_feel(self, anchor: Anchor, fader_b: float, fader_c: float, indices: list[int], texture: list[int],
                     z_all: np.ndarray, melodies: list[np.ndarray], shift: int, relative_to_anchor: bool) -> list[Segment]:
        """Feel mode: the base (the anchor's own segment, or with other chords the loop's unedited
        decode) with the changes of each fader's side (``live.texture.relative``), kept under the
        melody."""
        active = [(fader, u) for fader, u in (("brightness", fader_b), ("contrast", fader_c)) if u != 0.0]
        if relative_to_anchor:
            table = self.feel(anchor).moves
            bases = [self._own(anchor, t) for t in texture]
            moves = [{name: table[name][t] for name in table} for t in texture]
        else:
            base, table = self._foreign(anchor, z_all, [side(fader, u) for fader, u in active])
            bases = [base[i] for i in indices]
            moves = [{name: table[name][i] for name in table} for i in indices]
        out = []
        for i, notes, segment_moves, melody in zip(indices, bases, moves, melodies):
            for fader, u in active:
                notes = relative.apply(notes, segment_moves[side(fader, u)], u)
            out.append(Segment(keep_under(notes, melody, self.register[0]), melody, index=i, shift=shift))
        return out


def _segment_velocity(anchor: Anchor, index: int) -> int:
    """The median velocity of the anchor's accompaniment in segment ``index`` (80 when empty)."""
    notes = anchor.segment("accompaniment", index)
    return int(np.median(notes[:, VELOCITY])) if len(notes) else 80
