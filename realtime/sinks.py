"""Where frames go: an OpenCV window, a virtual camera (video files: :mod:`realtime.video_io`).

Each sink takes BGR uint8 frames. :class:`WindowSink` also returns the key pressed,
which the runner turns into actions.
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from models.common.errors import UserError, first_line
from realtime.frames import Sink


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
