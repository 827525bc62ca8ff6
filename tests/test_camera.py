"""live.control.camera: real video and image files (written here with OpenCV) drive alpha through live.control.alpha."""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from live.app.config import parse_settings
from live.control.camera import CameraSource, source_kind
from live.control.params import Params
from live.texture.transform import adjust
from tests.support.polling import wait_until


@dataclass
class Picture:
    """The part of an anchor the camera reads: its image ``(H, W, 3)`` uint8."""

    image: np.ndarray


def reference_image(seed: int = 3) -> np.ndarray:
    """A textured mid-tone picture ``(120, 160, 3)`` uint8 (gradient plus blurred noise)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(50, 170, 160)[None, :, None] * np.ones((120, 1, 3))
    noise = cv2.GaussianBlur(rng.normal(0, 25, (120, 160, 3)), (9, 9), 3)
    tint = np.array([1.0, 0.9, 0.8])
    return np.clip(ramp * tint + noise, 0, 255).astype(np.uint8)


REF = reference_image()


def write_video(path: Path, frame_rgb: np.ndarray, frames: int = 12, fps: float = 30.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps,
                             (frame_rgb.shape[1], frame_rgb.shape[0]))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
    writer.release()


def write_image(path: Path, frame_rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))


def camera_params(source: str = "camera") -> Params:
    params = Params(["ref", "bright"])
    params.set_source(source)
    return params


ANCHORS = {"ref": Picture(REF), "bright": Picture(adjust(REF, 0.5, 0.0))}


def test_video_file_drives_alpha_to_the_transform_it_was_made_with(tmp_path):
    path = tmp_path / "bright.avi"
    write_video(path, adjust(REF, 0.5, -0.3))
    params = camera_params()
    source = CameraSource(params, ANCHORS, str(path), smoothing=0.1, analysis_hz=10).start()
    try:
        assert wait_until(lambda: abs(params.snapshot().alpha_b - 0.5) < 0.1
                        and abs(params.snapshot().alpha_c + 0.3) < 0.1, 15), params.snapshot()
        assert source.status == "live"
        frames = source.frames
        # more than the clip's 12 frames: a stalled (non-looping) source would deliver no more
        assert wait_until(lambda: source.frames >= frames + 13, 30), source.frames
        assert source.status == "live", "the 0.4 s video loops instead of stalling"
    finally:
        source.stop()


def test_deleted_video_holds_then_decays_to_neutral_logged_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="live.control.camera")
    path = tmp_path / "clip.avi"
    write_video(path, adjust(REF, 0.6, 0.0), frames=6)
    params = camera_params()
    source = CameraSource(params, ANCHORS, str(path), smoothing=0.05, timeout=1.5, decay=0.5,
                          analysis_hz=10).start()
    try:
        assert wait_until(lambda: abs(params.snapshot().alpha_b - 0.6) < 0.1, 15)
        os.remove(path)
        # frames still come from the open (deleted) file until it loops and the reopen fails
        assert wait_until(lambda: source.losses >= 1, 10), "the reopen of the deleted file failed"
        assert wait_until(lambda: source.status == "holding", 3)
        held = params.snapshot().alpha_b
        assert abs(held - 0.6) < 0.1
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the value first, then the status it was read under
            value = params.snapshot().alpha_b
            if source.status != "holding":
                break
            assert value == held, "holds the last value until the timeout"
            time.sleep(0.02)
        assert source.status in ("decaying", "neutral")
        assert wait_until(lambda: source.status == "neutral", 3)
        assert params.snapshot().alpha_b == 0.0 and params.snapshot().alpha_c == 0.0
        losses = source.losses
        assert wait_until(lambda: source.losses >= losses + 2, 10), "the file is tried again, with backoff"
    finally:
        source.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert sum(": holding" in line for line in lines) == 1
    assert sum(": neutral" in line for line in lines) == 1
    assert any("file not found" in line for line in lines)
    assert len(lines) <= 4, lines


def test_unreadable_video_leaves_alpha_neutral_with_one_clear_line(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="live.control.camera")
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    params = camera_params()
    params.set_alpha(0.4, 0.2, source="camera")
    source = CameraSource(params, ANCHORS, str(path), timeout=0.5, decay=0.3).start()
    try:
        assert wait_until(lambda: source.status == "neutral", 5)
        assert (params.snapshot().alpha_b, params.snapshot().alpha_c) == (0.0, 0.0)
        assert wait_until(lambda: source.losses >= 3, 10), "the file is tried again, with backoff"
    finally:
        source.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert any("cannot open" in line for line in lines)
    assert len(lines) <= 3, lines


def test_image_file_is_re_read_when_it_changes(tmp_path):
    path = tmp_path / "scene.png"
    write_image(path, adjust(REF, 0.5, 0.0))
    params = camera_params()
    source = CameraSource(params, ANCHORS, str(path), smoothing=0.05, analysis_hz=10).start()
    try:
        assert source.kind == "image"
        assert wait_until(lambda: abs(params.snapshot().alpha_b - 0.5) < 0.1, 10), params.snapshot()
        write_image(path, adjust(REF, -0.5, 0.0))
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert wait_until(lambda: abs(params.snapshot().alpha_b + 0.5) < 0.1, 10), params.snapshot()
        assert source.status == "live", "an unchanged image is not a stalled source"
    finally:
        source.stop()


def test_camera_writes_only_while_it_steers_and_follows_the_anchor(tmp_path):
    path = tmp_path / "scene.png"
    write_image(path, adjust(REF, 0.5, 0.0))
    params = camera_params(source="osc")
    params.set_brightness(-0.2)
    source = CameraSource(params, ANCHORS, str(path), smoothing=0.05, analysis_hz=10).start()
    try:
        assert wait_until(lambda: source.reports >= 10, 10), "the capture process reports while it does not steer"
        assert params.snapshot().alpha_b == -0.2
        params.set_source("camera")
        assert wait_until(lambda: abs(params.snapshot().alpha_b - 0.5) < 0.1, 10)
        params.set_anchor("bright")
        assert wait_until(lambda: abs(params.snapshot().alpha_b) < 0.1, 10), params.snapshot()
        params.set_source("osc")
        params.set_brightness(0.9)
        reports = source.reports
        assert wait_until(lambda: source.reports >= reports + 5, 10)
        assert params.snapshot().alpha_b == 0.9
    finally:
        source.stop()


def test_missing_camera_device_is_held_then_neutral(caplog):
    caplog.set_level(logging.WARNING, logger="live.control.camera")
    params = camera_params()
    source = CameraSource(params, ANCHORS, 63, timeout=0.3, decay=0.2).start()
    try:
        assert wait_until(lambda: source.status == "neutral", 5)
    finally:
        source.stop()
    assert params.snapshot().alpha_b == 0.0
    assert sum(": neutral" in r.getMessage() for r in caplog.records) == 1


def test_source_kind_and_settings():
    assert source_kind(0) == "camera"
    assert source_kind("a/b.JPG") == "image"
    assert source_kind("clip.mp4") == "video" and source_kind("rtsp://host/stream") == "video"
    with pytest.raises(ValueError):
        source_kind("")
    settings = parse_settings(["--image", "x.png", "--smoothing", "0.2", "--camera-timeout", "4"])
    source = CameraSource.from_settings(camera_params(), ANCHORS, settings)
    assert (source.kind, source.spec, source.timeout) == ("image", "x.png", 4.0)
    assert source._smoother.time_constant_s == 0.2


def test_a_killed_capture_process_is_restarted(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="live.control.camera")
    path = tmp_path / "loop.avi"
    write_video(path, adjust(REF, 0.4, 0.0))
    params = camera_params()
    source = CameraSource(params, ANCHORS, str(path), smoothing=0.05, timeout=5.0, analysis_hz=10).start()
    try:
        assert wait_until(lambda: source.status == "live" and abs(params.snapshot().alpha_b - 0.4) < 0.1, 15)
        first = source._child.pid
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: source._child.pid not in (None, first) and source._child.restarts == 1
                        and source.frames > 0 and source.status == "live", 15)
        params.set_anchor("bright")
        assert wait_until(lambda: abs(params.snapshot().alpha_b - (-0.1)) < 0.15, 10), params.snapshot()
    finally:
        source.stop()
    assert any("capture process ended" in r.getMessage() for r in caplog.records)


def test_anchors_added_or_changed_while_running_are_measured_against_their_own_image(tmp_path):
    path = tmp_path / "scene.png"
    write_image(path, adjust(REF, 0.5, 0.0))
    params = camera_params()
    source = CameraSource(params, {"ref": Picture(REF)}, str(path), smoothing=0.05, analysis_hz=10).start()
    try:
        assert wait_until(lambda: abs(params.snapshot().alpha_b - 0.5) < 0.1, 10)
        source.anchors = {"ref": Picture(REF), "bright": Picture(adjust(REF, 0.5, 0.0))}
        params.set_library(["ref", "bright"])
        params.set_anchor("bright")
        assert wait_until(lambda: abs(params.snapshot().alpha_b) < 0.1, 10), params.snapshot()
        source.anchors = {"ref": Picture(REF), "bright": Picture(adjust(REF, -0.4, 0.0))}
        assert wait_until(lambda: params.snapshot().alpha_b > 0.4, 10), params.snapshot()
        assert source._child.restarts == 0
    finally:
        source.stop()
