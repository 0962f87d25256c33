"""scripts/compare_styles.py: the two figures, and one sheet row per painting with a figure per result."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.common.images import read_rgb, write_rgb

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_styles.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_styles_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((120, 160, 3), 200, np.uint8)
    for _ in range(12):
        x, y = rng.integers(0, 160), rng.integers(0, 120)
        cv2.rectangle(img, (int(x), int(y)), (int(x) + 30, int(y) + 20), rng.integers(0, 255, 3).tolist(), -1)
    return img


def test_palette_distance_is_small_for_the_same_colours_and_large_for_others(script):
    photo = _photo()
    shuffled = photo.reshape(-1, 3)[np.random.default_rng(1).permutation(120 * 160)].reshape(photo.shape)
    blue = np.zeros_like(photo)
    blue[..., 2] = 220
    assert script.palette_distance(shuffled, photo) < 2.0 < 20.0 < script.palette_distance(blue, photo)


def test_structure_kept_is_one_for_the_photo_and_low_for_a_flat_or_other_image(script):
    photo = _photo()
    assert script.structure_kept(photo, photo) == pytest.approx(1.0, abs=1e-4)
    assert script.structure_kept(_photo(seed=5), photo) < 0.5
    assert script.structure_kept(cv2.GaussianBlur(photo, (0, 0), 1), photo) > 0.8


def test_the_sheet_has_a_row_per_painting_and_a_figure_per_result(tmp_path):
    styles = []
    for name, colour in (("reds", (230, 30, 30)), ("blues", (30, 30, 230))):
        img = _photo(seed=len(styles) + 3)
        img[::2] = colour
        styles.append(write_rgb(tmp_path / f"{name}.png", img) or tmp_path / f"{name}.png")
    photo = tmp_path / "photo.png"
    write_rgb(photo, _photo(seed=9))
    others = tmp_path / "peer"  # another tool's output for the reds painting only
    others.mkdir()
    cv2.imwrite(str(others / "tool_photo_reds.jpg"), _photo(seed=11))
    out = tmp_path / "sheet.png"
    run = subprocess.run([sys.executable, str(SCRIPT), "--styles", *map(str, styles), "--photo", str(photo),
                          "--size", "96", "--height", "60", "--out", str(out),
                          "--reference", str(others), "--reference-label", "peer",
                          "--candidate", f"shipped-again={Path(SCRIPT).parents[1]}/models/zoo/starry_night_lite.onnx"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [l.split() for l in run.stdout.splitlines() if l.startswith(("reds", "blues"))]
    assert [[r[0], r[2]] for r in rows] == [["reds", "peer"], ["reds", "shipped-again"], ["blues", "shipped-again"]]
    assert all(r[1] == "photo" and float(r[3]) > 0 and -1 <= float(r[4]) <= 1 for r in rows)
    sheet = read_rgb(out)
    assert sheet.shape[0] > 2 * 60  # two rows of pictures with their captions


def test_the_shipped_model_of_a_painting_is_its_first_one_style_model_in_the_manifest(script):
    from models import catalogue

    singles = {}
    for m in catalogue.shipped():
        if len(m.styles) == 1:
            singles.setdefault(m.style_names[0], m.file)
    assert singles  # the zoo ships one-style models
    for name, file in singles.items():
        assert script.shipped_model(name) == catalogue.SHIPPED_DIR / file and script.shipped_model(name).is_file()
    assert script.shipped_model("starry_night").name == "starry_night_lite.onnx"  # the lite before the tiny
    assert script.shipped_model("no_such_painting") is None
