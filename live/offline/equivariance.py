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

Direction: per anchor, the Spearman rank correlation rho of a descriptor with alpha (the alpha-0
point included; +1 = rises monotonically with alpha). A transformation has a *consistent*
direction for a descriptor when rho has the same sign on every anchor. It is flat on an anchor
when the descriptor changes by less than 1 % of its baseline over the whole sweep. A U-shaped
response (both directions raise the descriptor) gives rho near 0, which counts as mixed. The
summary also gives the mean rho across anchors. An empty decoded piece has no mean pitch or range;
those points are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from live.music.notes import DURATION, ONSET, PITCH, STEPS
from live.texture.anchors import Anchor, default_anchors
from live.texture.transform import adjust
from live.texture.vis2mus import Vis2Mus

MUSIC = ("notes_per_bar", "mean_pitch", "polyphony", "onset_density", "range")
IMAGE = ("luminance", "luminance_std")
DEFAULT_SWEEP = (-1.0, -0.5, 0.5, 1.0)
_LUMA = np.array([0.299, 0.587, 0.114])


def music_descriptors(notes: np.ndarray, n_steps: int) -> dict[str, float | None]:
    """Descriptors of a note list ``(N, 4)`` spanning ``n_steps`` sixteenths (16 per bar); mean
    pitch and range are None for an empty piece."""
    if len(notes) == 0:
        return {"notes_per_bar": 0.0, "mean_pitch": None, "polyphony": 0.0, "onset_density": 0.0, "range": None}
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
    n_steps = anchor.n_segments * STEPS
    parts = []
    for seg in segments:
        shifted = seg.accompaniment.copy()
        shifted[:, ONSET] += seg.index * STEPS
        parts.append(shifted)
    notes = np.concatenate(parts) if parts else np.zeros((0, 4), np.int32)
    return {**music_descriptors(notes, n_steps), **image_descriptors(adjust(anchor.image, alpha_b, alpha_c))}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(alphas: list[float], values: list[float | None], baseline: float | None) -> float | None:
    """Spearman rank correlation of ``values`` with ``alphas`` over the defined values; 0 when the
    values move by less than 1 % of the baseline, None with fewer than 3 defined values."""
    pairs = [(a, v) for a, v in zip(alphas, values) if v is not None]
    if len(pairs) < 3:
        return None
    xs, ys = (np.array(p, dtype=float) for p in zip(*pairs))
    if ys.max() - ys.min() < 0.01 * max(abs(baseline or 0.0), 1e-9):
        return 0.0
    rx, ry = _ranks(xs), _ranks(ys)
    return float(np.corrcoef(rx, ry)[0, 1])


def equivariance(v2m: Vis2Mus, anchors: dict[str, Anchor], brightness: list[float] | None = None,
                 contrast: list[float] | None = None, progress=print) -> dict:
    """Descriptors, changes and directions for every anchor; a JSON-serialisable dict."""
    sweeps = {"brightness": sorted(set(brightness or DEFAULT_SWEEP) - {0.0}),
              "contrast": sorted(set(contrast or DEFAULT_SWEEP) - {0.0})}
    report = {"descriptors": {"music": MUSIC, "image": IMAGE}, "sweeps": sweeps, "anchors": {}, "summary": {}}
    for name, anchor in anchors.items():
        baseline = _render(v2m, anchor, 0.0, 0.0)
        original = music_descriptors(anchor.accompaniment, anchor.n_segments * STEPS)
        entry = {"original": original, "baseline": baseline, "rows": []}
        for kind, alphas in sweeps.items():
            for alpha in alphas:
                pair = (alpha, 0.0) if kind == "brightness" else (0.0, alpha)
                values = _render(v2m, anchor, *pair)
                delta = {k: None if values[k] is None or baseline[k] is None else values[k] - baseline[k]
                         for k in values}
                entry["rows"].append({"transform": kind, "alpha": alpha, "values": values, "delta": delta})
            progress(f"{name}: {kind} sweep done")
        report["anchors"][name] = entry
    for kind, alphas in sweeps.items():
        summary = {}
        for key in MUSIC + IMAGE:
            rhos = {}
            for name, entry in report["anchors"].items():
                rows = [r for r in entry["rows"] if r["transform"] == kind]
                xs = [0.0] + [r["alpha"] for r in rows]
                ys = [entry["baseline"][key]] + [r["values"][key] for r in rows]
                rhos[name] = spearman(xs, ys, entry["baseline"][key])
            summary[key] = {"per_anchor_rho": rhos, **_verdict(list(rhos.values()))}
        report["summary"][kind] = summary
    return report


def _verdict(rhos: list[float | None]) -> dict:
    """Mean rho and the consistency verdict over anchors."""
    known = [r for r in rhos if r is not None]
    up = sum(r > 0 for r in known)
    down = sum(r < 0 for r in known)
    flat = sum(r == 0 for r in known)
    if known and up == len(known):
        verdict = "consistent: increases"
    elif known and down == len(known):
        verdict = "consistent: decreases"
    elif known and flat == len(known):
        verdict = "no change"
    else:
        verdict = f"mixed ({up} up, {down} down, {flat} flat" + (f", {len(rhos) - len(known)} undefined)" if len(known) < len(rhos) else ")")
    return {"mean_rho": float(np.mean(known)) if known else None, "verdict": verdict}


def _cell(value: float | None, signed: bool = False) -> str:
    if value is None:
        return f"{'-':>9}"
    return f"{value:>+9.2f}" if signed else f"{value:>9.2f}"


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
        lines.append(f"{name:<14} {'composed':<10} {'':>6} " + " ".join(_cell(composed[k]) for k in MUSIC)
                     + "   (the anchor's own notes)")
        lines.append(f"{'':<14} {'alpha 0':<10} {'':>6} " + " ".join(_cell(base[k]) for k in keys)
                     + "   (decoded: the baseline)")
        for row in entry["rows"]:
            lines.append(f"{'':<14} {row['transform']:<10} {row['alpha']:>+6.2f} "
                         + " ".join(_cell(row["delta"][k], signed=True) for k in keys))
    lines.append("")
    lines.append("Direction across anchors (Spearman rho of each descriptor with alpha, per anchor):")
    for kind, summary in report["summary"].items():
        for key in keys:
            rho = summary[key]["mean_rho"]
            mean = f"mean rho {rho:+.2f}" if rho is not None else "mean rho  -  "
            lines.append(f"  {kind:<10} {short[key]:<9} {mean}   {summary[key]['verdict']}")
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
