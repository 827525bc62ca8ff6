"""Equivariance report: does a brightness/contrast change move the music in a consistent direction?

For every shipped texture anchor and every alpha of a brightness sweep (contrast 0) and of a
contrast sweep (brightness 0), the accompaniment is rendered and described, and so is the
picture. Each row gives the change against the same anchor decoded at alpha 0 (the model's own
reconstruction, so reconstruction error does not count as a change).

Music descriptors (accompaniment, per piece):

- ``notes_per_bar``: notes divided by bars;
- ``mean_pitch``: mean MIDI pitch;
- ``polyphony``: mean number of sounding notes over the sixteenth steps where anything sounds;
- ``onset_density``: fraction of sixteenth steps with at least one onset;
- ``range``: highest minus lowest pitch.

Image descriptors: ``luminance`` (mean Rec. 601 luminance, 0..255) and ``luminance_std``.

Direction: per anchor, the least-squares slope of a descriptor against alpha (the alpha-0 point
included). A transformation has a *consistent* direction for a descriptor when the slope has the
same sign on every anchor. It is called flat on an anchor when the descriptor changes by less than
1 % of its baseline over the whole sweep.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from live.anchors import Anchor, default_anchors
from live.notes import DURATION, ONSET, PITCH
from live.transform import adjust
from live.vis2mus import Vis2Mus

MUSIC = ("notes_per_bar", "mean_pitch", "polyphony", "onset_density", "range")
IMAGE = ("luminance", "luminance_std")
DEFAULT_SWEEP = (-1.0, -0.5, 0.5, 1.0)
_LUMA = np.array([0.299, 0.587, 0.114])


def music_descriptors(notes: np.ndarray, n_steps: int) -> dict[str, float]:
    """Descriptors of a note list ``(N, 4)`` spanning ``n_steps`` sixteenths (16 per bar)."""
    if len(notes) == 0:
        return {"notes_per_bar": 0.0, "mean_pitch": 0.0, "polyphony": 0.0, "onset_density": 0.0, "range": 0.0}
    sounding = np.zeros(n_steps, dtype=np.int64)
    for onset, duration in notes[:, [ONSET, DURATION]]:
        sounding[onset : min(n_steps, onset + duration)] += 1
    active = sounding > 0
    return {
        "notes_per_bar": float(len(notes) / (n_steps / 16)),
        "mean_pitch": float(notes[:, PITCH].mean()),
        "polyphony": float(sounding[active].mean()) if active.any() else 0.0,
        "onset_density": float(len(np.unique(notes[:, ONSET])) / n_steps),
        "range": float(notes[:, PITCH].max() - notes[:, PITCH].min()),
    }


def image_descriptors(image: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of the luminance of an ``(H, W, 3)`` image."""
    lum = image.reshape(-1, 3).astype(np.float64) @ _LUMA
    return {"luminance": float(lum.mean()), "luminance_std": float(lum.std())}


def _render(v2m: Vis2Mus, anchor: Anchor, alpha_b: float, alpha_c: float) -> dict[str, float]:
    segments = v2m.render(anchor, alpha_b, alpha_c, list(range(anchor.n_segments)))
    n_steps = anchor.n_segments * 32
    parts = []
    for seg in segments:
        shifted = seg.accompaniment.copy()
        shifted[:, ONSET] += seg.index * 32
        parts.append(shifted)
    notes = np.concatenate(parts) if parts else np.zeros((0, 4), np.int32)
    return {**music_descriptors(notes, n_steps), **image_descriptors(adjust(anchor.image, alpha_b, alpha_c))}


def _direction(alphas: list[float], values: list[float], baseline: float) -> int:
    """Sign of the least-squares slope of ``values`` against ``alphas`` (0 when flat)."""
    if max(values) - min(values) < 0.01 * max(abs(baseline), 1e-9):
        return 0
    return int(np.sign(np.polyfit(alphas, values, 1)[0]))


