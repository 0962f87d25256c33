"""Video files through the CLI: sound, every frame's time, rotation, size, codecs, Ctrl+C, letterboxing.

Clips are made here with PyAV (tests/helpers/clips.py) and the results read back with PyAV.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from realtime.effects import EFFECTS, Effect, register
from realtime.runner import Runner
from realtime.sources import Source
from realtime.video_io import VideoFileSink, VideoFileSource, available_codecs, letterbox
from tests.helpers.browser import chromium as start_browser
from tests.helpers.clips import AUDIO_FRAME, AUDIO_RATE, make_clip, probe

VFR_TIMES = [i / 10 for i in range(10)] + [1 + i / 30 for i in range(30)]  # 10 at 10 FPS, then 30 at 30 FPS
ONE_AUDIO_FRAME = AUDIO_FRAME / AUDIO_RATE


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "realtime", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def _render(source, out, *extra):
    r = _run("--source", source, "--out", out, "--no-window", "--no-hud", "--effect", "none", *extra)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "vfr.mp4", VFR_TIMES, sound=2.0)


def test_a_clip_keeps_its_sound_every_frame_and_each_frames_time(vfr_clip, tmp_path):
    out = tmp_path / "styled.mp4"
    r = _render(vfr_clip, out)  # no --no-drop: a file rendered to a file keeps every frame by default
    assert "frames in 40, out 40, dropped 0" in r.stdout
    src, res = probe(vfr_clip), probe(out)
    assert res["codec"] == "h264" and res["pix_fmt"] == "yuv420p"
    assert len(res["times"]) == len(src["times"]) == 40
    assert np.abs(np.array(res["times"]) - src["times"]).max() < 1e-3  # variable frame rate survives
    # the frames are the input's, in order (grey levels 5 apart), codec noise aside
    level = lambda images: np.array([float(img[-10:, -10:].mean()) for img in images])  # noqa: E731
    assert np.abs(level(res["images"]) - level(src["images"])).max() < 2
    assert res["audio"]["codec"] == "aac"  # copied
    assert abs(res["audio"]["seconds"] - src["audio"]["seconds"]) <= ONE_AUDIO_FRAME


def _x264_subme(path: Path) -> int:
    """x264's sub-pixel motion setting, from the settings it writes into the stream: 1 for the
    superfast preset, 2 for veryfast."""
    found = re.search(rb"subme=(\d+)", path.read_bytes())
    assert found, "no x264 settings in the stream"
    return int(found.group(1))


def test_a_live_recording_uses_a_faster_preset_and_a_file_render_the_thorough_one(vfr_clip, tmp_path):
    """A live run shares the CPU with its effect: its recording is encoded with x264's superfast
    preset; a render of a file, which takes the time it needs, with veryfast."""
    live, render = tmp_path / "live.mp4", tmp_path / "render.mp4"
    assert _run("--source", "demo", "--no-window", "--effect", "none", "--max-frames", "4", "--out", live).returncode == 0
    assert _run("--source", vfr_clip, "--no-window", "--effect", "none", "--out", render).returncode == 0
    assert (_x264_subme(live), _x264_subme(render)) == (1, 2)


def test_a_file_render_shows_progress_with_frames_and_time_left(vfr_clip, tmp_path, capsys):
    Runner(VideoFileSource(vfr_clip), [VideoFileSink(tmp_path / "o.mp4", fps=30.0)], effect="none", drop=False,
           hud=False, progress=True).run()
    bar = capsys.readouterr().err
    assert "40/40" in bar and "frame/s" in bar and "<00:00" in bar  # done, speed, time left


def test_a_rotated_phone_clip_comes_out_upright(tmp_path):
    clip = make_clip(tmp_path / "phone.mp4", [i / 10 for i in range(5)], size=(160, 120), rotation=90, sound=None)
    out = tmp_path / "out.mp4"
    _render(clip, out)
    res = probe(out)
    assert res["size"] == (120, 160) and res["rotation"] == 0
    # rotation 90 (counter-clockwise on display): the top-left white square ends bottom-left
    white = res["images"][0][..., 0] > 200
    ys, xs = np.nonzero(white)
    assert ys.mean() > 160 * 0.75 and xs.mean() < 120 * 0.25


@pytest.fixture(scope="module")
def odd_clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("odd") / "odd.mkv", [i / 20 for i in range(8)], size=(161, 121),
                     sound=0.5, codec="ffv1", pix_fmt="bgr0")


def test_an_odd_size_is_kept_exactly_in_ffv1_and_padded_with_a_note_in_h264(odd_clip, tmp_path):
    exact = tmp_path / "exact.mkv"
    _render(odd_clip, exact, "--codec", "ffv1")
    res = probe(exact)
    assert res["codec"] == "ffv1" and res["size"] == (161, 121)
    assert np.array_equal(res["images"][3], probe(odd_clip)["images"][3])  # lossless
    padded = tmp_path / "padded.mp4"
    r = _render(odd_clip, padded)
    assert probe(padded)["size"] == (162, 122)
    notes = [line for line in r.stderr.replace("\r", "\n").splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "161x121 is padded to 162x122" in notes[0]


def test_sound_that_the_container_cannot_hold_is_re_encoded_with_a_note(vfr_clip, tmp_path):
    out = tmp_path / "out.webm"
    r = _render(vfr_clip, out)
    assert "note: the sound (aac) cannot go into .webm as it is; re-encoded to Opus" in r.stderr
    res = probe(out)
    assert res["codec"] == "vp9" and res["audio"]["codec"] == "opus"
    assert abs(res["audio"]["seconds"] - 2.0) < 0.05  # 2 s of sine, whatever the codec's padding
    assert np.abs(np.array(res["times"]) - VFR_TIMES).max() < 2e-3  # WebM counts in milliseconds


@pytest.mark.parametrize("codec", [c for c in ("vp9", "av1") if c in available_codecs()])
def test_other_codecs_of_the_wheel(vfr_clip, tmp_path, codec):
    out = tmp_path / "out.mkv"
    _render(vfr_clip, out, "--codec", codec, "--max-frames", 5)
    res = probe(out)
    assert res["codec"] in {"vp9": ("vp9", "libvpx-vp9"), "av1": ("av1", "libdav1d", "libaom-av1")}[codec]
    assert len(res["times"]) == 5


def test_ctrl_c_leaves_a_playable_file_with_its_sound_up_to_there(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", [i / 30 for i in range(300)], size=(320, 240), sound=10.0)
    out = tmp_path / "out.mp4"
    terminal, child_end = pty.openpty()  # stderr on a terminal (of 100 columns): the progress bar shows
    fcntl.ioctl(child_end, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    p = subprocess.Popen([sys.executable, "-m", "realtime", "--source", str(clip), "--out", str(out), "--no-window",
                          "--no-hud", "--provider", "cpu", "--backend", "onnxruntime"],
                         stdout=subprocess.PIPE, stderr=child_end,
                         # Ctrl+C as a user's terminal delivers it. In two full fresh-clone runs (never
                         # alone) the render on the OpenVINO backend ran to the end with exit code 0: that
                         # case is not understood yet and is left to its own issue; this test pins onnxruntime
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(child_end)
    stderr = b""
    while p.poll() is None:  # until the bar passed 10 frames
        stderr += os.read(terminal, 1000)
        if max((int(n) for n in re.findall(rb"(\d+)/300", stderr[-300:])), default=0) >= 10:
            break
    p.send_signal(signal.SIGINT)
    stdout, _ = p.communicate(timeout=120)
    while True:
        try:
            stderr += os.read(terminal, 10000)
        except OSError:  # the child's end closed
            break
    os.close(terminal)
    assert p.returncode == 130, stderr.decode()
    assert b"interrupted: " in stderr
    res = probe(out)
    done = len(res["times"])
    assert 10 <= done < 300
    video_end = res["times"][-1] + 1 / 30
    assert abs(res["audio"]["end"] - video_end) <= ONE_AUDIO_FRAME
    assert f"out {done}".encode() in stdout


def _circle_picture(w: int, h: int) -> np.ndarray:
    img = np.full((h, w, 3), 40, np.uint8)
    r = min(w, h) // 3
    cv2.circle(img, (w // 2, h // 2), r, (255, 255, 255), -1)
    return img


def _circle_extent(image: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(image[..., 0] > 150)
    return xs.max() - xs.min() + 1, ys.max() - ys.min() + 1


@pytest.mark.parametrize("out_size", [None, "480x270"])
def test_a_folder_of_mixed_sizes_is_letterboxed_never_stretched(tmp_path, out_size):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, (w, h) in enumerate([(320, 240), (240, 320), (400, 100)]):
        cv2.imwrite(str(folder / f"{i}.png"), _circle_picture(w, h))
    out = tmp_path / "slides.mp4"
    _render(folder, out, *(["--out-size", out_size] if out_size else []))
    res = probe(out)
    assert res["size"] == ((320, 240) if out_size is None else (480, 270))
    assert len(res["images"]) == 3
    for image in res["images"]:
        w, h = _circle_extent(image)
        assert abs(w - h) <= 2, (w, h)


@pytest.mark.parametrize("colorspace, color_range", [("ITU601", "MPEG"), ("ITU709", "MPEG"), ("ITU601", "JPEG")])
def test_decoding_follows_each_frames_matrix_and_range_as_ffmpeg_does(colorspace, color_range):
    from realtime.video_io import CONVERT, frame_to_bgr

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3)).astype(np.uint8), (9, 9), 3)
    image = np.clip(image.astype(int) * 2 - 128, 0, 255).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(
        format="yuv420p", interpolation=CONVERT, dst_colorspace=colorspace, dst_color_range=color_range)
    ours = frame_to_bgr(frame).astype(int)
    ffmpeg = frame.to_ndarray(format="bgr24", interpolation=CONVERT, src_color_range=frame.color_range).astype(int)
    assert np.abs(ours - ffmpeg).mean() < 0.8  # the other matrix, or the other range, gives 1.7 or more
    assert np.abs(ours - image).mean() < 3  # and close to what was encoded


@pytest.mark.parametrize("full_range", [False, True])
def test_encoding_converts_as_ffmpeg_does(full_range):
    from realtime.video_io import CONVERT, bgr_to_yuv420p

    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3)).astype(np.uint8), (9, 9), 3)
    ours = bgr_to_yuv420p(image, full_range).to_ndarray().astype(int)
    ffmpeg = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(
        format="yuv420p", interpolation=CONVERT, dst_colorspace="ITU601",
        dst_color_range="JPEG" if full_range else "MPEG").to_ndarray()
    assert np.abs(ours - ffmpeg).mean() < 0.5 and abs((ours - ffmpeg).mean()) < 0.3  # rounding apart


def test_letterbox_keeps_the_aspect_and_centres():
    img = np.full((100, 400, 3), 255, np.uint8)
    out = letterbox(img, (200, 200))
    assert out.shape == (200, 200, 3)
    rows = np.nonzero(out[:, 100, 0] > 0)[0]
    assert rows.min() == 75 and rows.max() == 124
    page = letterbox(np.zeros((100, 400, 3), np.uint8), (200, 200), fill=(255, 250, 240))
    assert (page[0, 0] == (255, 250, 240)).all() and (page[199, 199] == (255, 250, 240)).all()
    assert (page[75:125] == 0).all()  # the picture itself is not tinted


class _Camera(Source):
    """A live source that gives a frame every 0.1 s while claiming 30 FPS."""

    live, fps = True, 30.0

    def __init__(self, frames: int):
        self.left = frames

    def read(self):
        if self.left == 0:
            return None
        self.left -= 1
        time.sleep(0.1)
        return np.full((48, 64, 3), 100, np.uint8)


def test_a_live_source_is_recorded_at_its_capture_times(tmp_path):
    out = tmp_path / "cam.mp4"
    Runner(_Camera(6), [VideoFileSink(out, fps=30.0)], effect="none", drop=False, hud=False, stabilize=False).run()
    gaps = np.diff(probe(out)["times"])
    assert len(gaps) == 5 and gaps.min() >= 0.09  # real time between captures, not 1/30 s


class _SlowEffect(Effect):
    name = "slow-video-test"

    def __init__(self, options=None):
        pass

    def __call__(self, frame):
        time.sleep(0.05)
        return frame


def test_dropping_frames_of_a_file_keeps_the_times_of_those_kept(vfr_clip, tmp_path):
    out = tmp_path / "dropped.mp4"
    register(_SlowEffect)
    try:
        summary = Runner(VideoFileSource(vfr_clip), [VideoFileSink(out, fps=30.0)], effect=_SlowEffect.name,
                         drop=True, hud=False, stabilize=False).run()
    finally:
        EFFECTS.pop(_SlowEffect.name)
    times = probe(out)["times"]
    assert summary["frames_out"] == len(times) < 40  # some were dropped
    for t in times:  # each kept frame at its own time: the file plays at the input's speed
        assert np.abs(np.array(VFR_TIMES) - t).min() < 1e-3


@pytest.mark.parametrize("args, problem", [
    (["--out", "{tmp}/c.mp4/out.mp4"], "is a file, not a folder"),  # a missing folder is created (issue 25)
    (["--out", "{tmp}/out.webm", "--codec", "h264"], "a .webm file cannot hold h264"),
    (["--out", "{tmp}/out.mp4", "--codec", "ffv1"], "ffv1 (lossless) is written to .mkv only"),
])
def test_bad_output_choices_give_one_clear_line(vfr_clip, tmp_path, args, problem):
    (tmp_path / "c.mp4").write_bytes(b"")
    r = _run("--source", vfr_clip, "--no-window", *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1 and problem in r.stderr, r.stderr
    assert not list(tmp_path.glob("out.*"))


def test_a_codec_the_wheel_lacks_is_named_with_those_it_has(monkeypatch, tmp_path):
    from models.common.errors import UserError
    from realtime.video_io import codecs, writer

    lacking = lambda codec: None if codec == "av1" else codecs.CODECS[codec][0]  # noqa: E731
    monkeypatch.setattr(codecs, "encoder_for", lacking)
    monkeypatch.setattr(writer, "encoder_for", lacking)
    with pytest.raises(UserError, match=r"no av1 encoder; available: h264, vp9, ffv1"):
        VideoFileSink(tmp_path / "o.mkv", fps=30.0, codec="av1")


# In a browser ------------------------------------------------------------------------------

PLAY = """
const [src, x, y, done] = arguments;
const v = document.createElement('video');
v.muted = true;
v.src = src;
v.onerror = () => done({error: v.error ? v.error.code + ' ' + v.error.message : 'error'});
v.addEventListener('loadeddata', () => v.play());
v.requestVideoFrameCallback(async (now, meta) => {
  const f = new VideoFrame(v);
  const rgba = new Uint8Array(f.allocationSize({format: 'RGBA'}));
  await f.copyTo(rgba, {format: 'RGBA'});
  const at = (py, px) => Array.from(rgba.slice((py * f.displayWidth + px) * 4, (py * f.displayWidth + px) * 4 + 3));
  f.close();
  v.pause();
  done({duration: v.duration, width: v.videoWidth, height: v.videoHeight, mediaTime: meta.mediaTime,
        marker: at(y, x), background: at(v.videoHeight - 1 - y, v.videoWidth - 1 - x),
        audioBytes: v.webkitAudioDecodedByteCount});
});
document.body.appendChild(v);
"""


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    yield from start_browser(tmp_path_factory, "--autoplay-policy=no-user-gesture-required")


@pytest.fixture
def served(tmp_path):
    """tmp_path over HTTP on 127.0.0.1 (a page from file:// may not read video pixels)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_the_rendered_file_plays_in_chromium(chromium, served, tmp_path, suffix):
    clip = make_clip(tmp_path / "in.mp4", [i / 30 for i in range(60)], size=(160, 120), sound=2.0)
    _render(clip, tmp_path / f"styled{suffix}")
    chromium.get(served + "/")
    got = chromium.execute_async_script(PLAY, f"/styled{suffix}", 10, 10)
    assert "error" not in got, got
    assert abs(got["duration"] - 2.0) < 0.1 and (got["width"], got["height"]) == (160, 120)
    assert min(got["marker"]) > 200 and max(got["background"]) < 80, got  # a real decoded frame
    assert got["audioBytes"] > 0  # the sound track was decoded too


def test_a_signal_that_cuts_ffmpeg_reading_short_is_ctrl_c_not_the_end_of_the_file(tmp_path, monkeypatch):
    # PyAV's interrupt callback makes FFmpeg give up with AVERROR_EXIT when Ctrl+C lands during a
    # read; taken as a damaged tail, a render ended "normally" with exit code 0 (seen once in CI).
    import av

    clip = make_clip(tmp_path / "c.mp4", [i / 10 for i in range(5)], size=(64, 48))
    src = VideoFileSource(clip)

    class Interrupted:  # the container, but its decoding is cut short as by Ctrl+C
        def __init__(self, real):
            self.real = real

        def decode(self, *args, **kwargs):
            raise av.ExitError(-1, "Immediate exit requested")
            yield  # a generator, as decode() is

        demux = decode  # the source reads packet by packet (a damaged frame is skipped, issue 25)

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(src, "container", Interrupted(src.container))
    src._first, src._decoded = None, src._decode()
    with pytest.raises(KeyboardInterrupt):
        src.read_timed()
    src.close()
