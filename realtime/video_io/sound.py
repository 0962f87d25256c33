"""The sound of a rendered video: copied from its source where the container takes its codec,
re-encoded where it does not (the muxer is tried, not a codec list)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av

from models.common.errors import InputFileError, first_line
from realtime.video_io.codecs import CONTAINER_FORMAT
from realtime.video_io.metadata import STREAM_METADATA, carried, muxer_takes
from realtime.video_io.reader import origin_seconds

class Sound:
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
        self.origin = origin_seconds(self.input)
        self.metadata = carried(dict(self.input.metadata))
        video_in = self.input.streams.video[0] if self.input.streams.video else None
        self.video_metadata = carried(dict(video_in.metadata), STREAM_METADATA) if video_in is not None else {}
        self.streams = [s for s in self.input.streams.audio if s.codec_context.name]
        self.target: dict[int, str | None] = {}  # stream index -> encoder, None to copy
        for s in self.streams:
            name = s.codec_context.name
            if muxer_takes(fmt, video, lambda c, s=s: c.add_stream_from_template(s)):
                self.target[s.index] = None
                continue
            for encoder in ("aac", "libopus", "mp3", "pcm_s16le"):
                try:
                    av.Codec(encoder, "w")
                except Exception:
                    continue
                if muxer_takes(fmt, video, lambda c, e=encoder: sound_stream(c, e, s)):
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
            o = output.add_stream_from_template(s) if target is None else sound_stream(output, target, s)
            set_stream_metadata(o, carried(dict(s.metadata), STREAM_METADATA), output.format.name)
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


def set_stream_metadata(stream: av.stream.Stream, metadata: dict[str, str], fmt: str) -> None:
    """Give an output stream its input's language and title. MP4 and QuickTime keep a track's name
    as its handler name (FFmpeg writes a title there only for .mov, and reads neither back as one)."""
    for key, value in metadata.items():
        stream.metadata[key] = value
    if "title" in metadata and "handler_name" not in metadata and fmt.split(",")[0] in ("mp4", "mov"):
        stream.metadata["handler_name"] = metadata["title"]


def sound_stream(container: av.container.OutputContainer, encoder: str, like: av.stream.Stream):
    """A sound stream of ``encoder`` in ``container`` for the sound of ``like`` (stereo at most)."""
    rate = like.rate if encoder != "libopus" else 48_000
    o = container.add_stream(encoder, rate=rate)
    o.layout = like.layout.name if like.layout.nb_channels <= 2 else "stereo"
    return o


# Bytes kept free for closing a file properly (the muxer's buffer and the index, moov or cues, written
# last): a render stops while this much room is left, so that what it wrote stays playable.
