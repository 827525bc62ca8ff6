"""What feel mode costs: its load-time work per anchor and its render time per fader move, against
paper mode, on the shipped weights (CPU, one thread).

    python -m benchmarks.render_feel [--repeats 30]

Prints, per shipped anchor, the load (feature maps, chord latents, contrast reach and the decodes
of ``live.texture.calibration.GRID``), then the median / p90 / max of ``Vis2Mus.render`` for 2 and 4
segments at random fader positions: feel mode on the anchor's own chords (no decode at render
time), feel mode in style transfer (the first render of a pair: one decode; the first move to a
fader side: one batched decode; later moves: none) and paper mode (one decode).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from live.offline.render import open_engine
from live.texture.anchors import content_pieces, default_anchors
from live.texture.vis2mus import Vis2Mus


def _stats(times: list[float]) -> str:
    ms = np.asarray(times) * 1000.0
    return f"median {np.median(ms):6.1f} ms  p90 {np.percentile(ms, 90):6.1f} ms  max {ms.max():6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    engine = open_engine(None, "cpu", 1)
    anchors, contents = default_anchors(), content_pieces()
    feel, paper = Vis2Mus(engine), Vis2Mus(engine, mode="paper")
    for name, anchor in anchors.items():
        start = time.perf_counter()
        feel.feel(anchor)
        print(f"load {name:14s} {1000 * (time.perf_counter() - start):7.1f} ms ({anchor.n_segments} segments)")
        paper.prepare(anchor)
    rng = np.random.default_rng(0)
    content = next(iter(contents.values()))
    first, side = [], []
    for anchor in anchors.values():
        for times, pairs in ((first, [(0.0, 0.0)]), (side, [(0.5, 0.0), (-0.5, 0.0), (0.0, 0.5), (0.0, -0.5)])):
            for pair in pairs:
                start = time.perf_counter()
                feel.render(anchor, *pair, [0, 1, 2, 3], content=content)
                times.append(time.perf_counter() - start)
    print(f"render {'feel, style: a pair':26s} 4 segments: {_stats(first)}")
    print(f"render {'feel, style: a new side':26s} 4 segments: {_stats(side)}")
    for label, v2m, style in (("feel, own chords", feel, None), ("feel, style: known sides", feel, content),
                              ("paper", paper, None)):
        for count in (2, 4):
            times = []
            for k in range(args.repeats):
                anchor = anchors[list(anchors)[k % len(anchors)]]
                b, c = rng.uniform(-1, 1, 2).round(3)
                start = time.perf_counter()
                v2m.render(anchor, float(b), float(c), list(range(count)), content=style)
                times.append(time.perf_counter() - start)
            print(f"render {label:26s} {count} segments: {_stats(times)}")


if __name__ == "__main__":
    main()
