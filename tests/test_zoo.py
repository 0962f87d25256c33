"""The shipped models: the manifest matches the files, and every model stylises."""

import subprocess
import sys

import numpy as np
import pytest

from models import catalogue
from models.common.images import read_rgb, resize_max_side
from models.inference.onnx_style import OnnxStyleModel

ENTRIES = catalogue.shipped()


def test_manifest_matches_the_files():
    assert ENTRIES, "no shipped model"
    listed = {e.file for e in ENTRIES} | {s.thumb.name for e in ENTRIES for s in e.styles}
    on_disk = {p.name for p in catalogue.SHIPPED_DIR.iterdir() if p.suffix in (".onnx", ".jpg")} - {catalogue.SAMPLE_PHOTO.name}
    assert listed == on_disk
    for e in ENTRIES:
        assert e.path.stat().st_size == e.record["bytes"]
        for key in ("command", "machine", "wall_seconds", "steps"):
            assert e.record["training"][key], key


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_shipped_model_runs_at_two_sizes_and_changes_the_image(entry):
    model = OnnxStyleModel(entry.path, providers=["CPUExecutionProvider"])
    assert model.styles == entry.style_names
    assert model.border_pad == entry.border_pad
    photo = read_rgb(catalogue.SAMPLE_PHOTO)
    for side in (160, 333):
        src = resize_max_side(photo, side)
        for style in model.styles:
            out = model.stylize(src, style)
            assert out.shape == src.shape
            assert np.abs(out.astype(float) - src).mean() > 10


def test_main_job_stylises_the_bundled_photo(tmp_path):
    out = tmp_path / "stylized.png"
    r = subprocess.run([sys.executable, "-m", "training", "stylize", "--out", str(out)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result, photo = read_rgb(out), read_rgb(catalogue.SAMPLE_PHOTO)
    assert result.shape == photo.shape
    assert np.abs(result.astype(float) - photo).mean() > 10


CONDITIONAL = [e for e in ENTRIES if len(e.styles) > 1]


@pytest.mark.parametrize("entry", CONDITIONAL, ids=[e.name for e in CONDITIONAL])
def test_a_model_of_several_styles_gives_each_its_own_look_and_blends_between_them(entry):
    model = OnnxStyleModel(entry.path, providers=["CPUExecutionProvider"])
    src = resize_max_side(read_rgb(catalogue.SAMPLE_PHOTO), 160)
    outs = {s: model.stylize(src, s).astype(float) for s in model.styles}
    for i, a in enumerate(model.styles):
        for b in model.styles[i + 1:]:
            assert np.abs(outs[a] - outs[b]).mean() > 10, (a, b)
    # An equal blend is a picture of its own, between the styles, not one of them.
    mix = model.stylize(src, {s: 1.0 for s in model.styles}).astype(float)
    distances = [np.abs(mix - o).mean() for o in outs.values()]
    assert min(distances) > 3
    mean_colour = np.mean([o.mean(axis=(0, 1)) for o in outs.values()], axis=0)
    assert np.abs(mix.mean(axis=(0, 1)) - mean_colour).max() < 40


def _edge_steps(rgb: np.ndarray, k: int = 8) -> np.ndarray:
    """Signed mean-colour step (4 edges x RGB) between each outer k-pixel strip and the 2k inside it."""
    o = rgb.astype(float)
    pairs = [(o[:k], o[k:3 * k]), (o[-k:], o[-3 * k:-k]), (o[:, :k], o[:, k:3 * k]), (o[:, -k:], o[:, -3 * k:-k])]
    return np.array([a.mean((0, 1)) - b.mean((0, 1)) for a, b in pairs])


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_no_band_along_the_image_edges(entry):
    """On inputs with the same texture everywhere, the edges look like the inside.

    The steps are averaged over six such inputs, so that the style's own texture averages out
    and a systematic frame remains. Without their mirrored margin the zero-padded networks paint
    one: 20 to 61 grey levels (a dark frame and a yellow bottom line for Starry Night, an orange
    top band for The Scream); with it, 4 to 15. The reflection-padded ones need no margin: 5 to 16.
    """
    import cv2

    inputs = []
    for seed in range(6):
        noise = np.random.default_rng(seed).normal(0, 40, (240, 320, 3))
        inputs.append(np.clip(128 + cv2.GaussianBlur(noise, (0, 0), 2), 0, 255).astype(np.uint8))
    assert np.abs(np.mean([_edge_steps(x) for x in inputs], 0)).max() < 2
    model = OnnxStyleModel(entry.path, providers=["CPUExecutionProvider"])
    for style in model.styles:
        band = np.abs(np.mean([_edge_steps(model.stylize(x, style)) for x in inputs], 0)).max()
        assert band < 18, (style, band)
