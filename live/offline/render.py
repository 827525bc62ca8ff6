"""``vis2mus-render``: offline Vis2Mus renders of an anchor (or content x style) over alphas.

    vis2mus-render --anchor stride --brightness -1,-0.5,0,0.5,1 --out renders/
    vis2mus-render --anchor pop_comping --content lullaby --contrast 0.6 --out renders/
    vis2mus-render --equivariance --out report/
    vis2mus-render --feel --out feel/                 # or: --feel FOLDER... (anchor folders)

For each (alpha_b, alpha_c) of the sweep (every brightness with every contrast), it writes
``<stem>.mid`` (melody on channel 1, accompaniment on channel 2, the tempo), ``<stem>_roll.png``
(a piano roll), ``<stem>_image.png`` (the transformed picture) and ``<stem>.wav`` (when fluidsynth
and a General MIDI soundfont are installed). ``--equivariance`` writes the equivariance report of
:mod:`live.offline.equivariance` instead; ``--feel`` the fader-feel report of
:mod:`live.offline.feel` (response curves per anchor as PNGs, the measures as a table, paper mode
against feel mode).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from live import logs
from live.checks import one_line
from live.music.midifile import write_midi
from live.music.notes import ACCOMPANIMENT_CHANNEL, DURATION, MELODY_CHANNEL, ONSET, PITCH, STEPS, Segment, join_segments
from live.texture.anchors import Anchor, AnchorError, content_pieces, default_anchors, find, load_anchor, load_folder
from live.texture.register import DEFAULT_RANGE, check_range
from live.texture.style import blend_images, choose_tempo
from live.texture.transform import adjust, check_alpha
from live.texture.vis2mus import MODES, Vis2Mus

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
)


@dataclass
class Piece:
    """A rendered piece: absolute-onset note lists ``(N, 4)``, tempo, picture ``(H, W, 3)``."""

    accompaniment: np.ndarray
    melody: np.ndarray
    bpm: float
    image: np.ndarray
    n_steps: int


def find_soundfont(explicit: str | None = None) -> str | None:
    """``explicit``, ``$VIS2MUS_SOUNDFONT`` or the first installed GM soundfont; None if none."""
    for candidate in (explicit, os.environ.get("VIS2MUS_SOUNDFONT"), *SOUNDFONTS):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


def wav_unavailable(soundfont: str | None) -> str | None:
    """Why WAV files cannot be written (one line), or None when they can."""
    if shutil.which("fluidsynth") is None:
        return "no WAV files: fluidsynth is not installed (apt install fluidsynth fluid-soundfont-gm)"
    if soundfont is None:
        return ("no WAV files: no General MIDI soundfont found (apt install fluid-soundfont-gm, or pass "
                "--soundfont FILE / set VIS2MUS_SOUNDFONT)")
    return None


def wav_soundfont(explicit: str | None, wanted: bool, program: str) -> str | None:
    """The soundfont to write WAV files with, or None (``wanted`` False, or WAV impossible: then
    one line on stderr says why, prefixed with ``program``)."""
    if not wanted:
        return None
    soundfont = find_soundfont(explicit)
    reason = wav_unavailable(soundfont)
    if reason:
        print(f"{program}: {reason}", file=sys.stderr)
        return None
    return soundfont


def write_wav(midi_path: str | os.PathLike, wav_path: str | os.PathLike, soundfont: str) -> None:
    """Render a MIDI file to a 44.1 kHz stereo WAV with fluidsynth (offline, no audio device)."""
    result = subprocess.run(
        ["fluidsynth", "-ni", "-q", "-g", "0.7", "-r", "44100", "-F", os.fspath(wav_path), soundfont,
         os.fspath(midi_path)],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0 or not os.path.isfile(wav_path):
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise RuntimeError(f"fluidsynth failed on {midi_path}: {reason[-1] if reason else result.returncode}")


def write_piece_midi(path: str | os.PathLike, piece: Piece) -> None:
    """Melody (channel 1) and accompaniment (channel 2) tracks at the piece's tempo."""
    parts = []
    if len(piece.melody):
        parts.append(("melody", MELODY_CHANNEL, piece.melody))
    parts.append(("accompaniment", ACCOMPANIMENT_CHANNEL, piece.accompaniment))
    write_midi(path, parts, piece.bpm)


