"""Regenerate the controller patches from the server's address space.

Writes patches/vis2mus.pd, patches/test_driver.pd, patches/vis2mus.maxpat and patches/vis2mus.tosc.
Run from the repository root: ``python -m patches.make_patches`` (``--check`` only compares).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from patches.catalog import Names, default_names
from patches.max_patch import maxpat
from patches.pd_patch import controller, driver
from patches.tosc_layout import tosc

HERE = Path(__file__).resolve().parent


def render(names: Names) -> dict[str, bytes]:
    """File name -> contents of every generated patch and layout."""
    return {
        "vis2mus.pd": controller(names).encode(),
        "test_driver.pd": driver().encode(),
        "vis2mus.maxpat": maxpat(names).encode(),
        "vis2mus.tosc": tosc(names),
    }


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="folder to write to (default: patches/)")
    ap.add_argument("--check", action="store_true", help="only report files that differ from a fresh build")
    ap.add_argument("--anchors", help="comma-separated anchor names (default: live.texture.anchors.default_anchors())")
    ap.add_argument("--pieces", help="comma-separated content pieces (default: live.texture.anchors.content_pieces())")
    args = ap.parse_args(argv)
    if args.anchors is not None and args.pieces is not None:
        names = Names(tuple(args.anchors.split(",")), tuple(args.pieces.split(",")))
    else:
        names = default_names()
    stale = []
    for name, data in render(names).items():
        path = args.out / name
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(name)
            continue
        path.write_bytes(data)
        print(f"wrote {path}")
    if stale:
        print("out of date: " + ", ".join(stale) + " (run python -m patches.make_patches)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
