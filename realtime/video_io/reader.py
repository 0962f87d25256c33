"""Reading a video file with PyAV, frame by frame with each frame's presentation time: :class:`VideoFileSource`
(see :mod:`realtime.video_io`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from models.common.errors import InputFileError, first_line
from realtime.frames import Source
from realtime.video_io.convert import LIVE_TIME_BASE, frame_to_bgr

def origin_seconds(container: av.container.InputContainer) -> float:
    """The container's start time in seconds: output times count from it, for video and sound alike."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


class VideoFileSource(Source):
    """Frames of a video file in order, upright (its rotation applied), with their times.

    ``read_timed()`` gives (BGR frame, seconds from the start of the file). ``frames`` is
    the number of frames the file announces (0 when it does not), for progress bars;
    ``size`` the (w, h) of its first frame, upright.
    """

    live = False

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.name = str(path)
        try:
            self.container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as e:
            raise InputFileError(self.path, f"cannot open this video (unreadable, unsupported or not a video: "
                                            f"{first_line(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputFileError(self.path, "cannot open this video (it has no video stream)")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.time_base = self.stream.time_base or LIVE_TIME_BASE
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate and 1 <= float(rate) <= 240 else 30.0
        seconds = (float(self.stream.duration * self.time_base) if self.stream.duration
                   else self.container.duration / av.time_base if self.container.duration else 0.0)
        self.frames = self.stream.frames or round(seconds * self.fps)
        self.has_audio = bool(self.container.streams.audio)
        self.origin = origin_seconds(self.container)
        self.skipped, self.damaged, self._damage = 0, [], ""
        self._decoded = self._decode()
        self._index = 0
        first = self.read_timed()
        if first is None:
            self.container.close()
            raise InputFileError(self.path, "no readable frame in this video")
        self._first: tuple[np.ndarray, float] | None = first
        self.size = first[0].shape[1::-1]  # (w, h) of the upright frames

    def _decode(self) -> Iterator[av.VideoFrame]:
        """The frames in order. A packet that does not decode (a damaged frame) is skipped and
        counted (:attr:`skipped`, the time of each in :attr:`damaged`), as FFmpeg's own tool does;
        the frames after it keep their times. A file that cannot be read further (a cut tail)
        ends here, with a warning."""
        try:
            for packet in self.container.demux(self.stream):
                try:
                    yield from packet.decode()
                except (av.ExitError, av.error.EOFError, av.error.MemoryError):
                    raise
                except av.FFmpegError as e:  # this frame's data is damaged
                    if packet.size == 0:  # the decoder's flush at the end
                        return
                    self.skipped += 1
                    t = packet.pts if packet.pts is not None else packet.dts
                    self.damaged.append(float(t * packet.time_base) - self.origin if t is not None else -1.0)
                    self._damage = first_line(e)
        except av.error.EOFError:
            return
        except av.ExitError:  # FFmpeg's reading was cut short by a signal (PyAV's interrupt callback): Ctrl+C
            raise KeyboardInterrupt from None
        except av.FFmpegError as e:  # a damaged tail: what was decoded is kept
            warnings.warn(f"{self.path}: decoding stopped after frame {self._index} ({first_line(e)})", stacklevel=2)

    def damage_note(self) -> str | None:
        """One line on the frames skipped as damaged, or None when every frame decoded."""
        if not self.skipped:
            return None
        times = ", ".join(f"{t:.2f} s" for t in self.damaged[:5]) + (" ..." if len(self.damaged) > 5 else "")
        return (f"{self.path}: skipped {self.skipped} damaged frame{'s' * (self.skipped != 1)} that could not be "
                f"decoded (at {times}; {self._damage}); the others keep their times")

    def read_timed(self) -> tuple[np.ndarray, float] | None:
        if getattr(self, "_first", None) is not None:
            first, self._first = self._first, None
            return first
        frame = next(self._decoded, None)
        if frame is None:
            return None
        image = frame_to_bgr(frame)
        turns = round((frame.rotation or 0) / 90) % 4
        if turns:
            image = np.ascontiguousarray(np.rot90(image, turns))
        t = float(frame.pts * frame.time_base) - self.origin if frame.pts is not None else self._index / self.fps
        self._index += 1
        return image, t

    def read(self) -> np.ndarray | None:
        got = self.read_timed()
        return None if got is None else got[0]

    def close(self) -> None:
        self.container.close()


# Container metadata not to carry over: what the muxer writes itself, and per-file figures.
