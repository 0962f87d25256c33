"""What a written file carries over from the file it came from: stream metadata (language, title,
creation time), and whether a container takes a codec, found by trying its muxer."""

from __future__ import annotations

import io
from collections.abc import Callable

import av


OWN_METADATA = {"encoder", "major_brand", "minor_version", "compatible_brands", "duration"}
# Stream metadata to carry over: what a player shows (the track's language and title) and when it was made.
STREAM_METADATA = ("language", "title", "handler_name", "creation_time")


def carried(metadata: dict, keys: tuple[str, ...] | None = None) -> dict[str, str]:
    """The entries of ``metadata`` worth carrying to the output (matched case-insensitively)."""
    out = {}
    for key, value in metadata.items():
        k = key.lower()
        if (k in keys) if keys is not None else (k not in OWN_METADATA and not k.startswith("_")):
            if k in ("language",) and value in ("und", ""):
                continue
            out[k] = value
    return out


def muxer_takes(fmt: str, video: tuple[str, str], audio: Callable[[av.container.OutputContainer], object]) -> bool:
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


