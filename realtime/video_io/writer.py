"""Writing a video file with PyAV: :class:`VideoFileSink`, each frame at its presentation time, with
the sound and the stream metadata of its source (see :mod:`realtime.video_io`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from models.common.errors import InputFileError, UserError, first_line
from models.common.files import DiskFull, check_output_file, make_parent, refuse_overwriting_inputs, room_for
from models.common.images import letterbox
from realtime.frames import Sink
from realtime.video_io.codecs import (CODECS, CONTAINER_FORMAT, DEFAULT_CODEC, ENCODER_OPTIONS, LIVE_ENCODER_OPTIONS,
                                      PIXEL_FORMAT, available_codecs, encoder_for)
from realtime.video_io.metadata import muxer_takes
from realtime.video_io.sound import Sound, set_stream_metadata
from realtime.video_io.convert import LIVE_TIME_BASE, bgr_to_yuv420p

CLOSING_ROOM = 96 * 1024
INDEX_BYTES_PER_PACKET = 40  # an index entry per packet, generously (mp4: stsz, stco, stts, ctts, stss)


class VideoFileSink(Sink):
    """A video file written through PyAV; each frame at its presentation time.

    The codec follows ``codec`` or the suffix (:data:`DEFAULT_CODEC`). The output size is
    ``size`` or the first frame's; frames of another size are letterboxed into it, never
    stretched. Odd sides are padded by one pixel for codecs that need even ones (with a
    one-line note). ``audio_from`` names the input file whose sound streams and metadata
    (languages, titles, creation time) are carried over, up to the time of the last frame (all
    of it once :meth:`end_of_stream` was called). ``inputs`` (with ``audio_from``) are the
    files the run reads: the output may be none of them. A folder that does not exist yet
    is created. When the disk (or ``ulimit -f``) leaves too little room for the next frame, the
    file is closed properly, so what was written plays, and :class:`InputFileError` says so.
    ``realtime``: the frames come from a live run, which the encoder must not slow down (a faster
    preset, :data:`LIVE_ENCODER_OPTIONS`); a render of a file takes the time it needs.
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str | None = None,
                 size: tuple[int, int] | None = None, audio_from: str | os.PathLike | None = None,
                 time_base: Fraction | None = None, log: Callable[[str], None] = print,
                 inputs: Sequence[str | os.PathLike | None] = (), realtime: bool = False):
        self.path = Path(path)
        self.realtime = realtime
        suffix = self.path.suffix.lower()
        if self.path.is_dir():
            raise InputFileError(self.path, f"is a folder, expected a video file name "
                                            f"({', '.join(sorted(DEFAULT_CODEC))})")
        if suffix not in DEFAULT_CODEC:
            raise InputFileError(self.path, f"unsupported video suffix {suffix or '(none)'!r}; use one of "
                                            f"{sorted(DEFAULT_CODEC)}")
        check_output_file(self.path, "a video file name")
        refuse_overwriting_inputs(self.path, [*inputs, audio_from])
        self.codec = codec or DEFAULT_CODEC[suffix]
        if self.codec not in CODECS:
            raise UserError(f"unknown codec {self.codec!r}; choose from {', '.join(CODECS)}")
        self.encoder = encoder_for(self.codec)
        if self.encoder is None:
            raise UserError(f"this PyAV wheel has no {self.codec} encoder; available: {', '.join(available_codecs())}")
        if self.codec == "ffv1" and suffix != ".mkv":
            raise InputFileError(self.path, "ffv1 (lossless) is written to .mkv only: change the suffix")
        if not muxer_takes(CONTAINER_FORMAT[suffix], (self.encoder, PIXEL_FORMAT[self.codec]), lambda c: None):
            raise InputFileError(self.path, f"a {suffix} file cannot hold {self.codec}: use .mkv, which holds them all")
        self.fps, self.size, self.log = fps, size, log
        self.time_base = time_base or LIVE_TIME_BASE
        # The sound is planned here, so that its note comes before any progress bar; the file
        # itself is written from the first frame on (a run that fails before leaves none).
        self.audio = Sound(Path(audio_from), self.path, (self.encoder, PIXEL_FORMAT[self.codec]), log) \
            if audio_from else None
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.coded: tuple[int, int] | None = None  # the encoded size: the output size, padded to even sides
        self.frames = 0
        self._last_pts = -1
        self._end: float | None = None  # seconds: the end of the last frame written
        self._complete = False
        self._given = 0  # bytes of the packets given to the muxer
        self._packets = 0
        self._largest = 0  # the largest frame's packets, in bytes
        self._failed: str | None = None  # why writing stopped (a full disk), once it did

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
        make_parent(self.path)
        try:  # faststart: the index goes first, so a browser starts playing before the whole file is in
            self.container = av.open(str(self.path), "w", options={"movflags": "+faststart"} if mp4 else {})
        except (av.FFmpegError, OSError) as e:
            raise InputFileError(self.path, f"cannot write a video here ({first_line(e)})") from None
        try:
            s = self.container.add_stream(self.encoder, rate=Fraction(self.fps).limit_denominator(1001),
                                          options=(LIVE_ENCODER_OPTIONS if self.realtime
                                                   else ENCODER_OPTIONS).get(self.encoder, {}))
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
                set_stream_metadata(s, self.audio.video_metadata, self.container.format.name)
                self.audio.attach(self.container)
            self.container.start_encoding()
        except (av.FFmpegError, OSError, ValueError) as e:  # nothing playable: no file is left behind
            self._discard()
            raise InputFileError(self.path, f"cannot write this video ({first_line(e)})") from None

    def _discard(self) -> None:
        """Close and delete an output that holds no frame."""
        try:
            self.container.close()
        except Exception:
            pass
        self.container = None
        self.path.unlink(missing_ok=True)

    def _mux(self, packets: list[av.Packet]) -> None:
        """Write ``packets``, if the disk leaves room for them and for closing the file after them;
        else stop writing (:class:`DiskFull`) with the file still closable."""
        if self._failed or not packets:
            if self._failed:
                raise DiskFull(self._failed)
            return
        size = sum(p.size for p in packets)
        try:
            written = self.path.stat().st_size
        except OSError:
            written = 0
        pending = max(0, self._given - written)  # in the muxer's buffers, not yet on disk
        needed = pending + size + CLOSING_ROOM + INDEX_BYTES_PER_PACKET * (self._packets + len(packets))
        if room_for(self.path, written) < needed:
            self._stop("the disk is full (or the file size limit is reached)")
        try:
            self.container.mux(packets)
        except (av.FFmpegError, OSError) as e:
            self._stop(f"the disk refused the write ({first_line(e)})")
        self._given += size
        self._packets += len(packets)

    def _stop(self, why: str) -> None:
        seconds = f" ({self._end:.1f} s)" if self._end else ""
        self._failed = (f"{why} after {self.frames} frame{'s' * (self.frames != 1)}{seconds}: "
                        f"the file holds {'them' if self.frames != 1 else 'it'} and plays; free some space "
                        f"and render again" if self.frames else f"{why}: nothing could be written")
        raise DiskFull(self._failed)

    def write(self, frame: np.ndarray) -> None:
        self.write_at(frame, None)

    def write_at(self, frame: np.ndarray, pts: float | None) -> None:
        """Encode ``frame`` shown at ``pts`` seconds (None: one frame period after the last)."""
        if self._failed:
            raise InputFileError(self.path, self._failed)
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
        try:
            self._mux(self.stream.encode(video))
            if self.audio is not None:
                self.audio.mux_until(float(ticks * self.time_base), self._mux)
        except DiskFull as e:
            raise InputFileError(self.path, str(e)) from None
        step = ticks - self._last_pts if self._last_pts >= 0 else round(1 / (self.fps * self.time_base))
        self._end = float((ticks + step) * self.time_base)
        self._last_pts = ticks
        self.frames += 1

    def end_of_stream(self) -> None:
        """The source ended: all of its sound belongs in the file, not only up to the last frame."""
        self._complete = True

    def close(self) -> None:
        """Flush the encoders and write the index, so the file plays; after a full disk, only the
        index (the room for it was kept). Never raises for a full disk: :meth:`write_at` said so."""
        if self.container is not None:
            try:
                if not self._failed:
                    self._mux(self.stream.encode(None))
                    if self.audio is not None:
                        self.audio.mux_until(None if self._complete else self._end, self._mux)
                        self.audio.flush(self._mux)
            except DiskFull:
                pass
            try:
                self.container.close()
            except (av.FFmpegError, OSError) as e:
                if not self._failed:
                    self._failed = f"cannot finish the file ({first_line(e)})"
                    if self.audio is not None:
                        self.audio.close()
                    raise InputFileError(self.path, self._failed) from None
        if self.audio is not None:
            self.audio.close()
