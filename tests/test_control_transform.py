"""Eq. (1)/(2) of the Vis2Mus paper on feature maps and images (live.texture.transform)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from live.texture.transform import adjust, brightness, contrast


def feature_map(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    fmap = rng.gamma(1.5, 1.0, size=(10, 8, 29)).astype(np.float32)
    fmap[rng.random(fmap.shape) < 0.6] = 0.0
    return fmap


def test_brightness_known_values_on_a_feature_map():
    fmap = np.zeros((10, 8, 29), np.float32)
    fmap[:, 0, 0] = np.arange(1, 11)
    fmap[:, 3, 7] = 0.5
    out = brightness(fmap, 0.5)
    for c in range(10):
        peak = c + 1.0
        assert out[c, 0, 0] == pytest.approx(peak + 0.25 * peak)
        assert out[c, 3, 7] == pytest.approx(0.5 + 0.25 * peak)
        assert out[c, 5, 5] == pytest.approx(0.25 * peak)


def test_negative_brightness_clamps_at_zero():
    fmap = np.zeros((10, 8, 29), np.float32)
    fmap[:, 0, 0] = 4.0
    fmap[:, 1, 0] = 1.0
    out = brightness(fmap, -1.0)
    assert np.all(out[:, 0, 0] == pytest.approx(2.0))
    assert np.all(out[:, 1, 0] == 0.0)
    assert out.min() == 0.0


def test_contrast_known_values_on_a_feature_map():
    fmap = np.zeros((10, 8, 29), np.float32)
    fmap[:, 0, 0] = 232.0
    out = contrast(fmap, 0.5)
    mean = 1.0
    assert out[0, 0, 0] == pytest.approx(mean + (232.0 - mean) * 1.5)
    assert out[0, 1, 1] == pytest.approx(0.0)
    out = contrast(fmap, -0.5)
    assert out[0, 0, 0] == pytest.approx(mean + (232.0 - mean) * 0.5)
    assert out[0, 1, 1] == pytest.approx(0.5)


def test_contrast_minus_one_flattens_each_channel_to_its_mean():
    fmap = feature_map(1)
    out = contrast(fmap, -1.0)
    np.testing.assert_allclose(out, np.broadcast_to(fmap.mean(axis=(1, 2), keepdims=True), fmap.shape), rtol=1e-5)


def test_adjust_is_brightness_then_contrast_and_batches_match_single_maps():
    maps = np.stack([feature_map(s) for s in range(3)])
    batch = adjust(maps, 0.3, -0.4)
    for i in range(3):
        np.testing.assert_allclose(batch[i], contrast(brightness(maps[i], 0.3), -0.4), rtol=1e-6)
    assert batch.shape == (3, 10, 8, 29) and batch.dtype == np.float32


def test_zero_alphas_are_the_identity():
    fmap = feature_map(2)
    np.testing.assert_array_equal(adjust(fmap, 0.0, 0.0), fmap)
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(adjust(image, 0.0, 0.0), image)


def test_uint8_image_per_channel_clipped_and_stays_uint8():
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0] = [[100, 200], [0, 50]]
    image[..., 1] = 10
    image[..., 2] = [[0, 0], [0, 80]]
    out = brightness(image, 1.0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], [[200, 255], [100, 150]])
    np.testing.assert_array_equal(out[..., 1], 15)
    np.testing.assert_array_equal(out[..., 2], [[40, 40], [40, 120]])
    out = contrast(image, 1.0)
    np.testing.assert_array_equal(out[..., 0], [[112, 255], [0, 12]])


def test_float_image_is_clipped_to_unit_range():
    image = np.full((3, 3, 3), 0.8, np.float32)
    image[0, 0] = 0.2
    out = brightness(image, 1.0)
    assert out.dtype == np.float32
    assert out.max() == 1.0
    assert out[0, 0, 0] == pytest.approx(0.6)


@pytest.mark.parametrize("alpha", [math.nan, math.inf, -math.inf, 1.01, -1.5, "0.3", None])
def test_bad_alpha_is_rejected_with_one_line(alpha):
    with pytest.raises(ValueError) as info:
        adjust(feature_map(), alpha, 0.0)
    assert "\n" not in str(info.value) and "brightness alpha" in str(info.value)
    with pytest.raises(ValueError, match="contrast alpha"):
        contrast(feature_map(), alpha)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="expected a feature map"):
        adjust(np.zeros((4, 5)), 0.1, 0.1)
    bad = feature_map()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        adjust(bad, 0.1, 0.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1), st.integers(0, 10_000))
def test_feature_map_results_are_non_negative_and_channel_independent(alpha_b, alpha_c, seed):
    fmap = feature_map(seed)
    out = adjust(fmap, alpha_b, alpha_c)
    assert out.min() >= 0.0
    changed = fmap.copy()
    changed[3] *= 2.0
    out2 = adjust(changed, alpha_b, alpha_c)
    keep = [c for c in range(10) if c != 3]
    np.testing.assert_array_equal(out[keep], out2[keep])
