"""Issue 6's table: every bad or unusual file, at every door a file comes in by.

A bad file gives one line naming the file and the problem (exit code 2 for the command
lines), nothing is written half, and nothing else breaks. An unusual but valid file
(1x1, grey, RGBA, 16-bit, CMYK) just works. The panel's uploads are in test_panel.py.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers.bad_files import (CHECKPOINT_CASES, IMAGE_CASES, MODEL_CASES, VIDEO_CASES, other_architecture,
                                     truncated_checkpoint, write_clip)

BAD_IMAGES = [k for k, (_, expected) in IMAGE_CASES.items() if expected]
ODD_IMAGES = [k for k, (_, expected) in IMAGE_CASES.items() if not expected]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Every case of the table, written once: ``image:empty``, ``video:truncated``, ``model:...``."""
    folder = tmp_path_factory.mktemp("cases")
    out = {}
    for kind, cases in (("image", IMAGE_CASES), ("video", VIDEO_CASES), ("model", MODEL_CASES),
                        ("checkpoint", CHECKPOINT_CASES)):
        (folder / kind).mkdir()
        for name, (build, _) in cases.items():
            out[f"{kind}:{name}"] = build(folder / kind)
    return out


def _one_line_error(capfd, code: int, *names: str) -> str:
    """Assert exit code 2 and a single 'error: FILE: problem' line on stderr; return it."""
    err = capfd.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for name in names:
        assert name in err, err
    return err


def _stylize(*args: str) -> int:
    from training.__main__ import main

    return main(["stylize", *args, "--provider", "cpu"])


def _realtime(*args: str) -> int:
    from realtime.__main__ import main

    return main([*args, "--no-window", "--no-hud"])


# Images ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_image_to_stylize_cli(files, case, tmp_path, capfd):
    path, out = files[f"image:{case}"], tmp_path / "out.png"
    err = _one_line_error(capfd, _stylize(str(path), "--out", str(out)), str(path), IMAGE_CASES[case][1])
    assert not out.exists() and list(tmp_path.iterdir()) == [], err


@pytest.mark.parametrize("case", ODD_IMAGES)
def test_unusual_image_to_stylize_cli_keeps_its_size(files, case, tmp_path, capfd):
    path, out = files[f"image:{case}"], tmp_path / "out.png"
    assert _stylize(str(path), "--out", str(out)) == 0, capfd.readouterr().err
    from models.common.images import read_rgb

    src, res = read_rgb(path), read_rgb(out)
    assert res.shape == src.shape
    if src.size > 3:
        assert np.abs(res.astype(int) - src).mean() > 5  # stylised, not copied


