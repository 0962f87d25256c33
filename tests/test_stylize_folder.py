"""``python -m training stylize`` on several photos and folders: names, orientation, progress, skips."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.common.images import read_rgb
from training.__main__ import main


def _photo(path, w, h, orientation=None):
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 2, : w // 2] = (250, 30, 30)  # a red quarter, top-left as stored
    rgb[h // 2:, w // 2:] = (30, 200, 60)
    img = Image.fromarray(rgb)
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(path, exif=exif)
    else:
        img.save(path)
    return path


@pytest.fixture
def album(tmp_path):
    folder = tmp_path / "album"
    folder.mkdir()
    _photo(folder / "a.jpg", 96, 64)
    _photo(folder / "b.png", 64, 96)
    _photo(folder / "phone.jpg", 96, 48, orientation=6)  # shown rotated 90 degrees clockwise
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "notes.txt").write_text("not an image, not looked at")
    return folder


def test_a_folder_is_stylised_into_a_folder_keeping_names_and_orientation(album, tmp_path, capfd):
    out = tmp_path / "styled"
    assert main(["stylize", str(album), "--out", str(out), "--provider", "cpu"]) == 0
    captured = capfd.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.png", "phone.jpg"]
    assert "wrote 3 images" in captured.out and "skipped 1 unreadable" in captured.out
    skips = [line for line in captured.err.replace("\r", "\n").splitlines() if line.startswith("skipping")]
    assert len(skips) == 1 and "broken.jpg" in skips[0]
    assert read_rgb(out / "a.jpg").shape == (64, 96, 3) and read_rgb(out / "b.png").shape == (96, 64, 3)
    assert read_rgb(out / "phone.jpg").shape == (96, 48, 3)  # upright: EXIF orientation applied
    assert np.abs(read_rgb(out / "a.jpg").astype(int) - read_rgb(album / "a.jpg")).mean() > 5  # stylised


def test_several_files_and_folders_together(album, tmp_path, capfd):
    extra = _photo(tmp_path / "extra.png", 40, 40)
    out = tmp_path / "styled"
    assert main(["stylize", str(album / "a.jpg"), str(extra), "--out", str(out), "--provider", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "extra.png"]


@pytest.mark.parametrize("args, problem", [
    (["{album}"], "need --out FOLDER"),
    (["{album}", "--out", "{album}"], "would overwrite it"),
    (["{album}/a.jpg", "{tmp}/missing.jpg", "--out", "{tmp}/o"], "no such file or folder"),
])
def test_bad_batches_give_one_clear_line(album, tmp_path, capfd, args, problem):
    code = main(["stylize", *[a.format(album=album, tmp=tmp_path) for a in args], "--provider", "cpu"])
    err = capfd.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and problem in err, err
    assert not (tmp_path / "o").exists()


def test_nothing_readable_is_an_error(tmp_path, capfd):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jpg").write_bytes(b"junk")
    code = main(["stylize", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--provider", "cpu"])
    assert code == 2 and "no image could be read" in capfd.readouterr().err


def test_progress_is_shown_as_a_bar(album, tmp_path, capsys):
    from models import catalogue
    from models.inference.stylize import stylize_many

    written, skipped = stylize_many(catalogue.model_path(), [album], tmp_path / "o", providers=["CPUExecutionProvider"],
                                    progress=True, log=lambda m: None)
    assert len(written) == 3 and len(skipped) == 1
    assert "4/4" in capsys.readouterr().err
