"""Fader feel: how the music answers each fader, measured on 21-point sweeps of an anchor.

The measures are the ones of the fader-feel issue (the same definitions as the project's
``fader_feel.py`` tool, which reads them back from ``vis2mus-render`` MIDI files). Notes are
compared by ``(onset step, pitch)``; a sweep is 21 alphas ``-1, -0.9, ..., +1`` of one fader
with the other at 0.

- ``continuity``: the smallest note F1 against the anchor at ±0.1 of either fader (goal >= 0.8);
- ``direction``: Spearman rho of notes per bar against brightness (goal >= 0.8);
- ``even``: the largest change of notes per bar inside any quarter of the brightness travel, as a
  share of the whole sweep's change (goal <= 0.5);
- ``contrast``: the share of notes that differ from contrast 0 at contrast ±1, the smaller side
  (goal >= 0.3);
- ``extreme``: the share of accompaniment notes below E1 (28) or above E7 (100) over both sweeps
  (goal <= 0.02);
- ``duration``: mean note length at ±0.1 against the anchor's, the smallest ratio (goal 0.6..1.6);
- ``melody``: the share of melody notes above every accompaniment note sounding at their onset, at
  brightness +0.5 and +1 (goal >= 0.9; NaN when nothing plays a melody);
- ``levels``: the share of the anchor's velocity levels that the renders at brightness ±0.5 use
  (goal >= 0.5, this report's own: velocities follow the anchor's dynamics).

The report adds style mode, every shipped content piece on the anchor's texture:
``style_melody`` (``melody`` over a whole brightness sweep) and ``style_continuity``
(``continuity`` against the style render at 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from live.music.notes import DURATION, ONSET, PITCH, VELOCITY, join_segments
from live.texture.register import DEFAULT_RANGE

ALPHAS = tuple(round(float(x), 1) for x in np.linspace(-1.0, 1.0, 21))
EXTREME = DEFAULT_RANGE
MEASURES = ("continuity", "direction", "even", "contrast", "extreme", "duration", "melody", "levels")
GOALS = {
    "continuity": (0.8, math.inf),
    "direction": (0.8, math.inf),
    "even": (-math.inf, 0.5),
    "contrast": (0.3, math.inf),
    "extreme": (-math.inf, 0.02),
    "duration": (0.6, 1.6),
    "melody": (0.9, math.inf),
    "levels": (0.5, math.inf),
}
"""measure -> the (low, high) bounds of its goal (inclusive)."""


@dataclass
class Sweep:
    """One fader's sweep of an anchor: per alpha of :data:`ALPHAS`, the accompaniment and the
    melody as absolute-onset note lists ``(N, 4)``; ``n_bars`` the piece's length."""

    accompaniment: dict[float, np.ndarray]
    melody: dict[float, np.ndarray]
    n_bars: int


def note_f1(a: np.ndarray, b: np.ndarray) -> float:
    """F1 of two note lists ``(N, 4)`` compared by ``(onset, pitch)``; 1 when both are empty."""
    keys_a = set(map(tuple, a[:, [ONSET, PITCH]].tolist()))
    keys_b = set(map(tuple, b[:, [ONSET, PITCH]].tolist()))
    if not keys_a and not keys_b:
        return 1.0
    if not keys_a or not keys_b:
        return 0.0
    return 2.0 * len(keys_a & keys_b) / (len(keys_a) + len(keys_b))


