"""Reading and writing video files with PyAV: :class:`VideoFileSource` and :class:`VideoFileSink`
(see :mod:`realtime.video_io`)."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from models.common.errors import InputFileError, UserError, first_line
from models.common.files import DiskFull, check_output_file, make_parent, refuse_overwriting_inputs, room_for
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
_OWN_METADATA = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}
# Stream metadata to carry over: what a player shows (the track's language and title) and when it was made.
_STREAM_METADATA = ("language", "title", "handler_name", "creation_time")


def _carried(metadata: dict, keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """The entries of ``metadata`` worth carrying to the output (matched case-insensitively)."""
    out = {}
    for key, value in metadata.items():
        k = key.lower()
        if (k in keys) if keys is not None else (k not in _OWN_METADATA and not k.startswith("_")):
            if k in ("language",) and value in ("und", ""):
                continue
            out[k] = value
    return out


def _muxer_takes(fmt: str, video: tuple[str, str], audio: Callable[[av.container.OutputContainer], object]) -> bool:
    """Whether FFmpeg's ``fmt`` muxer writes a header for a video stream of encoder ``video`` (name,
    pixel format) beside the sound stream that ``audio(container)`` adds: the muxer decides, not a
    list of codecs (``supported_codecs`` says .mov holds Opus and FLAC; its header refuses them)."""
    try:
        with av.open(io.BytesIO(), "w", format=fmt) as trial:
            s = trial.add_stream(video[0], rate=25)
            s.width, s.height, s.pix_fmt = 16, 16, video[1]
            audio(trial)
            trial.start_encoding()
        return True
    except (av.FFmpegError, ValueError, TypeError):
        return False


class _Audio:
    """The sound streams (and the metadata) of an input file, muxed into the output up to a given time.

    A stream is copied packet by packet where the output's muxer takes its codec (tried with a
    header written to memory); otherwise it is decoded and re-encoded (AAC, or Opus where the
    muxer takes no AAC), or refused before any work when the muxer takes neither.
    """

    def __init__(self, path: Path, out: Path, video: tuple[str, str], log: Callable[[str], None]):
        """Plan what each stream needs for an output ``out`` with a video stream of ``video``
        (encoder, pixel format)."""
        suffix = out.suffix.lower()
        fmt = CONTAINER_FORMAT[suffix]
        try:
            self.input = av.open(str(path))
        except (av.FFmpegError, UnicodeDecodeError) as e:
            raise InputFileError(path, f"cannot open this video ({first_line(e)})") from None
        self.origin = _origin(self.input)
        self.metadata = _carried(dict(self.input.metadata))
        video_in = self.input.streams.video[0] if self.input.streams.video else None
        self.video_metadata = _carried(dict(video_in.metadata), _STREAM_METADATA) if video_in is not None else {}
        self.streams = [s for s in self.input.streams.audio if s.codec_context.name]
        self.target: dict[int, str | None] = {}  # stream index -> encoder, None to copy
        for s in self.streams:
            name = s.codec_context.name
            if _muxer_takes(fmt, video, lambda c, s=s: c.add_stream_from_template(s)):
                self.target[s.index] = None
                continue
            for encoder in ("aac", "libopus", "mp3", "pcm_s16le"):
                try:
                    av.Codec(encoder, "w")
                except Exception:
                    continue
                if _muxer_takes(fmt, video, lambda c, e=encoder: _sound_stream(c, e, s)):
                    self.target[s.index] = encoder
                    log(f"note: the sound ({name}) cannot go into {suffix} as it is; re-encoded to "
                        f"{ {'aac': 'AAC', 'libopus': 'Opus', 'mp3': 'MP3', 'pcm_s16le': 'PCM'}[encoder]}")
                    break
            else:
                self.input.close()
                raise InputFileError(out, f"a {suffix} file can hold neither this sound ({name}) nor any sound "
                                          f"this PyAV wheel can encode: use .mkv, which holds them all")
        self.output: av.container.OutputContainer | None = None
        self.out: dict[int, av.stream.Stream] = {}
        self._packets = self.input.demux(self.streams) if self.streams else iter(())
        self._waiting: av.Packet | None = None
        self._done = False

    def attach(self, output: av.container.OutputContainer) -> None:
        """Add the sound streams to ``output`` (after its video stream), with their language and title."""
        self.output = output
        for key, value in self.metadata.items():
            output.metadata[key] = value
        for s in self.streams:
            target = self.target[s.index]
            o = output.add_stream_from_template(s) if target is None else _sound_stream(output, target, s)
            _set_stream_metadata(o, _carried(dict(s.metadata), _STREAM_METADATA), output.format.name)
            self.out[s.index] = o

    def mux_until(self, seconds: float | None, mux: Callable[[list[av.Packet]], None]) -> None:
        """Write the sound up to ``seconds`` from the start (None: all of it) through ``mux``."""
        while not self._done:
            try:
                packet = self._waiting or next(self._packets, None)
            except av.FFmpegError:  # a damaged tail of the sound: what was read is kept
                packet = None
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
            self._write(packet, mux)

    def _write(self, packet: av.Packet, mux: Callable[[list[av.Packet]], None]) -> None:
        index = packet.stream.index
        out = self.out[index]
        if self.target[index] is None:
            shift = round(self.origin / packet.time_base) if self.origin else 0
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = out
            mux([packet])
            return
        try:
            frames = packet.decode()
        except av.FFmpegError:  # a damaged sound packet: skipped, as a damaged frame is
            return
        for frame in frames:
            if frame.pts is not None and self.origin:
                frame.pts -= round(self.origin / frame.time_base)
            mux(out.encode(frame))

    def flush(self, mux: Callable[[list[av.Packet]], None]) -> None:
        """Flush the re-encoded streams."""
        for index, out in self.out.items():
            if self.target[index] is not None:
                mux(out.encode(None))

    def close(self) -> None:
        self.input.close()


def _set_stream_metadata(stream: av.stream.Stream, metadata: dict[str, str], fmt: str) -> None:
    """Give an output stream its input's language and title. MP4 and QuickTime keep a track's name
    as its handler name (FFmpeg writes a title there only for .mov, and reads neither back as one)."""
    for key, value in metadata.items():
        stream.metadata[key] = value
    if "title" in metadata and "handler_name" not in metadata and fmt.split(",")[0] in ("mp4", "mov"):
        stream.metadata["handler_name"] = metadata["title"]


def _sound_stream(container: av.container.OutputContainer, encoder: str, like: av.stream.Stream):
    """A sound stream of ``encoder`` in ``container`` for the sound of ``like`` (stereo at most)."""
    rate = like.rate if encoder != "libopus" else 48_000
    o = container.add_stream(encoder, rate=rate)
    o.layout = like.layout.name if like.layout.nb_channels <= 2 else "stereo"
    return o


# Bytes kept free for closing a file properly (the muxer's buffer and the index, moov or cues, written
# last): a render stops while this much room is left, so that what it wrote stays playable.
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
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str | None = None,
                 size: tuple[int, int] | None = None, audio_from: str | os.PathLike | None = None,
                 time_base: Fraction | None = None, log: Callable[[str], None] = print,
                 inputs: Sequence[str | os.PathLike | None] = ()):
        self.path = Path(path)
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
        if not _muxer_takes(CONTAINER_FORMAT[suffix], (self.encoder, PIXEL_FORMAT[self.codec]), lambda c: None):
            raise InputFileError(self.path, f"a {suffix} file cannot hold {self.codec}: use .mkv, which holds them all")
        self.fps, self.size, self.log = fps, size, log
        self.time_base = time_base or LIVE_TIME_BASE
        # The sound is planned here, so that its note comes before any progress bar; the file
        # itself is written from the first frame on (a run that fails before leaves none).
        self.audio = _Audio(Path(audio_from), self.path, (self.encoder, PIXEL_FORMAT[self.codec]), log) \
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
                _set_stream_metadata(s, self.audio.video_metadata, self.container.format.name)
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
