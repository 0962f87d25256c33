"""Small clips made with PyAV: frames at chosen times, an optional sine-wave sound track, a rotation."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from realtime.video_io import CONVERT

AUDIO_RATE = 44_100
AUDIO_FRAME = 1024  # samples in one AAC frame


def make_clip(path: Path, times: list[float], size: tuple[int, int] = (160, 120), sound: float | None = 2.0,
              rotation: int = 0, codec: str = "libx264", pix_fmt: str = "yuv420p") -> Path:
    """Frames shown at ``times`` (seconds), ``sound`` seconds of a 440 Hz sine (None: no sound).

    Frame i is grey level 20 + (5 i mod 200) with a white square in its top-left corner, so order and
    orientation can be checked after a round trip.
    """
    time_base = Fraction(1, 1000)
    w, h = size
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=30)
        video.width, video.height, video.pix_fmt = w, h, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        audio = None
        if sound:
            audio = out.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "mono"
        for i, t in enumerate(times):
            image = np.full((h, w, 3), 20 + 5 * i % 200, np.uint8)
            image[: h // 4, : w // 4] = 255
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(t / time_base), time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            total = round(sound * AUDIO_RATE)
            for start in range(0, total, AUDIO_FRAME):
                n = np.arange(start, min(start + AUDIO_FRAME, total))
                samples = (0.3 * np.sin(2 * np.pi * 440 * n / AUDIO_RATE)).astype(np.float32)[None]
                frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
                out.mux(audio.encode(frame))
            out.mux(audio.encode(None))
    return path


def probe(path: Path) -> dict:
    """What a player sees: video codec, pixel format, size, rotation, frame times and images; sound duration."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        info = {"codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt, "size": (v.width, v.height),
                "rotation": frames[0].rotation, "times": [f.time for f in frames],
                "images": [f.to_ndarray(format="bgr24", interpolation=CONVERT) for f in frames], "audio": None}
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            decoded = list(c.decode(a))
            info["audio"] = {"codec": a.codec_context.name, "rate": a.rate,
                             "seconds": sum(f.samples for f in decoded) / a.rate,
                             "end": decoded[-1].time + decoded[-1].samples / a.rate}
    return info
