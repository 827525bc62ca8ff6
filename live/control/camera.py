"""Camera, video or image -> alpha: the picture source that can steer brightness and contrast.

A ``CameraSource`` runs OpenCV capture and the alpha estimate in a child process (decoding and
analysis are CPU work that would otherwise contend for the GIL with the MIDI send thread; the
child also lowers its own priority). Frames are read at the source's pace
(a video file at its frame rate, looping; a camera as fast as it delivers; an image file is
re-read when its modification time changes); at most ``analysis_hz`` frames a second are
retrieved (the others are only grabbed, which keeps a camera's queue short) and analysed:
``live.control.alpha.estimate(anchor image, frame)`` against the current anchor's picture, smoothed with
``live.control.alpha.Smoother(smoothing)`` in the parent. The result is written with
``params.set_alpha(b, c, source="camera")``, which ``live.control.params`` drops unless the camera steers.

When the source stalls (no frame, the same camera frame over and over, or a file that cannot be
opened) the last value is held for ``timeout`` seconds, then decays linearly to neutral (0, 0)
over ``decay`` seconds, while the source is reopened with exponential back-off. Each change of
``status`` (opening, live, holding, decaying, neutral) is logged once, with the reason. A child
process that dies is restarted with back-off.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any, Mapping

import numpy as np

# OpenCV and FFmpeg would print a warning at every reopen attempt; this module logs once instead.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
import cv2  # noqa: E402  (after the environment above)

from live.children import BACKOFF_MAX_S, BACKOFF_START_S, Child, Worker
from live.control.alpha import Smoother, estimate
from live.control.params import Params

log = logging.getLogger(__name__)
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
ANALYSIS_SIDE = 320
IMAGE_POLL_S = 0.25
DEFAULT_FPS = 30.0
WRITE_RESOLUTION = 1e-3
OUTPUT_PERIOD_S = 0.05
ALIVE_PERIOD_S = 0.1
CHILD_NICE = 10


def source_kind(spec: int | str) -> str:
    """``camera`` for an index, ``image`` for a path with an image extension, else ``video``."""
    if isinstance(spec, bool):
        raise ValueError(f"not a camera, video or image: {spec!r}")
    if isinstance(spec, int):
        return "camera"
    if isinstance(spec, str) and spec:
        return "image" if os.path.splitext(spec)[1].lower() in IMAGE_EXTENSIONS else "video"
    raise ValueError(f"not a camera, video or image: {spec!r}")


def downscale(frame: np.ndarray, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Area-downscale ``(H, W, 3)`` so its long side is at most ``side`` (smaller frames pass)."""
    scale = side / max(frame.shape[:2])
    if scale >= 1.0:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class _Capture:
    """One opened source. ``read(retrieve)`` returns an RGB frame ``(H, W, 3)`` uint8, or ``None``
    when there is no new picture (nothing due yet, an unchanged image file, or a frame that was
    only grabbed because ``retrieve`` was false); it raises ``EOFError`` at the end of a video file
    and ``OSError`` when the source is gone. Returning at all means the source is alive."""

    def __init__(self, kind: str, spec: int | str) -> None:
        self.kind = kind
        self.spec = spec
        self._cap: cv2.VideoCapture | None = None
        self._mtime: float | None = None
        self._next_poll = 0.0
        self._period = 1.0 / DEFAULT_FPS
        self._next_frame = time.monotonic()
        if kind == "image":
            return
        if kind == "video" and "://" not in str(spec) and not os.path.exists(str(spec)):
            raise OSError("file not found")
        cap = cv2.VideoCapture(spec)
        if not cap.isOpened():
            cap.release()
            raise OSError("cannot open" + (" (not a video OpenCV can decode)" if kind == "video" else ""))
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        if kind == "video" and fps and np.isfinite(fps) and 1.0 <= fps <= 240.0:
            self._period = 1.0 / fps

    def read(self, retrieve: bool) -> np.ndarray | None:
        if self.kind == "image":
            return self._read_image()
        assert self._cap is not None
        if self.kind == "video":
            delay = self._next_frame - time.monotonic()
            if delay > 0:
                time.sleep(min(delay, 0.1))
                return None
            self._next_frame = max(self._next_frame + self._period, time.monotonic() - self._period)
        if not self._cap.grab():
            if self.kind == "video" and "://" not in str(self.spec):
                raise EOFError("end of file")
            raise OSError("no frame")
        if not retrieve:
            return None
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            raise OSError("frame could not be decoded")
        return _rgb(frame)

    def _read_image(self) -> np.ndarray | None:
        now = time.monotonic()
        if now < self._next_poll:
            time.sleep(min(self._next_poll - now, 0.1))
            return None
        self._next_poll = now + IMAGE_POLL_S
        try:
            mtime = os.stat(str(self.spec)).st_mtime_ns
        except OSError as error:
            raise OSError(error.strerror or "cannot read") from None
        if mtime == self._mtime:
            return None
        frame = cv2.imread(str(self.spec), cv2.IMREAD_COLOR)
        if frame is None:
            raise OSError("not an image OpenCV can read")
        self._mtime = mtime
        return _rgb(frame)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def _capture_worker(conn: Connection, kind: str, spec: int | str, analysis_hz: float, timeout: float,
                    images: dict[str, np.ndarray]) -> None:
    """The child process: open/read the source, analyse against the anchor image the parent names.

    ``images`` maps anchor names to their images ``(H, W, 3)`` uint8 (sent once, at start, so that
    later messages stay small and never block). Receives ``("reference", name | None)`` (``None``
    or a name without an image pauses analysis), ``("image", name, image)`` (an anchor loaded or
    changed by a re-scan) and ``("stop",)``; sends
    ``("alive", frames, analysed)`` at most every ``ALIVE_PERIOD_S`` while the source delivers,
    ``("estimate", b, c)`` and ``("lost", reason)``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C / SIGTERM reach the whole process group;
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the parent ends this process in an orderly way
    try:
        os.nice(CHILD_NICE)
    except OSError:
        pass
    min_interval = 1.0 / analysis_hz
    capture: _Capture | None = None
    backoff, retry_at = BACKOFF_START_S, 0.0
    reference: np.ndarray | None = None
    latest: np.ndarray | None = None
    pending = False
    frames = analysed = 0
    last_retrieve, last_alive = -np.inf, -np.inf
    last_hash, same_since = b"", time.monotonic()

    def lost(reason: str) -> None:
        nonlocal capture, retry_at, backoff
        if capture is not None:
            capture.close()
            capture = None
        conn.send(("lost", reason))
        retry_at, backoff = time.monotonic() + backoff, min(backoff * 2.0, BACKOFF_MAX_S)

    try:
        while True:
            while conn.poll(0):
                message = conn.recv()
                if message[0] == "stop":
                    return
                if message[0] == "image":
                    images[message[1]] = message[2]
                    continue
                reference, pending = (None if message[1] is None else images.get(message[1])), True
            now = time.monotonic()
            if capture is None:
                if now < retry_at:
                    conn.poll(min(0.05, retry_at - now))
                    continue
                try:
                    capture = _Capture(kind, spec)
                    backoff, same_since = BACKOFF_START_S, now
                except OSError as error:
                    lost(str(error))
                    continue
            try:
                frame = capture.read(now - last_retrieve >= min_interval)
            except EOFError:  # a video file loops by reopening, which also notices a deleted file
                capture.close()
                capture = None
                continue
            except OSError as error:
                lost(str(error))
                continue
            now = time.monotonic()
            if frame is not None:
                frames += 1
                last_retrieve = now
                digest = hashlib.blake2b(frame[::8, ::8].tobytes(), digest_size=8).digest()
                if digest != last_hash:
                    last_hash, same_since = digest, now
                latest, pending = downscale(frame), True
            if kind == "camera" and now - same_since > timeout:
                lost(f"frozen: the same frame for {timeout:g} s")
                continue
            if pending and latest is not None and reference is not None:
                b, c = estimate(reference, latest)
                analysed += 1
                pending = False
                conn.send(("estimate", b, c))
            if now - last_alive >= ALIVE_PERIOD_S:
                conn.send(("alive", frames, analysed))
                last_alive = now
    except (EOFError, BrokenPipeError):
        return  # the parent went away
    finally:
        if capture is not None:
            capture.close()


class CameraSource:
    """Picture source -> alpha (see the module docstring).

    ``anchors`` maps anchor names to objects with an ``image`` ``(H, W, 3)`` uint8 (replace it
    with a new mapping when the anchors change: new or changed images go to the capture process
    when their anchor is chosen); ``spec`` is a
    camera index, an image path or a video file/URL (``kind`` overrides the guess). In this
    process one light thread talks to the capture process, smooths towards its latest estimate
    every ``OUTPUT_PERIOD_S`` and holds and decays the value, so a capture call that blocks (a
    network stream gone quiet) cannot keep a stale alpha alive. The capture process is started
    with the ``spawn`` method, so a script that uses this class needs the usual
    ``if __name__ == "__main__":`` guard.
    """

    def __init__(
        self,
        params: Params,
        anchors: Mapping[str, Any],
        spec: int | str,
        smoothing: float = 0.5,
        timeout: float = 2.0,
        decay: float = 2.0,
        analysis_hz: float = 3.0,
        kind: str | None = None,
    ) -> None:
        if not (timeout > 0 and decay > 0 and analysis_hz > 0):
            raise ValueError("timeout, decay and analysis_hz must be positive")
        self.params = params
        self.anchors = anchors
        self.spec = spec
        self.kind = kind or source_kind(spec)
        self.label = f"camera {spec}" if self.kind == "camera" else f"{self.kind} {spec}"
        self.timeout = float(timeout)
        self.decay = float(decay)
        self.hold_after = min(0.5, self.timeout / 2)
        self.analysis_hz = float(analysis_hz)
        self.status = "opening"
        self.frames = 0
        self.analysed = 0
        self.reports = 0
        """Messages received from the capture process so far (it reports at least every 0.1 s)."""
        self.losses = 0
        """Failed opens or reads the capture process reported (each one is retried with backoff)."""
        self._smoother = Smoother(smoothing)
        self._value = np.zeros(2)
        self._held = np.zeros(2)
        self._target: np.ndarray | None = None
        self._last_good = time.monotonic()
        self._reason = ""
        self._child = Child(_capture_worker,
                            (self.kind, spec, self.analysis_hz, self.timeout,
                             {name: np.asarray(anchor.image) for name, anchor in anchors.items()}),
                            name=f"vis2mus-{self.kind}")
        self._worker = Worker(self._run, "camera", join_s=3.0)

    @classmethod
    def from_settings(cls, params: Params, anchors: Mapping[str, Any], settings: Any) -> "CameraSource":
        """Build from ``live.app.config.Settings`` (``camera``/``video``/``image``, ``smoothing``,
        ``camera_timeout``)."""
        for kind in ("camera", "video", "image"):
            spec = getattr(settings, kind)
            if spec is not None:
                return cls(params, anchors, spec, smoothing=settings.smoothing,
                           timeout=settings.camera_timeout, kind=kind)
        raise ValueError("settings name no camera, video or image")

    @property
    def value(self) -> tuple[float, float]:
        """The current (alpha_b, alpha_c) of this source, whoever steers."""
        value = self._value
        return float(value[0]), float(value[1])

    def start(self) -> "CameraSource":
        """Start the capture process and the output thread; returns ``self``."""
        self._child.start()
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop the thread and the capture process, releasing the source (idempotent)."""
        self._worker.stop()
        self._child.stop()

    def _run(self) -> None:
        sent: object = ()
        next_output = time.monotonic()
        child = self._child
        initial = {name: anchor.image for name, anchor in self.anchors.items()}
        shown = dict(initial)
        while not self._worker.stopping.is_set():
            now = time.monotonic()
            if child.conn is None:
                wait = child.due(now)
                if wait <= 0.0:
                    child.restart()
                    sent, shown = (), dict(initial)
                else:
                    self._worker.stopping.wait(min(OUTPUT_PERIOD_S, wait))
            else:
                try:
                    if child.conn.poll(max(0.0, next_output - now)):
                        self._receive(child.conn.recv())
                    state = self.params.snapshot()
                    key = state.anchor if state.source == "camera" else None
                    anchor = self.anchors.get(key) if key is not None else None
                    if anchor is not None and shown.get(key) is not anchor.image:
                        child.conn.send(("image", key, np.asarray(anchor.image)))
                        shown[key], sent = anchor.image, ()
                    if key != sent:
                        child.conn.send(("reference", key))
                        sent = key
                except (EOFError, OSError):
                    self._reason = "capture process ended"
                    delay = child.failed(now)
                    log.error("%s: capture process ended; restarting in %g s", self.label, delay)
            now = time.monotonic()
            if now >= next_output:
                next_output = now + OUTPUT_PERIOD_S
                self._output(now)

    def _receive(self, message: tuple) -> None:
        kind = message[0]
        self.reports += 1
        if kind == "alive":
            self._last_good = time.monotonic()
            self.frames, self.analysed = message[1], message[2]
        elif kind == "estimate":
            self._last_good = time.monotonic()
            self._target = np.array([message[1], message[2]])
        elif kind == "lost":
            self._reason = message[1]
            self.losses += 1

    # Output: smooth towards the latest estimate, hold, then decay to neutral

    def _output(self, now: float) -> None:
        silent = now - self._last_good
        target = self._target
        if silent <= self.hold_after and target is not None:
            if self.status != "live":
                self._smoother.reset()
                self._smoother.update(self._value, now)
            self._held = np.asarray(self._smoother.update(target, now), dtype=np.float64)
            self._set_status("live")
            self._publish(self._held)
            return
        if silent <= self.hold_after or (self.status == "opening" and silent <= self.timeout):
            return
        reason = f"{self._reason}; " if self._reason else ""
        if silent <= self.timeout:
            self._set_status("holding", f"{reason}no new frame, holding alpha for {self.timeout:g} s")
            self._publish(self._held)
            return
        factor = max(0.0, 1.0 - (silent - self.timeout) / self.decay)
        if factor > 0.0:
            self._set_status("decaying", f"{reason}no frame for {self.timeout:g} s, decaying to neutral")
        else:
            self._set_status("neutral", f"{reason}alpha at neutral until frames return")
        self._publish(self._held * factor)

    def _publish(self, value: np.ndarray) -> None:
        """Write ``value`` (rounded to 0.001) to params unless it is already there."""
        self._value = np.asarray(value, dtype=np.float64)
        value = np.round(self._value / WRITE_RESOLUTION) * WRITE_RESOLUTION
        state = self.params.snapshot()
        b, c = float(value[0]), float(value[1])
        if state.source == "camera" and (state.alpha_b, state.alpha_c) != (b, c):
            self.params.set_alpha(b, c, source="camera")

    def _set_status(self, status: str, detail: str = "") -> None:
        if status != self.status:
            self.status = status
            log.warning("%s: %s%s", self.label, status, f" ({detail})" if detail else "")
