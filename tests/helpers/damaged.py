"""Inputs of issue 25's cases, made here: a video with a damaged frame, clips whose sound a container
cannot hold, tracks with languages, a corrupt JPEG, a checkpoint written without torch's training."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np


def damaged_avi(path: Path, frames: int = 30, bad: tuple[int, ...] = (12,), fps: int = 10,
                sound: float = 3.0) -> Path:
    """An MJPEG .avi of ``frames`` frames at ``fps`` with ``sound`` seconds of PCM, the frames in ``bad``
    zeroed (the packet keeps its size and time, its bytes are all 0). Frame i is grey level 20 + 5 i."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("mjpeg", rate=fps)
        v.width, v.height, v.pix_fmt = 160, 120, "yuvj420p"
        a = out.add_stream("pcm_s16le", rate=44_100)
        a.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 20 + 5 * i, np.uint8), format="bgr24")
            frame.pts = i
            for p in v.encode(frame):
                if i in bad:
                    zeroed = av.Packet(bytes(p.size))
                    zeroed.pts, zeroed.dts, zeroed.time_base, zeroed.stream = p.pts, p.dts, p.time_base, v
                    zeroed.is_keyframe = True
                    p = zeroed
                out.mux(p)
        out.mux(v.encode(None))
        total = round(sound * 44_100)
        for start in range(0, total, 1024):
            n = np.arange(start, min(start + 1024, total))
            samples = (3000 * np.sin(2 * np.pi * 440 * n / 44_100)).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 44_100, start
            out.mux(a.encode(frame))
        out.mux(a.encode(None))
    return path


def clip_with_sound(path: Path, video: str, audio: str, frames: int = 10, fps: int = 10, tracks: int = 1,
                    languages: list[str] | None = None, titles: list[str] | None = None,
                    creation_time: str | None = None, size: tuple[int, int] = (64, 48)) -> Path:
    """A clip of ``frames`` frames in encoder ``video`` and ``tracks`` stereo sound tracks in encoder
    ``audio`` (48 kHz, as long as the video), each with its language and title when given."""
    w, h = size
    rate = 48_000
    with av.open(str(path), "w") as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        v = out.add_stream(video, rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        streams = []
        for t in range(tracks):
            a = out.add_stream(audio, rate=rate)
            a.layout = "stereo"
            if languages:
                a.metadata["language"] = languages[t]
            if titles:
                a.metadata["title"] = titles[t]
            streams.append(a)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 10 + 10 * i, np.uint8), format="bgr24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        total = rate * frames // fps
        for a in streams:
            fmt = a.codec_context.format.name
            step = a.codec_context.frame_size or 1024
            resampler = av.AudioResampler(format=fmt, layout="stereo", rate=rate)
            for start in range(0, total, step):
                n = np.arange(start, min(start + step, total))
                wave = (0.2 * np.sin(2 * np.pi * 440 * n / rate)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                for f in resampler.resample(frame) if fmt != "fltp" else [frame]:
                    out.mux(a.encode(f))
            out.mux(a.encode(None))
    return path


def noise_clip(path: Path, frames: int = 40, size: tuple[int, int] = (320, 240), fps: int = 10,
               sound: bool = True) -> Path:
    """A clip of random noise (large packets: it fills a small disk fast), with sound."""
    rng = np.random.default_rng(0)
    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = out.add_stream("aac", rate=44_100) if sound else None
        if a is not None:
            a.layout = "mono"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), format="bgr24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            total = 44_100 * frames // fps
            for start in range(0, total, 1024):
                n = np.arange(start, min(start + 1024, total))
                frame = av.AudioFrame.from_ndarray((0.2 * np.sin(n / 7)).astype(np.float32)[None], format="flt",
                                                   layout="mono")
                frame.sample_rate, frame.pts = 44_100, start
                out.mux(a.encode(frame))
            out.mux(a.encode(None))
    return path


def corrupt_jpeg(path: Path, picture: np.ndarray, seed: int = 0, markers: bool = False) -> Path:
    """A JPEG whose headers (quantisation and Huffman tables, frame and scan headers) are real and
    whose entropy-coded data is random bytes (``markers``: with the 0xFF bytes that start markers)."""
    ok, buf = cv2.imencode(".jpg", picture)
    assert ok
    data = buf.tobytes()
    sos = data.index(b"\xff\xda")
    header_end = sos + 2 + int.from_bytes(data[sos + 2:sos + 4], "big")
    noise = np.random.default_rng(seed).integers(0, 256, len(data) - header_end, dtype=np.uint8).tobytes()
    path.write_bytes(data[:header_end] + (noise if markers else noise.replace(b"\xff", b"\x7f")) + b"\xff\xd9")
    return path


def decoded(path: Path) -> dict:
    """What a player gets from a file: frame count and times, the end of the video and of each sound
    track, and the metadata of the container and its streams."""
    with av.open(str(path)) as c:
        info = {"container": dict(c.metadata), "streams": [(s.type, dict(s.metadata)) for s in c.streams]}
        times, ends = [], []
        for frame in c.decode(video=0):
            times.append(float(frame.time))
        info["frames"], info["times"] = len(times), times
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        info["video_end"] = times[-1] + step if times else 0.0
    for k in range(len([s for s in info["streams"] if s[0] == "audio"])):
        with av.open(str(path)) as c:
            frames = list(c.decode(audio=k))
            ends.append(frames[-1].time + frames[-1].samples / frames[-1].sample_rate if frames else 0.0)
    info["audio_ends"] = ends
    return info
