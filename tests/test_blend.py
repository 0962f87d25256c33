"""Strength and colour preservation (models.inference.finish), and the style lookup by name (models.zoo)."""

from __future__ import annotations

import numpy as np
import pytest

from models import catalogue
from models.inference.finish import finish_style, finish_style_bgr
from models.common.errors import UserError
from models.common.images import read_rgb, resize_max_side
from models.inference.onnx_style import OnnxStyleModel


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """The bundled photo and the shipped default style on it (real weights)."""
    photo = resize_max_side(read_rgb(catalogue.SAMPLE_PHOTO), 96)
    return OnnxStyleModel(catalogue.model_path("udnie_lite")).stylize(photo), photo


def _chroma(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb)[..., 1:].astype(float)


def test_strength_mixes_the_style_with_the_photo(pair):
    styled, photo = pair
    assert np.array_equal(finish_style(styled, photo, 0.0), photo)
    assert np.array_equal(finish_style(styled, photo, 1.0), styled)
    half = finish_style(styled, photo, 0.5).astype(float)
    d_photo, d_style = np.abs(half - photo).mean(), np.abs(half - styled).mean()
    assert abs(d_photo - d_style) < 0.1 * (d_photo + d_style)


def test_preserve_color_keeps_the_photos_colours_and_the_styles_strokes(pair):
    styled, photo = pair
    kept = finish_style(styled, photo, 1.0, preserve_color=True)
    assert np.abs(_chroma(kept) - _chroma(photo)).mean() < 0.3 * np.abs(_chroma(styled) - _chroma(photo)).mean()
    grey = lambda im: im.astype(float) @ [0.299, 0.587, 0.114]  # noqa: E731
    assert np.abs(grey(kept) - grey(styled)).mean() < 0.3 * np.abs(grey(photo) - grey(styled)).mean()


def test_bgr_frames_get_the_same_result(pair):
    styled, photo = pair
    rgb = finish_style(styled, photo, 0.7, preserve_color=True)
    bgr = finish_style_bgr(styled[..., ::-1].copy(), photo[..., ::-1].copy(), 0.7, preserve_color=True)
    assert np.array_equal(bgr[..., ::-1], rgb)


@pytest.mark.parametrize("bad", [-0.1, 1.5, "strong"])
def test_a_strength_outside_0_1_is_one_clear_error(pair, bad):
    with pytest.raises(UserError, match="strength"):
        finish_style(*pair, bad)


def test_style_names_resolve_to_their_model(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLELENS_STYLES_DIR", str(tmp_path))
    assert catalogue.resolve_model(None, "udnie") == catalogue.model_path("udnie_lite")
    assert catalogue.resolve_model("wave_lite") == catalogue.model_path("wave_lite")
    assert catalogue.resolve_model(None, "the_scream") == catalogue.model_path("the_scream_lite")  # the one-style model first
    assert catalogue.resolve_model(None, None) == catalogue.model_path()
    with pytest.raises(UserError, match="no style or model named 'nope'"):
        catalogue.resolve_model("nope")
    import shutil

    shutil.copyfile(catalogue.model_path("wave_lite"), tmp_path / "mine.onnx")  # a user file without a manifest entry
    assert catalogue.resolve_model(None, "mine") == tmp_path / "mine.onnx"
    assert [m.name for m in catalogue.entries()][-1] == "mine"
