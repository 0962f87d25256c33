"""Where frames come from: webcam, video file, image folder, stream URL, or a demo clip.

Every source yields BGR uint8 frames (OpenCV's format; converted to the project's
tensor format only inside the effects). :class:`LatestFrameGrabber` runs a source in
its own thread and keeps only the newest frame: when processing is slower than the
camera, old frames are dropped and counted, never queued.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from models.common.errors import InputFileError, UserError
from models.common.images import IMAGE_SUFFIXES, read_bgr, to_bgr
from realtime.frames import Frame, Source
from realtime.video_io import VideoFileSource

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


class CaptureSource(Source):
    """A webcam index or a stream URL, through cv2.VideoCapture (files go through PyAV:
    :class:`realtime.video_io.VideoFileSource`)."""

    def __init__(self, spec: str | int, size: tuple[int, int] | None = None):
        self.spec, self.size = spec, size
        self.name = f"camera {spec}" if isinstance(spec, int) else str(spec)
        self.live = isinstance(spec, int) or "://" in str(spec)
        self.cap = self._open()
        if not self.cap.isOpened():
            self.cap.release()
            if isinstance(spec, int):
                raise UserError(f"no camera at index {spec}: try --source demo, or --source FILE for a video")
            raise InputFileError(spec, "cannot open this video (unreadable, unsupported or not a video)")
        ok, first = self.cap.read()
        if not ok or first is None:
            self.cap.release()
            what = f"camera {spec} gives no frames" if isinstance(spec, int) else "no readable frame in this video"
            raise InputFileError(spec, what) if not isinstance(spec, int) else UserError(what)
        self._first: np.ndarray | None = first
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 1 <= fps <= 240 else 30.0

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.spec)
        if isinstance(self.spec, int) and self.size:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        return cap

    def read(self) -> np.ndarray | None:
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        ok, frame = self.cap.read()
        return to_bgr(frame) if ok else None  # some cameras (IR, Y8) give grey frames

    def reopen(self) -> bool:
        if not self.live:
            return False
        self.cap.release()
        self.cap = self._open()
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        self._first = to_bgr(first) if ok and first is not None else None
        return self._first is not None

    def close(self) -> None:
        self.cap.release()


class ImageFolderSource(Source):
    """The images of a folder in name order, one frame each.

    An unreadable file is skipped with a warning that names it and its problem.
    """

    def __init__(self, folder: str | Path, fps: float = 10.0):
        self.name = str(folder)
        self.files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputFileError(folder, "no images in this folder")
        self.fps = fps
        self.frames = len(self.files)  # at most: unreadable ones are skipped
        self._next = 0

    def read(self) -> np.ndarray | None:
        while self._next < len(self.files):
            path = self.files[self._next]
            self._next += 1
            try:
                return read_bgr(path)
            except InputFileError as e:
                warnings.warn(f"skipping {e}", stacklevel=2)
        return None


class DemoSource(Source):
    """A clip made from a bundled photo: slow pan and zoom with hand shake and sensor noise.

    Lets the main job run anywhere without a camera. ``frames=None`` runs forever.
    """

    name = "demo"

    def __init__(self, size: tuple[int, int] = (640, 480), frames: int | None = None, fps: float = 30.0,
                 noise: float = 3.0, seed: int = 0, photo: np.ndarray | None = None):
        if photo is None:
            from models import catalogue

            photo = read_bgr(catalogue.SAMPLE_PHOTO)
        self.photo = photo
        self.size, self.frames, self.fps, self.noise = size, frames, fps, noise
        self.rng = np.random.default_rng(seed)
        self.t = 0
        # Sensor noise from a few precomputed fields, split into the parts to add and to
        # subtract with saturating uint8 arithmetic: about 1 ms a frame instead of 20.
        self._noise: list[tuple[np.ndarray, np.ndarray]] = []
        for _ in range(4 if noise else 0):
            field = self.rng.normal(0, noise, (size[1], size[0], 3))
            self._noise.append((np.clip(field, 0, 255).astype(np.uint8), np.clip(-field, 0, 255).astype(np.uint8)))

    def transform(self, t: int) -> np.ndarray:
        """The 2x3 affine map from the photo to output frame ``t`` (known motion for tests)."""
        w, h = self.size
        ph, pw = self.photo.shape[:2]
        phase = t / self.fps
        zoom = 1.15 + 0.1 * np.sin(0.4 * phase)
        scale = zoom * max(w / pw, h / ph)
        cx = pw / 2 + 0.12 * pw * np.sin(0.25 * phase)
        cy = ph / 2 + 0.06 * ph * np.sin(0.33 * phase)
        shake = 1.5 * np.sin(7.0 * phase), 1.5 * np.cos(5.0 * phase)
        return np.array([[scale, 0, w / 2 - scale * cx + shake[0]],
                         [0, scale, h / 2 - scale * cy + shake[1]]], np.float32)

    def backward_flow(self, t: int) -> np.ndarray:
        """The exact flow (H, W, 2) from frame t to frame t - 1: where each pixel was before."""
        def full(m: np.ndarray) -> np.ndarray:
            return np.vstack([m, [0, 0, 1]]).astype(np.float64)

        m = (full(self.transform(t - 1)) @ np.linalg.inv(full(self.transform(t))))[:2]
        w, h = self.size
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        fx = m[0, 0] * gx + m[0, 1] * gy + m[0, 2] - gx
        fy = m[1, 0] * gx + m[1, 1] * gy + m[1, 2] - gy
        return np.stack([fx, fy], axis=-1).astype(np.float32)

    def read(self) -> np.ndarray | None:
        if self.frames is not None and self.t >= self.frames:
            return None
        frame = cv2.warpAffine(self.photo, self.transform(self.t), self.size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REFLECT)
        self.t += 1
        if self._noise:
            plus, minus = self._noise[int(self.rng.integers(len(self._noise)))]
            shift = int(self.rng.integers(plus.shape[0]))
            plus, minus = np.roll(plus, shift, axis=0), np.roll(minus, shift, axis=0)
            frame = cv2.subtract(cv2.add(frame, plus), minus)
        return frame


def open_source(spec: str, size: tuple[int, int] | None = None) -> Source:
    """A source from the ``--source`` argument: an integer, ``demo``, a URL, a folder or a file."""
    if spec == "demo":
        return DemoSource(size or (640, 480))
    if spec.isdigit():
        return CaptureSource(int(spec), size)
    if "://" in spec:
        return CaptureSource(spec)
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path)
    if not path.is_file():
        raise InputFileError(path, "no such file, folder or camera")
    if path.stat().st_size == 0:
        raise InputFileError(path, "file is empty")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise InputFileError(path, "is a single image: give a folder of images or a video")
    return VideoFileSource(path)


class SourceLost(UserError):
    """A live source stopped giving frames and did not come back in time."""


class LatestFrameGrabber:
    """Reads a source in a thread and keeps only the newest frame (latency first).

    Non-live sources (files, the demo) are paced at their frames' times (or frame rate), as a camera would
    deliver them. ``get()`` returns the newest frame not yet taken, waiting for one;
    None once the source has ended and its last frame was taken.

    A live source (camera, stream) that stops giving frames is reopened with backoff
    (0.5 s, doubling to 8 s between tries) for up to ``reconnect_timeout`` seconds;
    meanwhile :attr:`lost` describes the outage for the display. After that, ``get()``
    raises :class:`SourceLost`.
    """

    BACKOFF = (0.5, 8.0)  # first and longest wait between reconnection attempts, seconds

    def __init__(self, source: Source, pace: bool = True, reconnect_timeout: float = 60.0,
                 log: Callable[[str], None] | None = None):
        self.source = source
        self.pace = pace and not source.live
        self.reconnect_timeout = reconnect_timeout
        self.log = log or (lambda message: None)
        self.captured = 0
        self.dropped = 0
        self.reconnects = 0
        self.lost: str | None = None  # what the display shows while a live source is away
        self._latest: Frame | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def _read(self) -> tuple[np.ndarray, float | None] | None:
        """The next frame and its time; for a live source, a failing read counts as the source going away."""
        if not self.source.live:
            return self.source.read_timed()
        try:
            return self.source.read_timed()
        except Exception:
            return None

    def _reconnect(self) -> bool:
        """Reopen a lost live source with backoff; False once ``reconnect_timeout`` has passed or on stop."""
        name, started = self.source.name, time.perf_counter()
        delay, attempt = self.BACKOFF[0], 0
        self.log(f"{name}: no frames; reconnecting for up to {self.reconnect_timeout:g} s")
        while not self._stop.is_set():
            waited = time.perf_counter() - started
            if waited >= self.reconnect_timeout:
                return False
            delay = min(delay, self.reconnect_timeout - waited)
            self.lost = f"{name} lost: retry {attempt + 1} in {delay:.1f} s ({waited:.0f} s so far)"
            if self._stop.wait(delay):
                return False
            attempt += 1
            try:
                back = self.source.reopen()
            except Exception:
                back = False
            if back:
                self.reconnects += 1
                self.lost = None
                self.log(f"{name}: back after {time.perf_counter() - started:.1f} s ({attempt} attempts)")
                return True
            delay = min(2 * delay, self.BACKOFF[1])
        return False

    def _run(self) -> None:
        period = 1.0 / self.source.fps
        next_time = time.perf_counter()
        origin: float | None = None  # perf_counter time of presentation time 0, for files that have one
        try:
            while not self._stop.is_set():
                got = self._read()
                if got is None:
                    if not self.source.live:
                        break
                    if self._reconnect():
                        continue
                    if not self._stop.is_set():
                        raise SourceLost(f"{self.source.name}: no frames, and not back after "
                                         f"{self.reconnect_timeout:g} s of retrying")
                    break
                if self.pace and got[1] is not None:  # a file is shown at its own times (variable rate too)
                    origin = time.perf_counter() - got[1] if origin is None else origin
                    delay = origin + got[1] - time.perf_counter()
                    if delay > 0 and self._stop.wait(delay):
                        break
                    origin -= min(delay, 0.0)  # fallen behind: the clock restarts from here
                frame = Frame(got[0], self.captured, time.perf_counter(), got[1])
                with self._cond:
                    if self._latest is not None:
                        self.dropped += 1  # the consumer never saw it
                    self._latest = frame
                    self.captured += 1
                    self._cond.notify()
                if self.pace and got[1] is None:
                    next_time += period
                    delay = next_time - time.perf_counter()
                    if delay > 0:
                        self._stop.wait(delay)
                    else:
                        next_time = time.perf_counter()
        except BaseException as e:  # handed to the consumer by get()
            self._error = e
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def get(self, timeout: float | None = None) -> Frame | None:
        with self._cond:
            self._cond.wait_for(lambda: self._latest is not None or self._ended, timeout)
            if self._error is not None and self._latest is None:
                raise self._error
            frame, self._latest = self._latest, None
            return frame

    @property
    def ended(self) -> bool:
        with self._cond:
            return self._ended and self._latest is None

    def close(self) -> None:
        """Stop capturing; a frame captured but never taken counts as dropped."""
        self._stop.set()
        self._thread.join(timeout=2)
        with self._cond:
            if self._latest is not None:
                self.dropped += 1
                self._latest = None
        if not self._thread.is_alive():  # never release a capture that a stuck read still uses
            self.source.close()