def spearman(x, y) -> float:
    """Spearman rank correlation (ties get mean ranks); 0 when ``y`` is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(np.unique(y)) < 2 or len(np.unique(x)) < 2:
        return 0.0
    return float(np.corrcoef(_ranks(x), _ranks(y))[0, 1])


def _ranks(v: np.ndarray) -> np.ndarray:
    order = np.argsort(v, kind="stable")
    ranks = np.empty(len(v))
    ranks[order] = np.arange(len(v))
    for value in np.unique(v):
        ranks[v == value] = ranks[v == value].mean()
    return ranks


def largest_quarter_share(counts) -> float:
    """The largest change of ``counts`` (21 values) over any 5 consecutive steps, as a share of
    the change between the ends; inf when the ends are equal."""
    counts = np.asarray(counts, float)
    total = abs(counts[-1] - counts[0])
    if total == 0:
        return math.inf
    quarter = (len(counts) - 1) // 4
    return float(np.max(np.abs(counts[quarter:] - counts[:-quarter])) / total)


def melody_on_top(accompaniment: np.ndarray, melody: np.ndarray) -> list[bool]:
    """Per melody note: is it above every accompaniment note sounding at its onset?"""
    out = []
    starts, ends, pitches = (accompaniment[:, ONSET], accompaniment[:, ONSET] + accompaniment[:, DURATION],
                             accompaniment[:, PITCH])
    for onset, pitch in melody[:, [ONSET, PITCH]]:
        sounding = (starts <= onset) & (onset < ends)
        out.append(bool(not sounding.any() or pitch > pitches[sounding].max()))
    return out


def measure(brightness: Sweep, contrast: Sweep) -> dict[str, float]:
    """The measures of one anchor (see the module docstring) from its two sweeps; the anchor is
    what plays at alpha 0."""
    sweeps = (brightness, contrast)
    anchor_notes = brightness.accompaniment[0.0]
    near = [s.accompaniment[x] for s in sweeps for x in (-0.1, 0.1)]
    counts = [len(brightness.accompaniment[x]) / brightness.n_bars for x in ALPHAS]
    zero = contrast.accompaniment[0.0]
    every = np.concatenate([s.accompaniment[x] for s in sweeps for x in ALPHAS])
    base_len = anchor_notes[:, DURATION].mean() if len(anchor_notes) else 0.0
    ratios = [n[:, DURATION].mean() / base_len for n in near if len(n)] if base_len else []
    above = [ok for x in (0.5, 1.0)
             for ok in melody_on_top(brightness.accompaniment[x], brightness.melody[x])]
    return {
        "continuity": min(note_f1(anchor_notes, n) for n in near),
        "direction": spearman(ALPHAS, counts),
        "even": largest_quarter_share(counts),
        "contrast": min(1.0 - note_f1(contrast.accompaniment[1.0], zero),
                        1.0 - note_f1(contrast.accompaniment[-1.0], zero)),
        "extreme": float(np.mean((every[:, PITCH] < EXTREME[0]) | (every[:, PITCH] > EXTREME[1])))
        if len(every) else 0.0,
        "duration": min(ratios) if ratios else 0.0,
        "melody": float(np.mean(above)) if above else math.nan,
        "levels": _levels_kept(anchor_notes, [brightness.accompaniment[x] for x in (-0.5, 0.5)]),
    }


def _levels_kept(anchor_notes: np.ndarray, renders: list[np.ndarray]) -> float:
    levels = set(anchor_notes[:, VELOCITY].tolist())
    used = set(np.concatenate(renders)[:, VELOCITY].tolist()) if renders else set()
    return len(levels & used) / len(levels) if levels else math.nan


def meets(name: str, value: float) -> bool:
    """Whether ``value`` meets the goal of measure ``name`` (a NaN melody measure counts as met)."""
    if math.isnan(value):
        return name == "melody"
    low, high = GOALS[name]
    return low <= value <= high


# sweeps and the report of ``vis2mus-render --feel``

CURVES = ("notes_per_bar", "pitch_range", "mean_length", "change")
_CURVE_LABELS = {"notes_per_bar": "notes per bar", "pitch_range": "pitch range (semitones)",
                 "mean_length": "mean note length (sixteenths)", "change": "change against the anchor (1 - F1)"}


def sweep(v2m, anchor, fader: str, content=None) -> Sweep:
    """Render every segment of ``anchor`` at each alpha of :data:`ALPHAS` on ``fader``
    ("brightness" or "contrast"; the other at 0). The melody is what plays with it: the content's
    in style mode, else the anchor's own melody."""
    accompaniment, melody = {}, {}
    n = v2m.n_segments(anchor, content)
    for alpha in ALPHAS:
        pair = (alpha, 0.0) if fader == "brightness" else (0.0, alpha)
        segments = v2m.render(anchor, *pair, list(range(n)), content=content)
        accompaniment[alpha] = join_segments([s.accompaniment for s in segments])
        melody[alpha] = join_segments([s.melody for s in segments])
    return Sweep(accompaniment, melody, 2 * n)


def curves(s: Sweep) -> dict[str, np.ndarray]:
    """The response curves of a sweep, one value per alpha of :data:`ALPHAS` ``(21,)`` each."""
    zero = s.accompaniment[0.0]
    out = {name: [] for name in CURVES}
    for alpha in ALPHAS:
        notes = s.accompaniment[alpha]
        out["notes_per_bar"].append(len(notes) / s.n_bars)
        out["pitch_range"].append(float(np.ptp(notes[:, PITCH])) if len(notes) else 0.0)
        out["mean_length"].append(float(notes[:, DURATION].mean()) if len(notes) else 0.0)
        out["change"].append(1.0 - note_f1(zero, notes))
    return {name: np.asarray(values) for name, values in out.items()}


def style_feel(v2m, anchor, contents) -> tuple[float, float]:
    """Style mode, every content piece of ``contents`` on ``anchor``'s texture: the share of melody
    notes on top (:func:`melody_on_top`) over a whole brightness sweep, and the smallest note F1
    at ±0.1 of either fader against the style render at 0. NaNs without contents."""
    above, near = [], []
    for content in contents:
        s = sweep(v2m, anchor, "brightness", content)
        for alpha in ALPHAS:
            above += melody_on_top(s.accompaniment[alpha], s.melody[alpha])
        c = sweep(v2m, anchor, "contrast", content)
        zero = s.accompaniment[0.0]
        near += [note_f1(zero, x.accompaniment[a]) for x in (s, c) for a in (-0.1, 0.1)]
    return (float(np.mean(above)) if above else math.nan, min(near) if near else math.nan)


