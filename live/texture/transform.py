"""Brightness and contrast, the Vis2Mus paper's eq. (1) and (2), per channel.

One implementation (on channel-first planes) acts on two kinds of arrays:

- texture feature maps ``(10, 8, 29)`` or batches ``(B, 10, 8, 29)`` (channels first; the
  statistics are taken over each channel's ``8 x 29`` cells; results are clamped at 0, as the
  map comes out of a ReLU);
- images ``(H, W, 3)`` (colour channels last; statistics over each colour plane). A ``uint8``
  image is clipped to ``0..255`` and stays ``uint8``; a float image is taken to be in ``[0, 1]``
  and is clipped to it.

Per channel ``x`` (eq. 1, then eq. 2 on the result)::

    brightness:  x' = x + alpha_b / 2 * max(x)
    contrast:    x' = mean(x) + (x - mean(x)) * (1 + alpha_c)

``alpha`` is a finite number in ``[-1, 1]``; 0 leaves the input unchanged.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from live.music.notes import FEATURE_MAP_SHAPE

ALPHA_RANGE = (-1.0, 1.0)
"""The range of alpha_b and alpha_c (0 leaves the feature map as it is)."""


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """``alpha`` as a float; ``ValueError`` (one line) unless it is a finite number in [-1, 1]."""
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise ValueError(f"{name} must be a number in [-1, 1], got {alpha!r}")
    value = float(alpha)
    if not math.isfinite(value) or not -1.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a finite number in [-1, 1], got {value!r}")
    return value


def _is_image(x: np.ndarray) -> bool:
    return x.ndim == 3 and x.shape[-1] == 3


def _check_shape(x: np.ndarray) -> None:
    if not _is_image(x) and not (x.ndim in (3, 4) and x.shape[-3:] == FEATURE_MAP_SHAPE):
        raise ValueError(
            f"expected a feature map (10, 8, 29), a batch (B, 10, 8, 29) or an image (H, W, 3); got shape {x.shape}"
        )


def _as_float(x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x)
    if arr.size == 0:
        raise ValueError(f"cannot transform an empty array of shape {arr.shape}")
    if arr.dtype != np.uint8 and not np.isfinite(arr).all():
        raise ValueError("input contains NaN or infinite values")
    return arr


def _finish(original: np.ndarray, values: np.ndarray, high: float) -> np.ndarray:
    """Clip to ``[0, high]`` and return in the input's dtype (uint8 rounded)."""
    np.clip(values, 0.0, high, out=values)
    if original.dtype == np.uint8:
        return np.rint(values).astype(np.uint8)
    return values.astype(original.dtype if original.dtype.kind == "f" else np.float32, copy=False)


def _brightness(values: np.ndarray, alpha: float, high: float) -> np.ndarray:
    """Eq. (1) on channel-first ``values`` ``(..., C, H, W)``."""
    peak = values.max(axis=(-2, -1), keepdims=True)
    return np.clip(values + alpha / 2.0 * peak, 0.0, high)


def _contrast(values: np.ndarray, factor: float, high: float) -> np.ndarray:
    """Eq. (2) on channel-first ``values`` ``(..., C, H, W)`` with ``factor = 1 + alpha``."""
    mean = values.mean(axis=(-2, -1), keepdims=True)
    return np.clip(mean + (values - mean) * factor, 0.0, high)


def brightness(x: np.ndarray, alpha: float) -> np.ndarray:
    """Eq. (1) per channel: ``x + alpha/2 * max(x)``, clamped; same shape and dtype as ``x``."""
    return adjust(x, alpha, 0.0)


def contrast(x: np.ndarray, alpha: float) -> np.ndarray:
    """Eq. (2) per channel: ``mean + (x - mean) * (1 + alpha)``, clamped; same shape and dtype."""
    return adjust(x, 0.0, alpha)


def adjust(x: np.ndarray, alpha_b: float, alpha_c: float) -> np.ndarray:
    """Brightness ``alpha_b`` then contrast ``alpha_c`` (each clamped after it), per channel.

    ``x``: feature map ``(10, 8, 29)``, batch ``(B, 10, 8, 29)`` or image ``(H, W, 3)``.
    Returns a new array of the same shape and dtype.
    """
    alpha_b = check_alpha(alpha_b, "brightness alpha")
    alpha_c = check_alpha(alpha_c, "contrast alpha")
    return adjust_factor(x, alpha_b, 1.0 + alpha_c)


def adjust_factor(x: np.ndarray, alpha_b: float, factor: float) -> np.ndarray:
    """:func:`adjust` with eq. (2)'s ``1 + alpha_c`` given as ``factor`` (finite, >= 0), so that
    contrast can reach beyond 2x. Same shapes, dtypes and clamping as :func:`adjust`."""
    alpha_b = check_alpha(alpha_b, "brightness alpha")
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not math.isfinite(factor) or factor < 0:
        raise ValueError(f"contrast factor must be a finite number >= 0, got {factor!r}")
    arr = _as_float(x)
    _check_shape(arr)
    image = _is_image(arr)
    high = (255.0 if arr.dtype == np.uint8 else 1.0) if image else math.inf
    planes = np.moveaxis(arr, -1, 0) if image else arr
    values = np.array(planes, dtype=np.float64 if arr.dtype == np.float64 else np.float32, order="C")
    if alpha_b != 0.0:
        values = _brightness(values, alpha_b, high)
    if factor != 1.0:
        values = _contrast(values, float(factor), high)
    out = _finish(arr, values, high)
    return np.ascontiguousarray(np.moveaxis(out, 0, -1)) if image else out
