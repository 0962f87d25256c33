"""Reading and writing video files with PyAV: :class:`VideoFileSource` and :class:`VideoFileSink`
(see :mod:`realtime.video_io`)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from models.common.errors import InputFileError, UserError, first_line
from realtime.frames import Sink, Source
from realtime.video_io.codecs import (CODECS, CONTAINER_FORMAT, DEFAULT_CODEC, ENCODER_OPTIONS, PIXEL_FORMAT,
                                      available_codecs, encoder_for)
from realtime.video_io.convert import LIVE_TIME_BASE, bgr_to_yuv420p, frame_to_bgr, letterbox

def _origin(container: av.container.InputContainer) -> float:
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
        self.origin = _origin(self.container)
        self._decoded = self._decode()
        self._index = 0
        first = self.read_timed()
        if first is None:
            self.container.close()
            raise InputFileError(self.path, "no readable frame in this video")
        self._first: tuple[np.ndarray, float] | None = first
        self.size = first[0].shape[1::-1]  # (w, h) of the upright frames

    def _decode(self) -> Iterator[av.VideoFrame]:
        try:
            yield from self.container.decode(self.stream)
        except av.ExitError:  # FFmpeg's reading was cut short by a signal (PyAV's interrupt callback): Ctrl+C
            raise KeyboardInterrupt from None
        except av.FFmpegError as e:  # a damaged tail: what was decoded is kept
            warnings.warn(f"{self.path}: decoding stopped after frame {self._index} ({first_line(e)})", stacklevel=2)

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


class _Audio:
    """The sound streams of an input file, muxed into the output up to a given time.

    A stream is copied packet by packet where the output container can hold its codec;
    otherwise it is decoded and re-encoded (AAC, or Opus for .webm).
    """

    def __init__(self, path: Path, suffix: str, supported: set[str], log: Callable[[str], None]):
        """Plan, for an output of ``suffix`` that can hold the ``supported`` codecs, what each stream needs."""
        self.input = av.open(str(path))
        self.origin = _origin(self.input)
        self.streams = list(self.input.streams.audio)
        self.target: dict[int, str | None] = {}  # stream index -> encoder, None to copy
        for s in self.streams:
            name = s.codec_context.name
            if name in supported:
                self.target[s.index] = None
            else:
                self.target[s.index] = "aac" if "aac" in supported else "libopus"
                log(f"note: the sound ({name}) cannot go into {suffix} as it is; "
                    f"re-encoded to {'AAC' if 'aac' in supported else 'Opus'}")
        self.output: av.container.OutputContainer | None = None
        self.out: dict[int, av.stream.Stream] = {}
        self._packets = self.input.demux(self.streams) if self.streams else iter(())
        self._waiting: av.Packet | None = None
        self._done = False

    def attach(self, output: av.container.OutputContainer) -> None:
        """Add the sound streams to ``output`` (after its video stream)."""
        self.output = output
        for s in self.streams:
            target = self.target[s.index]
            if target is None:
                self.out[s.index] = output.add_stream_from_template(s)
                continue
            o = output.add_stream(target, rate=s.rate if target == "aac" else 48_000)
            o.layout = s.layout.name if s.layout.nb_channels <= 2 else "stereo"
            self.out[s.index] = o

    def mux_until(self, seconds: float | None) -> None:
        """Write the sound up to ``seconds`` from the start (None: all of it)."""
        while not self._done:
            packet = self._waiting or next(self._packets, None)
            self._waiting = None
            if packet is None:
                self._done = True
                break
            if packet.dts is None and packet.pts is None:  # a flush packet of the demuxer
                continue
            t = float((packet.pts if packet.pts is not None else packet.dts) * packet.time_base) - self.origin
            if seconds is not None and t >= seconds:
                self._waiting = packet
                return
            self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        index = packet.stream.index
        out = self.out[index]
        if self.target[index] is None:
            shift = round(self.origin / packet.time_base) if self.origin else 0
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = out
            self.output.mux(packet)
            return
        for frame in packet.decode():
            if frame.pts is not None and self.origin:
                frame.pts -= round(self.origin / frame.time_base)
            self.output.mux(out.encode(frame))

    def close(self, flush: bool = True) -> None:
        """Flush the re-encoded streams (when anything was written) and close the input."""
        for index, out in self.out.items():
            if flush and self.target[index] is not None:
                self.output.mux(out.encode(None))
        self.input.close()


class VideoFileSink(Sink):
    """A video file written through PyAV; each frame at its presentation time.

    The codec follows ``codec`` or the suffix (:data:`DEFAULT_CODEC`). The output size is
    ``size`` or the first frame's; frames of another size are letterboxed into it, never
    stretched. Odd sides are padded by one pixel for codecs that need even ones (with a
    one-line note). ``audio_from`` names a file whose sound streams are carried over, up
    to the time of the last frame (all of it once :meth:`end_of_stream` was called).
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str | None = None,
                 size: tuple[int, int] | None = None, audio_from: str | os.PathLike | None = None,
                 time_base: Fraction | None = None, log: Callable[[str], None] = print):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in DEFAULT_CODEC:
            raise InputFileError(self.path, f"unsupported video suffix; use one of {sorted(DEFAULT_CODEC)}")
        if not self.path.parent.exists():
            raise InputFileError(self.path, "its folder does not exist")
        self.codec = codec or DEFAULT_CODEC[suffix]
        if self.codec not in CODECS:
            raise UserError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        self.encoder = encoder_for(self.codec)
        if self.encoder is None:
            raise UserError(f"this PyAV wheel has no {self.codec} encoder; available: {', '.join(available_codecs())}")
        if self.codec == "ffv1" and suffix != ".mkv":
            raise InputFileError(self.path, "ffv1 (lossless) is written to .mkv only: change the suffix")
        if not os.access(self.path.parent, os.W_OK):
            raise InputFileError(self.path, "cannot write a video here (its folder is not writable)")
        supported = av.open(io.BytesIO(), "w", format=CONTAINER_FORMAT[suffix]).supported_codecs
        if self.codec not in supported:
            raise InputFileError(self.path, f"a {suffix} file cannot hold {self.codec}: use .mkv, which holds them all")
        self.fps, self.size, self.log = fps, size, log
        self.time_base = time_base or LIVE_TIME_BASE
        # The sound is planned here, so that its note comes before any progress bar; the file
        # itself is written from the first frame on (a run that fails before leaves none).
        self.audio = _Audio(Path(audio_from), suffix, supported, log) if audio_from else None
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.coded: tuple[int, int] | None = None  # the encoded size: the output size, padded to even sides
        self.frames = 0
        self._last_pts = -1
        self._end: float | None = None  # seconds: the end of the last frame written
        self._complete = False

    def _open(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        self.size = self.size or (w, h)
        w, h = self.size
        even = PIXEL_FORMAT[self.codec].startswith("yuv")
        self.coded = (w + w % 2, h + h % 2) if even else (w, h)
        if self.coded != self.size:
            self.log(f"note: {w}x{h} is padded to {self.coded[0]}x{self.coded[1]} ({self.codec} needs even sides); "
                     f"--codec ffv1 with .mkv keeps the size exactly")
        mp4 = self.path.suffix.lower() in (".mp4", ".m4v", ".mov")
        try:  # faststart: the index goes first, so a browser starts playing before the whole file is in
            self.container = av.open(str(self.path), "w", options={"movflags": "+faststart"} if mp4 else {})
        except (av.FFmpegError, OSError) as e:
            raise InputFileError(self.path, f"cannot write a video here ({first_line(e)})") from None
        s = self.container.add_stream(self.encoder, rate=Fraction(self.fps).limit_denominator(1001),
                                      options=ENCODER_OPTIONS.get(self.encoder, {}))
        s.width, s.height = self.coded
        s.pix_fmt = PIXEL_FORMAT[self.codec]
        s.time_base = s.codec_context.time_base = self.time_base
        s.thread_type = "AUTO"
        if s.pix_fmt.startswith("yuv"):  # say how the colours were converted (BT.601), so players agree
            cc = s.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc = 6, 6, 6  # SMPTE 170M
            cc.color_range = 2 if s.pix_fmt.startswith("yuvj") else 1  # JPEG (full) or MPEG (limited)
        self.stream = s
        if self.audio is not None:
            self.audio.attach(self.container)

    def write(self, frame: np.ndarray) -> None:
        self.write_at(frame, None)

    def write_at(self, frame: np.ndarray, pts: float | None) -> None:
        """Encode ``frame`` shown at ``pts`` seconds (None: one frame period after the last)."""
        if self.coded is None:
            self._open(frame)
        if frame.shape[1::-1] != tuple(self.size):
            frame = letterbox(frame, self.size)
        if self.coded != tuple(self.size):
            frame = cv2.copyMakeBorder(frame, 0, self.coded[1] - self.size[1], 0, self.coded[0] - self.size[0],
                                       cv2.BORDER_REPLICATE)
        if pts is None:
            pts = self.frames / self.fps
        ticks = max(round(pts / self.time_base), self._last_pts + 1)  # strictly increasing, as encoders need
        if self.stream.pix_fmt in ("yuv420p", "yuvj420p"):
            video = bgr_to_yuv420p(frame, full_range=self.stream.pix_fmt == "yuvj420p")
        else:
            video = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
        video.pts, video.time_base = ticks, self.time_base
        self.container.mux(self.stream.encode(video))
        if self.audio is not None:
            self.audio.mux_until(float(ticks * self.time_base))
        step = ticks - self._last_pts if self._last_pts >= 0 else round(1 / (self.fps * self.time_base))
        self._end = float((ticks + step) * self.time_base)
        self._last_pts = ticks
        self.frames += 1

    def end_of_stream(self) -> None:
        """The source ended: all of its sound belongs in the file, not only up to the last frame."""
        self._complete = True

    def close(self) -> None:
        if self.container is not None:
            self.container.mux(self.stream.encode(None))
            if self.audio is not None:
                self.audio.mux_until(None if self._complete else self._end)
        if self.audio is not None:
            self.audio.close(flush=self.container is not None)
        if self.container is not None:
            self.container.close()