def anchor_feel(v2m, anchor, contents=()) -> tuple[dict[str, float], dict[str, dict[str, np.ndarray]]]:
    """Measures (with ``style_melody``) and response curves per fader of one anchor."""
    sweeps = {fader: sweep(v2m, anchor, fader) for fader in ("brightness", "contrast")}
    values = measure(sweeps["brightness"], sweeps["contrast"])
    values["style_melody"], values["style_continuity"] = style_feel(v2m, anchor, contents)
    return values, {fader: curves(s) for fader, s in sweeps.items()}


def plot_curves(path, title: str, by_mode: dict[str, dict[str, dict[str, np.ndarray]]]) -> None:
    """A PNG of the response curves: one panel per :data:`CURVES` entry, brightness and contrast,
    one line style per mode (``by_mode``: mode -> fader -> curve -> ``(21,)``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(CURVES), figsize=(4.2 * len(CURVES), 3.4), constrained_layout=True)
    colours = {"brightness": "tab:orange", "contrast": "tab:blue"}
    styles = {"feel": "-", "paper": ":"}
    for ax, name in zip(axes, CURVES):
        for mode, faders in by_mode.items():
            for fader, values in faders.items():
                ax.plot(ALPHAS, values[name], styles.get(mode, "--"), color=colours[fader], marker=".",
                        markersize=4, label=f"{fader} ({mode})")
        ax.set_title(_CURVE_LABELS[name], fontsize=10)
        ax.set_xlabel("fader")
        ax.axvline(0.0, color="0.8", linewidth=0.8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=90)
    plt.close(fig)


COLUMNS = MEASURES + ("style_melody", "style_continuity")
_STYLE_GOALS = {"style_melody": "melody", "style_continuity": "continuity"}


def format_value(name: str, value: float) -> str:
    """A measure as the report prints it, starred when its goal is missed."""
    if math.isnan(value):
        return "-"
    text = f"{value:.3f}" if name == "extreme" else ("inf" if math.isinf(value) else f"{value:.2f}")
    goal = _STYLE_GOALS.get(name, name)
    return text if meets(goal, value) else text + "*"


def summary(rows: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per measure over ``rows`` (anchor -> measures): ``min``, ``max`` and ``missed`` (anchors
    whose goal is missed); NaN values are left out."""
    out = {}
    for name in COLUMNS:
        goal = _STYLE_GOALS.get(name, name)
        values = [r[name] for r in rows.values() if not math.isnan(r[name])]
        out[name] = {"min": min(values) if values else math.nan, "max": max(values) if values else math.nan,
                     "missed": sum(not meets(goal, v) for v in values), "anchors": len(values)}
    return out


def run_report(modes: dict, anchors: dict, contents: list, out) -> dict:
    """The ``--feel`` report: for each anchor a PNG of its response curves (``<name>_feel.png``,
    every mode of ``modes``: name -> ``Vis2Mus``), and the measures per mode and anchor in
    ``feel.txt`` (printed too) and ``feel.json``. Returns what ``feel.json`` holds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, dict[str, float]]] = {mode: {} for mode in modes}
    for name, anchor in anchors.items():
        by_mode = {}
        for mode, v2m in modes.items():
            rows[mode][name], by_mode[mode] = anchor_feel(v2m, anchor, contents)
        plot_curves(out / f"{name}_feel.png", f"{name}: fader response ({' vs '.join(modes)})", by_mode)
        print(f"{name}: " + "  ".join(f"{mode} " + " ".join(format_value(c, rows[mode][name][c]) for c in COLUMNS)
                                       for mode in modes), flush=True)
    lines = [f"fader feel over {len(anchors)} anchors ({', '.join(modes)}); * = goal missed",
             "goals: " + ", ".join(f"{c} {_goal_text(c)}" for c in COLUMNS), "",
             f"{'anchor':18s} {'mode':6s} " + " ".join(f"{c:>12s}" for c in COLUMNS)]
    for name in anchors:
        for mode in modes:
            lines.append(f"{name:18s} {mode:6s} " + " ".join(f"{format_value(c, rows[mode][name][c]):>12s}" for c in COLUMNS))
    lines.append("")
    totals = {mode: summary(rows[mode]) for mode in modes}
    for mode in modes:
        lines.append(f"{'all (min..max, missed)':18s} {mode:6s} " + " ".join(
            f"{_range_text(c, totals[mode][c]):>12s}" for c in COLUMNS))
    text = "\n".join(lines) + "\n"
    (out / "feel.txt").write_text(text)
    print(text, end="")
    report = {"anchors": list(anchors), "rows": rows, "summary": totals}
    (out / "feel.json").write_text(json.dumps(report, indent=2, allow_nan=True))
    return report


def _goal_text(name: str) -> str:
    low, high = GOALS[_STYLE_GOALS.get(name, name)]
    if math.isinf(high):
        return f">= {low:g}"
    return f"<= {high:g}" if math.isinf(low) else f"{low:g}..{high:g}"


def _range_text(name: str, cell: dict[str, float]) -> str:
    if not cell["anchors"]:
        return "-"
    low, high = format_value(name, cell["min"]).rstrip("*"), format_value(name, cell["max"]).rstrip("*")
    return f"{low}..{high} {cell['missed']}" if cell["missed"] else f"{low}..{high}"