def test_bomb_is_refused_from_its_header_without_decoding(files):
    """400 megapixels would take 1.2 GB and seconds to decode; the header says no at once."""
    code = ("import re, time; from models.common.images import read_rgb; t = time.perf_counter()\n"
            f"try: read_rgb({str(files['image:bomb'])!r})\nexcept Exception as e: print(type(e).__name__, e)\n"
            "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)\n"
            "print(time.perf_counter() - t, int(peak) // 1024)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, figures = r.stdout.splitlines()
    seconds, peak_mb = float(figures.split()[0]), int(figures.split()[1])
    assert message.startswith("InputFileError") and "400 megapixels" in message
    assert seconds < 1.0 and peak_mb < 300, (seconds, peak_mb)


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_bad_style_image_to_training_cli(files, case, tmp_path, capfd, photos_dir):
    from training.__main__ import main

    path, run = files[f"image:{case}"], tmp_path / "run"
    code = main(["train", "--style", str(path), "--data", str(photos_dir), "--out", str(run), "--arch", "lite",
                 "--size", "32", "--steps", "1", "--device", "cpu", "--no-progress"])
    _one_line_error(capfd, code, str(path), IMAGE_CASES[case][1])
    assert not (run / "checkpoint.pt").exists()


def test_training_data_skips_bad_images_by_name_and_uses_unusual_ones(files, tmp_path):
    import shutil

    from training.data import CropDataset

    for key, path in files.items():
        if key.startswith("image:"):
            shutil.copy(path, tmp_path / path.name)
    ds = CropDataset(tmp_path, size=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        crops = {ds.files[i].name: ds[(i, 0)] for i in range(len(ds))}
    warned = " ".join(str(w.message) for w in caught)
    for case in BAD_IMAGES:
        assert files[f"image:{case}"].name in warned
    for case in ODD_IMAGES:
        assert files[f"image:{case}"].name not in warned
    assert all(c.shape == (3, 32, 32) for c in crops.values())
    # An unusual file yields its own picture: the grey one gives a grey crop.
    grey = crops["grey.png"]
    assert float((grey[0] - grey[1]).abs().max()) < 1e-6 and float(grey.std()) > 0.05


def test_image_folder_source_names_each_bad_file_and_renders_the_rest(files, tmp_path):
    import shutil

    folder = tmp_path / "frames"
    folder.mkdir()
    for key, path in files.items():
        if key.startswith("image:"):
            shutil.copy(path, folder / path.name)
    out = tmp_path / "out.avi"
    r = subprocess.run([sys.executable, "-m", "realtime", "--source", str(folder), "--effect", "none", "--out", str(out),
                        "--no-drop", "--no-window"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == len(BAD_IMAGES), r.stderr  # one line per bad file, nothing else
    for case in BAD_IMAGES:
        line = next(l for l in lines if l.startswith(f"warning: skipping {folder / files[f'image:{case}'].name}: "))
        assert IMAGE_CASES[case][1] in line
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (ok := cap.read())[0]:
        frames.append(ok[1])
    assert len(frames) == len(ODD_IMAGES)  # every readable image, whatever its size, in one video
    assert len({f.shape for f in frames}) == 1


# Videos ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(VIDEO_CASES))
def test_bad_video_to_live_runner(files, case, tmp_path):
    """In a process of its own, as a user runs it: FFmpeg's log level is set before its first use."""
    path, out = files[f"video:{case}"], tmp_path / "out.mp4"
    r = subprocess.run([sys.executable, "-m", "realtime", "--source", str(path), "--effect", "none", "--out", str(out),
                        "--no-drop", "--no-window"], capture_output=True, text=True)
    expected = VIDEO_CASES[case][1]
    if expected == "?" and r.returncode == 0:  # damaged frames decoded as they are: fine, and said in the summary
        assert "frames in" in r.stdout and "Traceback" not in r.stderr
        return
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert str(path) in r.stderr and (expected == "?" or expected in r.stderr), r.stderr
    assert not out.exists()


def test_a_good_clip_still_plays(tmp_path, capfd):
    clip = write_clip(tmp_path / "clip.mp4", frames=6)
    assert _realtime("--source", str(clip), "--effect", "none", "--out", str(tmp_path / "o.mp4"), "--no-drop") == 0
    assert "frames in 6, out 6" in capfd.readouterr().out


# Models ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", list(MODEL_CASES))
@pytest.mark.parametrize("door", ["stylize", "realtime"])
def test_bad_model_file(files, case, door, tmp_path, capfd):
    path, out = files[f"model:{case}"], tmp_path / ("out.png" if door == "stylize" else "out.mp4")
    if door == "stylize":
        code = _stylize("--model", str(path), "--out", str(out))
    else:
        code = _realtime("--source", "demo", "--model", str(path), "--max-frames", "2", "--out", str(out))
    _one_line_error(capfd, code, str(path), MODEL_CASES[case][1])
    assert not out.exists()


# Checkpoints -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_checkpoint(tmp_path_factory, photos_dir, style_images) -> Path:
    from training.train import TrainSettings, train

    out = tmp_path_factory.mktemp("run")
    return train(TrainSettings(style=[str(style_images[0])], data=str(photos_dir), out=str(out), arch="lite", size=32,
                               batch=1, steps=1, precision="fp32", device="cpu"), progress=False)


def _checkpoint(files, real_checkpoint, case, folder) -> tuple[Path, str]:
    if case == "other_architecture":
        return other_architecture(real_checkpoint, folder / "other.pt"), "weights do not fit its recorded architecture"
    if case == "truncated":
        return truncated_checkpoint(real_checkpoint, folder / "half.pt"), "not a loadable checkpoint"
    return files[f"checkpoint:{case}"], CHECKPOINT_CASES[case][1]


@pytest.mark.parametrize("case", [*CHECKPOINT_CASES, "other_architecture", "truncated"])
def test_bad_checkpoint_to_export_cli(files, real_checkpoint, case, tmp_path, capfd):
    from training.__main__ import main

    path, problem = _checkpoint(files, real_checkpoint, case, tmp_path)
    out = tmp_path / "model.onnx"
    _one_line_error(capfd, main(["export", str(path), "--out", str(out)]), str(path), problem)
    assert not out.exists()
    assert not (path.parent / "CODE_RAN").exists()  # the pickle's code never ran


@pytest.mark.parametrize("case", ["pickle_runs_code", "truncated", "other_architecture"])
def test_bad_checkpoint_to_resume(files, real_checkpoint, case, tmp_path, capfd, photos_dir, style_images):
    """A run folder whose checkpoint.pt is bad: --resume refuses it and leaves it as it was."""
    from training.__main__ import main

    run = tmp_path / "run"
    run.mkdir()
    src, problem = _checkpoint(files, real_checkpoint, case, tmp_path)
    (run / "checkpoint.pt").write_bytes(src.read_bytes())
    if case == "other_architecture":
        problem = "cannot resume with arch="
    code = main(["train", "--style", str(style_images[0]), "--data", str(photos_dir), "--out", str(run),
                 "--arch", "lite", "--size", "32", "--batch", "1", "--steps", "2", "--device", "cpu", "--resume",
                 "--no-progress"])
    _one_line_error(capfd, code, problem)
    assert (run / "checkpoint.pt").read_bytes() == src.read_bytes()
    assert not (tmp_path / "CODE_RAN").exists() and not (run / "CODE_RAN").exists()
