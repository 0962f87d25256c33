"""Where frames go: an OpenCV window, a video file, a virtual camera.

Each sink takes BGR uint8 frames. :class:`WindowSink` also returns the key pressed,
which the runner turns into actions.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np

from models.errors import InputFileError, UserError, first_line

FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}


class Sink:
    live = False  # shown to a person as it happens (a window, a virtual camera), not recorded

    def write(self, frame: np.ndarray) -> int | None:
        """Show or store a frame; a sink with a keyboard returns the key pressed, or None."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class VideoFileSink(Sink):
    """A video file; the codec follows the suffix (.mp4 -> mp4v, .avi -> MJPG, .webm -> VP8).

    The first frame fixes the video's size; later frames of another size (a folder of
    photos) are resized to it, since a video writer silently drops frames that differ.
    """

    def __init__(self, path: str | os.PathLike, fps: float):
        self.path = Path(path)
        if self.path.suffix.lower() not in FOURCC_BY_SUFFIX:
            raise InputFileError(self.path, f"unsupported video suffix; use one of {sorted(FOURCC_BY_SUFFIX)}")
        if not self.path.parent.exists():
            raise InputFileError(self.path, "its folder does not exist")
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            h, w = frame.shape[:2]
            fourcc = cv2.VideoWriter_fourcc(*FOURCC_BY_SUFFIX[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self.writer.isOpened():
                raise InputFileError(self.path, "cannot write a video here (codec or permissions)")
            self.size = (w, h)
        if frame.shape[1::-1] != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()


class WindowSink(Sink):
    """An OpenCV window; ``write`` returns the key pressed (or None)."""

    live = True

    def __init__(self, title: str = "stylelens"):
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise UserError("no display to open a window on: add --no-window (and --out FILE to record)")
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as e:
            raise UserError(f"cannot open a window ({first_line(e)}): add --no-window") from None

    def write(self, frame: np.ndarray) -> int | None:
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(1)
        if key >= 0:
            return key & 0xFF
        try:  # the window's close button
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return 27
        except cv2.error:
            return 27
        return None

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


class VirtualCamSink(Sink):
    """A virtual camera for video calls (pip install pyvirtualcam, plus its OS driver)."""

    live = True

    def __init__(self, fps: float):
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError:
            raise UserError("--virtual-cam needs pyvirtualcam: pip install -e '.[virtualcam]' in the project, or pip install pyvirtualcam") from None
        self.fps = fps
        self.cam = None

    def write(self, frame: np.ndarray) -> None:
        import pyvirtualcam

        if self.cam is None:
            h, w = frame.shape[:2]
            try:
                self.cam = pyvirtualcam.Camera(width=w, height=h, fps=self.fps, fmt=pyvirtualcam.PixelFormat.BGR)
            except RuntimeError as e:
                raise UserError(f"cannot start the virtual camera: {e}") from None
        self.cam.send(frame)

    def close(self) -> None:
        if self.cam is not None:
            self.cam.close()
