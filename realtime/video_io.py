"""Video files in and out through PyAV (FFmpeg): timestamps, sound, rotation and size kept.

OpenCV's file writer drops the sound, writes one constant frame rate and, in its wheel,
only MPEG-4 Part 2 in .mp4, which browsers do not play. Here a file source gives each
frame with its presentation time, and a file sink writes it at that time (variable frame
rate survives), copies the sound of the input (re-encoding it only where the container
cannot hold its codec), and writes H.264 in yuv420p by default, playable in browsers.
Cameras and windows stay with OpenCV (:mod:`realtime.sources`, :mod:`realtime.sinks`).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
from av.video.reformatter import Interpolation
import numpy as np

from models.errors import InputFileError, UserError, first_line
from realtime.sinks import Sink
from realtime.sources import Source

# --codec name -> FFmpeg encoders to try, best first
CODECS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264",),
    "vp9": ("libvpx-vp9",),
    "av1": ("libsvtav1", "libaom-av1"),
    "ffv1": ("ffv1",),
    "mjpeg": ("mjpeg",),
}
CONTAINER_FORMAT = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
DEFAULT_CODEC = {".mp4": "h264", ".m4v": "h264", ".mov": "h264", ".mkv": "h264", ".webm": "vp9", ".avi": "mjpeg"}
PIXEL_FORMAT = {"h264": "yuv420p", "vp9": "yuv420p", "av1": "yuv420p", "ffv1": "bgr0", "mjpeg": "yuvj420p"}
ENCODER_OPTIONS = {  # quality close to the input, at a speed that keeps up with the effects on a CPU
    "libx264": {"crf": "18", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
    "libsvtav1": {"crf": "32", "preset": "10"},
    "libaom-av1": {"crf": "32", "cpu-used": "8"},
    "mjpeg": {"q:v": "3"},
}
# swscale's defaults darken and tint each RGB <-> YUV round trip (about -2.5 levels, greenish);
# exact rounding and full chroma interpolation keep a round trip unbiased.
CONVERT = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
LIVE_TIME_BASE = Fraction(1, 90_000)  # for sources without their own time base (cameras, folders, the demo)
BT709 = 1  # AVColorSpace of HD video; others (BT.601, unspecified) convert as BT.601, like FFmpeg


def _bgr_to_yuv(kr: float, kb: float, full: bool) -> np.ndarray:
    """The 3x4 matrix from B, G, R (0-255) to Y, Cb, Cr of the given luma weights and range."""
    kg = 1 - kr - kb
    rgb = np.array([[kr, kg, kb],
                    [-kr / (2 - 2 * kb), -kg / (2 - 2 * kb), 0.5],
                    [0.5, -kg / (2 - 2 * kr), -kb / (2 - 2 * kr)]])
    if not full:
        rgb = rgb * np.array([[219], [224], [224]]) / 255
    offset = np.array([[0.0 if full else 16.0], [128.0], [128.0]])
    return np.hstack([rgb[:, ::-1], offset]).astype(np.float32)


def _inverse(m: np.ndarray) -> np.ndarray:
    inv = np.linalg.inv(m[:, :3].astype(np.float64))
    return np.hstack([inv, -inv @ m[:, 3:]]).astype(np.float32)


ENCODE = {full: _bgr_to_yuv(0.299, 0.114, full) for full in (False, True)}  # written as BT.601
DECODE = {(cs, full): _inverse(_bgr_to_yuv(*((0.2126, 0.0722) if cs == BT709 else (0.299, 0.114)), full))
          for cs in (BT709, 0) for full in (False, True)}


def bgr_to_yuv420p(image: np.ndarray, full_range: bool = False) -> av.VideoFrame:
    """A BGR image of even sides as a BT.601 4:2:0 frame, each chroma sample the mean of 2x2 pixels.

    In OpenCV: 2-3x quicker than swscale's accurate mode, which took longer than the encoder
    (OpenCV's own BGR2YUV_I420 keeps one chroma sample of four).
    """
    h, w = image.shape[:2]
    y, cb, cr = cv2.split(cv2.transform(image, ENCODE[full_range]))
    half = (w // 2, h // 2)
    cb, cr = (cv2.resize(c, half, interpolation=cv2.INTER_AREA) for c in (cb, cr))
    planes = np.concatenate([y.ravel(), cb.ravel(), cr.ravel()]).reshape(h * 3 // 2, w)
    return av.VideoFrame.from_ndarray(planes, format="yuvj420p" if full_range else "yuv420p")


def frame_to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as BGR uint8: 8-bit 4:2:0 of even sides here, with its own matrix and range
    (2-3x quicker than swscale's accurate mode); anything else through swscale."""
    h, w = frame.height, frame.width
    name = frame.format.name
    if name not in ("yuv420p", "yuvj420p") or h % 2 or w % 2:
        return frame.to_ndarray(format="bgr24", interpolation=CONVERT, src_color_range=frame.color_range or None)
    planes = frame.to_ndarray(format=name)  # Y rows, then U and V packed into rows of w
    y = planes[:h]
    u = planes[h:h + h // 4].reshape(h // 2, w // 2)
    v = planes[h + h // 4:].reshape(h // 2, w // 2)
    u, v = (cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in (u, v))
    full = name == "yuvj420p" or frame.color_range == 2
    return cv2.transform(cv2.merge([y, u, v]), DECODE[(BT709 if frame.colorspace == BT709 else 0, full)])


def available_codecs() -> list[str]:
    """The --codec names this PyAV wheel can encode."""
    return [name for name in CODECS if encoder_for(name) is not None]


def encoder_for(codec: str) -> str | None:
    """The first FFmpeg encoder of ``codec`` that this PyAV wheel has, or None."""
    for encoder in CODECS.get(codec, ()):
        try:
            av.Codec(encoder, "w")
            return encoder
        except Exception:
            continue
    return None


def _origin(container: av.container.InputContainer) -> float:
    """The container's start time in seconds: output times count from it, for video and sound alike."""
    return container.start_time / av.time_base if container.start_time is not None else 0.0


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to fit ``size`` (w, h) with its aspect kept, centred on black."""
    w, h = size
    ih, iw = image.shape[:2]
    if (iw, ih) == (w, h):
        return image
    scale = min(w / iw, h / ih)
    nw, nh = max(1, round(iw * scale)), max(1, round(ih * scale))
    scaled = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = scaled
    return out


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
