"""Image -> alpha: estimate recovers the alphas that live.texture.transform applied (live.control.alpha)."""

import math

import cv2
import numpy as np
import pytest

from live.control.alpha import Smoother, estimate
from live.texture.transform import adjust

ALPHAS = np.linspace(-1.0, 1.0, 9)


def scene(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """A photo-like test picture: colour gradients, a bright block, a dark disc, sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([60 + 100 * xx / width, 50 + 120 * yy / height, 140 - 60 * xx / width], axis=-1)
    image[height // 4 : height // 2, width // 3 : 2 * width // 3] += [50, 20, -30]
    image[(yy - 3 * height // 4) ** 2 + (xx - width // 4) ** 2 < (height // 8) ** 2] *= 0.4
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def test_identical_frame_gives_zero():
    image = scene()
    alpha_b, alpha_c = estimate(image, image)
    assert abs(alpha_b) < 0.01 and abs(alpha_c) < 0.01


def test_recovers_every_alpha_pair_from_a_smaller_frame():
    image = scene()
    worst = 0.0
    for alpha_b in ALPHAS:
        for alpha_c in ALPHAS:
            frame = cv2.resize(adjust(image, alpha_b, alpha_c), (200, 150), interpolation=cv2.INTER_AREA)
            got_b, got_c = estimate(image, frame)
            assert -1.0 <= got_b <= 1.0 and -1.0 <= got_c <= 1.0
            worst = max(worst, abs(got_b - alpha_b), abs(got_c - alpha_c))
            assert abs(got_b - alpha_b) <= 0.05 and abs(got_c - alpha_c) <= 0.05, (alpha_b, alpha_c, got_b, got_c)
    print(f"worst error over the 9 x 9 grid: {worst:.3f}")


@pytest.mark.parametrize("alpha_b,alpha_c", [(-0.6, 0.4), (0.5, -0.5), (0.25, 0.75), (-1.0, -1.0), (1.0, 1.0)])
def test_recovers_alphas_from_a_larger_frame_of_a_larger_reference(alpha_b, alpha_c):
    image = scene(480, 640, seed=3)
    frame = cv2.resize(adjust(image, alpha_b, alpha_c), (800, 600), interpolation=cv2.INTER_LINEAR)
    got_b, got_c = estimate(image, frame)
    assert got_b == pytest.approx(alpha_b, abs=0.05)
    assert got_c == pytest.approx(alpha_c, abs=0.05)


def test_fully_saturated_frames_report_brightness_only():
    image = scene()
    assert estimate(image, np.full((30, 40, 3), 255, np.uint8)) == (1.0, 0.0)
    assert estimate(image, np.zeros((30, 40, 3), np.uint8)) == (-1.0, 0.0)


def test_direction_is_right_for_a_real_photo_edit_it_did_not_make():
    image = scene()
    brighter = np.clip(image.astype(np.int16) + 60, 0, 255).astype(np.uint8)
    flatter = (0.5 * image + 0.5 * image.mean()).astype(np.uint8)
    assert estimate(image, brighter)[0] > 0.3
    assert estimate(image, flatter)[1] < -0.3


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match=r"frame must be an \(H, W, 3\) image"):
        estimate(scene(), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="reference"):
        estimate(np.full((4, 4, 3), np.nan), scene())


def test_smoother_follows_an_exponential():
    smoother = Smoother(0.5)
    assert smoother.update(1.0, 10.0) == 1.0
    assert smoother.update(0.0, 10.5) == pytest.approx(math.exp(-1.0))
    assert smoother.update(0.0, 11.0) == pytest.approx(math.exp(-2.0))
    pair = Smoother(1.0)
    pair.update((0.0, 1.0), 0.0)
    np.testing.assert_allclose(pair.update((1.0, 0.0), 1.0), [1 - math.exp(-1.0), math.exp(-1.0)])


def test_smoother_without_time_constant_passes_through_and_rejects_nan():
    smoother = Smoother(0.0)
    smoother.update(0.3, 0.0)
    assert smoother.update(-0.7, 0.01) == -0.7
    with pytest.raises(ValueError, match="finite"):
        smoother.update(math.nan, 0.02)
    with pytest.raises(ValueError, match="time constant"):
        Smoother(-1.0)