def equivariance(v2m: Vis2Mus, anchors: dict[str, Anchor], brightness: list[float] | None = None,
                 contrast: list[float] | None = None, progress=print) -> dict:
    """Descriptors, changes and directions for every anchor; a JSON-serialisable dict."""
    sweeps = {"brightness": sorted(set(brightness or DEFAULT_SWEEP) - {0.0}),
              "contrast": sorted(set(contrast or DEFAULT_SWEEP) - {0.0})}
    report = {"descriptors": {"music": MUSIC, "image": IMAGE}, "sweeps": sweeps, "anchors": {}, "summary": {}}
    for name, anchor in anchors.items():
        baseline = _render(v2m, anchor, 0.0, 0.0)
        original = music_descriptors(anchor.accompaniment, anchor.n_segments * 32)
        entry = {"original": original, "baseline": baseline, "rows": []}
        for kind, alphas in sweeps.items():
            for alpha in alphas:
                pair = (alpha, 0.0) if kind == "brightness" else (0.0, alpha)
                values = _render(v2m, anchor, *pair)
                delta = {k: values[k] - baseline[k] for k in values}
                entry["rows"].append({"transform": kind, "alpha": alpha, "values": values, "delta": delta})
            progress(f"{name}: {kind} sweep done")
        report["anchors"][name] = entry
    for kind, alphas in sweeps.items():
        summary = {}
        for key in MUSIC + IMAGE:
            signs = {}
            for name, entry in report["anchors"].items():
                rows = [r for r in entry["rows"] if r["transform"] == kind]
                xs = [0.0] + [r["alpha"] for r in rows]
                ys = [entry["baseline"][key]] + [r["values"][key] for r in rows]
                signs[name] = _direction(xs, ys, entry["baseline"][key])
            values = set(signs.values())
            if values == {1}:
                verdict = "consistent: increases"
            elif values == {-1}:
                verdict = "consistent: decreases"
            elif values == {0}:
                verdict = "no change"
            else:
                counts = [sum(v == s for v in signs.values()) for s in (1, -1, 0)]
                verdict = f"mixed ({counts[0]} up, {counts[1]} down, {counts[2]} flat)"
            summary[key] = {"per_anchor": signs, "verdict": verdict}
        report["summary"][kind] = summary
    return report


def format_report(report: dict) -> str:
    """The report as plain-text tables: per anchor and alpha the changes, then the verdicts."""
    keys = MUSIC + IMAGE
    short = {"notes_per_bar": "notes/bar", "mean_pitch": "pitch", "polyphony": "poly", "onset_density": "onsets",
             "range": "range", "luminance": "img lum", "luminance_std": "img std"}
    header = f"{'anchor':<14} {'transform':<10} {'alpha':>6} " + " ".join(f"{short[k]:>9}" for k in keys)
    lines = ["Changes against the same anchor decoded at alpha 0:", header, "-" * len(header)]
    for name, entry in report["anchors"].items():
        base = entry["baseline"]
        composed = entry["original"]
        lines.append(f"{name:<14} {'composed':<10} {'':>6} " + " ".join(f"{composed[k]:>9.2f}" for k in MUSIC)
                     + "   (the anchor's own notes)")
        lines.append(f"{'':<14} {'alpha 0':<10} {'':>6} " + " ".join(f"{base[k]:>9.2f}" for k in keys)
                     + "   (decoded: the baseline)")
        for row in entry["rows"]:
            lines.append(f"{'':<14} {row['transform']:<10} {row['alpha']:>+6.2f} "
                         + " ".join(f"{row['delta'][k]:>+9.2f}" for k in keys))
    lines.append("")
    lines.append("Direction across anchors (sign of the slope against alpha):")
    for kind, summary in report["summary"].items():
        for key in keys:
            lines.append(f"  {kind:<10} {short[key]:<9} {summary[key]['verdict']}")
    return "\n".join(lines)


def run_report(v2m: Vis2Mus, out: Path, brightness: list[float] | None = None,
               contrast: list[float] | None = None) -> dict:
    """Compute the report on the shipped anchors, print it, write ``equivariance.json`` and
    ``equivariance.txt`` into ``out``."""
    report = equivariance(v2m, default_anchors(), brightness, contrast,
                          progress=lambda line: print(line, flush=True))
    text = format_report(report)
    out.mkdir(parents=True, exist_ok=True)
    (out / "equivariance.json").write_text(json.dumps(report, indent=2))
    (out / "equivariance.txt").write_text(text + "\n")
    print(text)
    print(f"wrote {out / 'equivariance.json'} and {out / 'equivariance.txt'}")
    return report
