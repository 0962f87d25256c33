"""Which video codecs and containers the writer knows, and which encoders this PyAV wheel has."""

from __future__ import annotations

import av

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
ENCODER_OPTIONS = {  # quality close to the input, at a speed that renders files well on a CPU
    "libx264": {"crf": "18", "preset": "veryfast"},
    "libvpx-vp9": {"crf": "30", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
    "libsvtav1": {"crf": "32", "preset": "10"},
    "libaom-av1": {"crf": "32", "cpu-used": "8"},
    "mjpeg": {"q:v": "3"},
}
# A live recording shares the CPU with the effect it records: x264's superfast preset took 10-12 ms
# of CPU a frame at 640x480 against veryfast's 18-21 (2-core AMX Xeon, stylised frames), for files
# about 12% larger at the same quality setting. Renders of files keep the slower preset.
LIVE_ENCODER_OPTIONS = {**ENCODER_OPTIONS, "libx264": {"crf": "18", "preset": "superfast"}}
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