def piano_roll(piece: Piece, title: str, step_px: int = 6, pitch_px: int = 4) -> Image.Image:
    """A piano roll of the piece: accompaniment blue, melody orange, bar and segment lines."""
    notes = [n for n in (piece.accompaniment, piece.melody) if len(n)]
    pitches = np.concatenate([n[:, PITCH] for n in notes]) if notes else np.array([60])
    low = int(min(pitches.min(), 48) // 12 * 12)
    high = int(-(-(max(pitches.max(), 84) + 1) // 12) * 12)
    top, left = 22, 30
    width = left + piece.n_steps * step_px + 4
    height = top + (high - low) * pitch_px + 4
    img = Image.new("RGB", (width, height), (250, 250, 248))
    draw = ImageDraw.Draw(img)
    for pitch in range(low, high + 1, 12):
        y = top + (high - pitch) * pitch_px
        draw.line([left, y, width, y], fill=(220, 220, 220))
        draw.text((2, y - 10), f"C{pitch // 12 - 1}", fill=(120, 120, 120))
    for step in range(0, piece.n_steps + 1, 16):
        x = left + step * step_px
        draw.line([x, top, x, height], fill=(90, 90, 90) if step % STEPS == 0 else (200, 200, 200))
    for part, colour in ((piece.accompaniment, (40, 90, 180)), (piece.melody, (230, 120, 30))):
        for onset, pitch, duration in part[:, [ONSET, PITCH, DURATION]]:
            x0 = left + onset * step_px
            y0 = top + (high - pitch - 1) * pitch_px
            draw.rectangle([x0, y0, x0 + duration * step_px - 2, y0 + pitch_px - 1], fill=colour)
    draw.text((left, 4), title, fill=(20, 20, 20))
    return img


def make_piece(segments: list[Segment], bpm: float, image: np.ndarray) -> Piece:
    """Join rendered segments into a piece with absolute onsets."""
    return Piece(
        accompaniment=join_segments([s.accompaniment for s in segments]),
        melody=join_segments([s.melody for s in segments]),
        bpm=bpm,
        image=image,
        n_steps=len(segments) * STEPS,
    )


def base_image(anchor: Anchor, content: Anchor | None) -> np.ndarray:
    """The anchor's picture, or the content x style blend in style mode ``(H, W, 3)`` uint8."""
    return blend_images(content.image, anchor.image) if content is not None else anchor.image


def render_piece(v2m: Vis2Mus, anchor: Anchor, alpha_b: float, alpha_c: float, content: Anchor | None = None,
                 adopt_style_tempo: bool = True, picture: np.ndarray | None = None) -> Piece:
    """Render every segment of ``anchor`` (or content x style) at one alpha pair."""
    n = v2m.n_segments(anchor, content)
    segments = v2m.render(anchor, alpha_b, alpha_c, list(range(n)), content=content)
    bpm = choose_tempo(content.bpm, anchor.bpm, adopt_style_tempo) if content is not None else anchor.bpm
    picture = base_image(anchor, content) if picture is None else picture
    return make_piece(segments, bpm, adjust(picture, alpha_b, alpha_c))


def stem_for(anchor: Anchor, content: Anchor | None, alpha_b: float, alpha_c: float) -> str:
    """File stem like ``lullaby+stride_b+0.50_c-0.25``."""
    name = f"{content.name}+{anchor.name}" if content is not None else anchor.name
    return f"{name}_b{alpha_b:+.2f}_c{alpha_c:+.2f}"


def write_outputs(out: Path, stem: str, piece: Piece, title: str, soundfont: str | None) -> list[Path]:
    """Write the .mid, piano roll, picture and (with a soundfont) .wav of a piece; returns paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.mid", out / f"{stem}_roll.png", out / f"{stem}_image.png"]
    write_piece_midi(paths[0], piece)
    piano_roll(piece, title).save(paths[1])
    Image.fromarray(piece.image).save(paths[2])
    if soundfont is not None:
        paths.append(out / f"{stem}.wav")
        write_wav(paths[0], paths[3], soundfont)
    return paths


def parse_alphas(text: str, name: str) -> list[float]:
    """``"-1,-0.5,0"`` -> floats in [-1, 1]; ``ValueError`` with one line otherwise."""
    values = []
    for item in text.split(","):
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--{name}: {item.strip()!r} is not a number") from None
        values.append(check_alpha(value, f"--{name}"))
    return values


def open_engine(weights: str | None, device: str, threads: int):
    """The engine of ``weights`` (default weights when None)."""
    from export import exporter
    from live.inference.engine import Engine

    return Engine.from_weights(weights, device=device, threads=threads, exporter=exporter())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vis2mus-render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--anchor", help="texture/style anchor: a shipped name or a folder path")
    parser.add_argument("--content", help="content piece (melody + chords) for style transfer: name or folder")
    parser.add_argument("--brightness", default="0", help="alpha_b, or a comma list for a sweep (default 0)")
    parser.add_argument("--contrast", default="0", help="alpha_c, or a comma list for a sweep (default 0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--equivariance", action="store_true",
                        help="write the equivariance report over every shipped anchor instead")
    parser.add_argument("--feel", nargs="*", metavar="FOLDER",
                        help="write the fader-feel report instead: the shipped anchors, or these anchor folders "
                             "(or folders of anchor folders)")
    parser.add_argument("--mode", choices=MODES,
                        help="feel (calibrated, relative to the anchor; default) or paper (eq. 1/2 straight, "
                             "the default of --equivariance)")
    parser.add_argument("--register", default=f"{DEFAULT_RANGE[0]}-{DEFAULT_RANGE[1]}",
                        help="feel mode's pitch range LOW-HIGH in MIDI numbers (default 28-100, E1..E7)")
    parser.add_argument("--keep-content-tempo", action="store_true",
                        help="style mode: keep the content's tempo instead of adopting the style's")
    parser.add_argument("--weights", help="weights file (default weights/polydis-small.pt)")
    parser.add_argument("--soundfont", help="General MIDI .sf2 for the WAV files")
    parser.add_argument("--no-wav", action="store_true", help="skip WAV files")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1)
    return parser


def join_negative_values(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``["--brightness", "-1,0"]`` -> ``["--brightness=-1,0"]`` so argparse does not take a
    negative alpha list for an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] in options and i + 1 < len(argv) and argv[i + 1].startswith("-") and argv[i + 1][1:2] in "0123456789.":
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def parse_register(text: str) -> tuple[int, int]:
    """``"28-100"`` -> ``(28, 100)``; ``ValueError`` with one line otherwise."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--register: {text!r} is not LOW-HIGH (MIDI numbers, e.g. 28-100)")
    return check_range(int(low), int(high))


def feel_anchors(paths: list[str]) -> dict[str, Anchor]:
    """The anchors ``--feel`` measures: the shipped ones, or each path (an anchor folder, or a
    folder of anchor folders)."""
    if not paths:
        return dict(default_anchors())
    anchors: dict[str, Anchor] = {}
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"--feel: {path} is not a folder")
        found = {folder.name: load_anchor(folder)} if (folder / "anchor.toml").is_file() else load_folder(folder)
        if not found:
            raise ValueError(f"--feel: {path} holds no anchor folder (no anchor.toml)")
        anchors.update(found)
    return anchors


def main(argv: list[str] | None = None) -> int:
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv), ("--brightness", "--contrast"))
    args = build_parser().parse_args(argv)
    logs.setup("vis2mus-render")
    try:
        return _run(args)
    except (ValueError, AnchorError, RuntimeError, OSError) as exc:
        print(f"vis2mus-render: error: {one_line(exc)}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    brightness = parse_alphas(args.brightness, "brightness")
    contrast = parse_alphas(args.contrast, "contrast")
    out = Path(args.out)
    register = parse_register(args.register)
    if args.feel is not None:
        from live.offline.feel import run_report as run_feel

        anchors = feel_anchors(args.feel)
        engine = open_engine(args.weights, args.device, args.threads)
        modes = {"paper": Vis2Mus(engine, mode="paper"), "feel": Vis2Mus(engine, register=register)}
        if args.mode:
            modes = {args.mode: modes[args.mode]}
        run_feel(modes, anchors, list(content_pieces().values()), out)
        return 0
    if args.equivariance:
        from live.offline.equivariance import run_report

        engine = open_engine(args.weights, args.device, args.threads)
        sweep_b = brightness if args.brightness != "0" else None
        sweep_c = contrast if args.contrast != "0" else None
        run_report(Vis2Mus(engine, keep_original=False, mode=args.mode or "paper", register=register), out,
                   sweep_b, sweep_c)
        return 0
    if not args.anchor:
        raise ValueError("--anchor NAME|PATH is required (or --equivariance)")
    anchor = find(args.anchor)
    content = find(args.content, content=True) if args.content else None
    soundfont = wav_soundfont(args.soundfont, not args.no_wav, "vis2mus-render")
    v2m = Vis2Mus(open_engine(args.weights, args.device, args.threads), mode=args.mode or "feel", register=register)
    picture = base_image(anchor, content)
    pairs = [(b, c) for b in brightness for c in contrast]
    for k, (alpha_b, alpha_c) in enumerate(pairs, 1):
        piece = render_piece(v2m, anchor, alpha_b, alpha_c, content, not args.keep_content_tempo, picture)
        stem = stem_for(anchor, content, alpha_b, alpha_c)
        title = f"{stem}  ({piece.bpm:g} BPM, {len(piece.accompaniment)} accompaniment notes)"
        paths = write_outputs(out, stem, piece, title, soundfont)
        print(f"[{k}/{len(pairs)}] brightness {alpha_b:+.2f} contrast {alpha_c:+.2f}: "
              f"{len(piece.accompaniment)} notes -> {', '.join(p.name for p in paths)}", flush=True)
    print(f"wrote {len(pairs)} render(s) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
