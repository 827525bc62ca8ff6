"""How far each fader reaches in feel mode, and how its travel is shared out.

- Contrast gets reach on its positive side: the positive half of the fader scales the feature
  map's deviations from each channel's mean geometrically up to ``reach`` times
  (:func:`contrast_factor`), the negative half as in eq. (2) (down to flat). Eq. (2)'s own
  positive side (at most 2x) barely moves the decoder. The reach is set per anchor at load from
  the texture latent alone (no decoding, :func:`choose_reach`): the factor at which the latent has
  moved as far as the flat map moves it, or as far as contrast can move it at all.
- At load, each anchor is decoded at the alphas of :data:`GRID` on each side of each fader
  (``live.texture.relative`` turns those decodes into ordered note changes).
- At most :data:`CAPS` of the anchor's notes change at a fader's end, and :func:`share` hands out
  the changes in proportion to the travel, so equal travel gives an equal number of changes.
"""

from __future__ import annotations

import math

import numpy as np

REACH = 11.0
"""Contrast factor at the top of the positive side before calibration (upstream's image reach)."""
REACH_FACTORS = tuple(float(f) for f in np.geomspace(2.0, 1e4, 25))
"""Candidate reaches :func:`choose_reach` tries (the last one stands for "as far as it goes")."""
SATURATION = 0.9
"""Share of contrast's largest latent distance that counts as having gone as far as it goes."""
GRID = (0.25, 0.5, 0.75, 1.0)
"""|alpha| of the load-time decodes, on each side of 0."""
SIDES = ("brightness+", "brightness-", "contrast+", "contrast-")
CAPS = {
    "brightness+": (1.0, 0.0, False, True, True),
    "brightness-": (0.0, 0.75, True, False, False),
    "contrast+": (0.5, 0.5, True, False, False),
    "contrast-": (0.5, 0.5, True, False, False),
}
"""side -> (additions, removals, thin, upward, fill) at the fader's end, additions and removals as
shares of the anchor segment's notes; ``thin``: removals go on by rule where the model names too few;
``upward``: additions above the bass first; ``fill``: additions go on by rule (octave doublings)
where the model names too few (``live.texture.relative.moves``). Brighter adds up to
as many notes again, above the bass first, and never removes,
darker removes up to three quarters and never adds, so the texture's size follows brightness;
contrast replaces up to half: it changes the texture's character more than its size (and even where
the model adds nothing, its removals alone change a third of the notes)."""


def contrast_factor(alpha_c: float, reach: float = REACH) -> float:
    """Eq. (2)'s factor for a contrast alpha in [-1, 1]: ``1 + alpha`` below 0, ``reach ** alpha``
    above (``reach`` at +1)."""
    return 1.0 + alpha_c if alpha_c <= 0 else float(reach) ** alpha_c


def choose_reach(flat: float, distances) -> float:
    """The reach for an anchor from texture-latent distances to the unedited latent: ``flat`` at
    factor 0 and ``distances`` at each of :data:`REACH_FACTORS`. The first factor whose distance
    reaches ``min(flat, SATURATION * distances[-1])``."""
    distances = np.asarray(distances, float)
    target = min(flat, SATURATION * distances[-1])
    return REACH_FACTORS[int(np.argmax(distances >= target))]


def side(fader: str, u: float) -> str:
    """The :data:`SIDES` name of ``fader`` ("brightness" or "contrast") at position ``u`` != 0."""
    return f"{fader}{'+' if u > 0 else '-'}"


def share(u: float, available: int) -> int:
    """How many of ``available`` changes fader position ``u`` in [-1, 1] makes: ``|u| * available``
    rounded half up (0 at 0, all at ±1)."""
    return min(available, int(math.floor(abs(u) * available + 0.5)))
