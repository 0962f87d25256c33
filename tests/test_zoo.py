"""The shipped models: the manifest matches the files, and every model stylises."""

import subprocess
import sys

import numpy as np
import pytest

from models import zoo
from models.images import read_rgb, resize_max_side
from models.onnx_style import OnnxStyleModel

ENTRIES = zoo.manifest()["models"]


def test_manifest_matches_the_files():
    assert ENTRIES, "no shipped model"
    listed = {e["file"] for e in ENTRIES} | {s["image"] for e in ENTRIES for s in e["styles"]}
    on_disk = {p.name for p in zoo.ZOO_DIR.iterdir() if p.suffix in (".onnx", ".jpg")} - {zoo.SAMPLE_PHOTO.name}
    assert listed == on_disk
    for e in ENTRIES:
        assert (zoo.ZOO_DIR / e["file"]).stat().st_size == e["bytes"]
        for key in ("command", "machine", "wall_seconds", "steps"):
            assert e["training"][key], key


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_every_shipped_model_runs_at_two_sizes_and_changes_the_image(entry):
    model = OnnxStyleModel(zoo.ZOO_DIR / entry["file"], providers=["CPUExecutionProvider"])
    assert model.styles == [s["name"] for s in entry["styles"]]
    photo = read_rgb(zoo.SAMPLE_PHOTO)
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
    result, photo = read_rgb(out), read_rgb(zoo.SAMPLE_PHOTO)
    assert result.shape == photo.shape
    assert np.abs(result.astype(float) - photo).mean() > 10


CONDITIONAL = [e for e in ENTRIES if len(e["styles"]) > 1]


@pytest.mark.parametrize("entry", CONDITIONAL, ids=[e["name"] for e in CONDITIONAL])
def test_a_model_of_several_styles_gives_each_its_own_look_and_blends_between_them(entry):
    model = OnnxStyleModel(zoo.ZOO_DIR / entry["file"], providers=["CPUExecutionProvider"])
    src = resize_max_side(read_rgb(zoo.SAMPLE_PHOTO), 160)
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
