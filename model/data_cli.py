"""``vis2mus-data``: prepare POP909 for training, and recognise chords in MIDI files.

    vis2mus-data prepare --pop909 ../shared/data/pop909 --out .cache/pop909.npz
    vis2mus-data chords song.mid [--json] [--tracks PIANO,BRIDGE]
    vis2mus-data chord-eval --pop909 ../shared/data/pop909 [--songs validation|all|N,N,...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from tqdm import tqdm

from live.music.chords import NO_CHORD, recognize_chords, root_quality, row_to_label
from live.music.midifile import MidiFormatError, read_midi
from live.music.notes import STEPS_PER_BEAT
from model.pop909 import SongError, prepare, read_song, song_folders, split_songs

DEFAULT_POP909 = os.path.join("..", "shared", "data", "pop909")


def progress(items: list, label: str = "songs"):
    """``items`` with a tqdm progress bar on stderr."""
    return tqdm(items, desc=label, unit=label.rstrip("s") or "item", file=sys.stderr)


def warn(line: str) -> None:
    """A warning line on stderr that leaves the progress bar intact."""
    tqdm.write(f"warning: {line}", file=sys.stderr)


def cmd_prepare(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        print(f"error: --out {out} is a folder; give the file to write, e.g. {out / 'pop909.npz'}", file=sys.stderr)
        return 2
    partial = out.with_name(out.name + ".part")
    try:  # before the work: a folder that cannot be made or written is refused up front
        out.parent.mkdir(parents=True, exist_ok=True)
        handle = open(partial, "wb")
    except OSError as exc:
        print(f"error: cannot write --out {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    start = time.monotonic()
    try:
        with handle:  # numpy writes a file object as it is, without adding ".npz" to the name
            meta = prepare(args.pop909, handle, seed=args.seed, progress=progress, warn=warn)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - start
    notes = meta["notes"]
    print(f"songs: {meta['songs']} ({len(meta['skipped_songs'])} skipped)")
    print(f"segments: {meta['segments']} (train {meta['train_segments']}, validation {meta['validation_segments']}; "
          f"{len(meta['validation_songs'])} validation songs, seed {meta['split_seed']})")
    print(f"accompaniment notes: {meta['accompaniment_notes']}")
    print(f"notes lengthened from zero to one sixteenth: {notes['zero_length_lengthened']}; "
          f"before the first beat (dropped): {notes['before_first_beat']}; "
          f"over 14 onsets in a step (dropped when gridded): {notes['over_14_per_step']}; "
          f"segments left out for an empty accompaniment: {notes['empty_segments']}")
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.1f} MB) in {elapsed:.0f} s")
    return 0


def cmd_chords(args: argparse.Namespace) -> int:
    try:
        piece = read_midi(args.file)
    except MidiFormatError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = args.tracks.split(",") if args.tracks else None
    notes = piece.notes(names)
    n_beats = piece.n_steps // STEPS_PER_BEAT
    labels = recognize_chords(notes, n_beats)
    if args.json:
        print(json.dumps({"file": piece.path, "bpm": piece.bpm, "beats": labels}))
    else:
        for bar in range(0, n_beats, 4):
            print(f"bar {bar // 4 + 1:3d}: " + "  ".join(f"{x:12s}" for x in labels[bar:bar + 4]))
    return 0


def cmd_chord_eval(args: argparse.Namespace) -> int:
    folders = song_folders(args.pop909)
    numbers = [int(os.path.basename(f)) for f in folders]
    if args.songs == "validation":
        chosen = split_songs(numbers)
    elif args.songs == "all":
        chosen = set(numbers)
    else:
        chosen = {int(x) for x in args.songs.split(",")}
    agree_rq = agree_root = total = used = 0
    for folder in progress([f for f in folders if int(os.path.basename(f)) in chosen]):
        try:
            song = read_song(folder)
        except SongError:
            continue
        used += 1
        labels = recognize_chords(song.accompaniment, song.n_beats)
        truth = [row_to_label(r) for r in song.chords]
        for guess, ref in zip(labels, truth):
            if ref == NO_CHORD:
                continue
            total += 1
            agree_rq += root_quality(guess) == root_quality(ref)
            agree_root += guess.split(":")[0] == ref.split(":")[0]
    result = {"songs": used, "beats": total, "root_quality_agreement": agree_rq / max(total, 1),
              "root_agreement": agree_root / max(total, 1)}
    print(f"chord recognition on {result['songs']} songs, {total} labelled beats: "
          f"root+quality {100 * result['root_quality_agreement']:.1f} %, root {100 * result['root_agreement']:.1f} %")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vis2mus-data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="POP909 folder -> 2-bar segments (.npz)")
    p.add_argument("--pop909", default=DEFAULT_POP909, help="POP909 folder (default %(default)s)")
    p.add_argument("--out", default=os.path.join(".cache", "pop909.npz"), help="output .npz (default %(default)s)")
    p.add_argument("--seed", type=int, default=3345, help="song-level split seed (default %(default)s)")
    p.set_defaults(func=cmd_prepare)
    c = sub.add_parser("chords", help="one chord label per beat for a MIDI file")
    c.add_argument("file")
    c.add_argument("--tracks", help="comma-separated track names to use (default all)")
    c.add_argument("--json", action="store_true", help="print JSON instead of a table")
    c.set_defaults(func=cmd_chords)
    e = sub.add_parser("chord-eval", help="measure chord recognition against POP909's labels")
    e.add_argument("--pop909", default=DEFAULT_POP909)
    e.add_argument("--songs", default="validation", help="validation, all, or a comma-separated list")
    e.add_argument("--json", help="write the result here")
    e.set_defaults(func=cmd_chord_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, SongError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
