"""Video files in and out through PyAV (FFmpeg): timestamps, sound, rotation and size kept.

OpenCV's file writer drops the sound, writes one constant frame rate and, in its wheel,
only MPEG-4 Part 2 in .mp4, which browsers do not play. Here a file source gives each
frame with its presentation time, and a file sink writes it at that time (variable frame
rate survives), copies the sound of the input (re-encoding it only where the container
cannot hold its codec), and writes H.264 in yuv420p by default, playable in browsers.
Cameras and windows stay with OpenCV (:mod:`realtime.sources`, :mod:`realtime.sinks`).
"""

from models.common.images import letterbox
from realtime.video_io.codecs import CODECS, available_codecs, encoder_for
from realtime.video_io.convert import CONVERT, bgr_to_yuv420p, frame_to_bgr
from realtime.video_io.reader import VideoFileSource
from realtime.video_io.writer import VideoFileSink

__all__ = ["CODECS", "CONVERT", "VideoFileSink", "VideoFileSource", "available_codecs", "bgr_to_yuv420p",
           "encoder_for", "frame_to_bgr", "letterbox"]
