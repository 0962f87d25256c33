"""scripts/gallery.py: the README gallery is a grid of one column per style and two rows per photo."""

import importlib.util
import itertools
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models import catalogue
from models.common.images import read_rgb, write_rgb
from models.inference.onnx_style import META_ARCH, META_STYLES
from models.style_net import StyleNet, arch_config
from training.export import export_style_net

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gallery.py"
WIDTH, SIZE = 480, 48


@pytest.fixture(scope="module")
def gallery():
    spec = importlib.util.spec_from_file_location("gallery_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def content_dir(tmp_path_factory):
    """chicago.jpg (landscape, from the zoo) and a portrait amber.jpg, so the two rows differ in height."""
    from skimage import data

    root = tmp_path_factory.mktemp("content")
    shutil.copy(catalogue.SAMPLE_PHOTO, root / "chicago.jpg")
    write_rgb(root / "amber.jpg", cv2.resize(data.chelsea(), (90, 120), interpolation=cv2.INTER_AREA))
    return root


@pytest.fixture(scope="module")
def two_style_zoo(tmp_path_factory):
    """A zoo of one shipped model and an untrained two-style network (distinct norm parameters)."""
    root = tmp_path_factory.mktemp("zoo")
    shipped = catalogue.shipped()[0]
    for path in [shipped.path, *(s.thumb for s in shipped.styles)]:
        shutil.copy(path, root / path.name)
    torch.manual_seed(0)
    net = StyleNet(arch_config("lite"), num_styles=2)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:
                p.add_(0.5 * torch.randn_like(p))
    export_style_net(net, root / "duo.onnx", metadata={META_STYLES: json.dumps(["red", "blue"]), META_ARCH: "lite"})
    for name, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        img = np.full((64, 96, 3), colour, np.uint8)
        img[::8] = 255  # stripes: a texture, not a flat colour
        write_rgb(root / f"{name}.jpg", img)
    duo = {"name": "duo_lite", "file": "duo.onnx", "arch": "lite", "loss_net": "efficientnet_lite0",
           "styles": [{"name": "red", "image": "red.jpg"}, {"name": "blue", "image": "blue.jpg"}],
           "training": {"size": 32}}
    (root / "manifest.json").write_text(json.dumps({"models": [shipped.to_manifest(), duo]}), encoding="utf-8")
    return root


def _check_grid(result, n_columns: int, contents: list[str], methods: list[str]) -> np.ndarray:
    """The file is the laid-out grid: its size, one aligned box per cell, every cell a distinct image."""
    image = read_rgb(result.path)
    layout = result.layout
    assert image.shape == (layout.height, WIDTH, 3)
    assert len(result.columns) == n_columns and result.contents == contents
    assert set(result.layout.boxes) == ({(c, m, i) for c in contents for m in methods for i in range(n_columns)}
                                        | {(c, "content", 0) for c in contents})
    # Columns line up across rows; rows stack without overlap; each row keeps its photo's aspect.
    lefts = {i: {b[0] for k, b in layout.boxes.items() if k[2] == i and k[1] != "content"} for i in range(n_columns)}
    assert all(len(v) == 1 for v in lefts.values()) and sorted(min(v) for v in lefts.values()) == \
        [min(v) for v in lefts.values()]
    tops = sorted({(b[1], b[3]) for k, b in layout.boxes.items() if k[1] != "content"})
    assert len(tops) == len(contents) * len(methods)
    assert all(y0 + h0 <= y1 for (y0, h0), (y1, _) in itertools.pairwise(tops))
    assert max(x + w for x, _, w, _ in layout.boxes.values()) <= WIDTH
    assert max(y + h for _, y, _, h in layout.boxes.values()) <= layout.height
    shapes = {c: b[3] / b[2] for (c, m, _), b in layout.boxes.items() if m == "content"}
    assert shapes["chicago"] == pytest.approx(341 / 512, abs=0.05)
    assert shapes["amber"] == pytest.approx(120 / 90, abs=0.05)

    cells = {k: image[y:y + h, x:x + w].astype(np.float32) for k, (x, y, w, h) in layout.boxes.items()}
    for key, cell in cells.items():
        assert cell.std() > 10, f"{key} is blank"
    for c in contents:
        for m in methods:
            row = [cells[c, m, i] for i in range(n_columns)]
            for a, b in itertools.combinations(range(n_columns), 2):
                assert np.abs(row[a] - row[b]).mean() > 4, f"{c} {m}: columns {a} and {b} look alike"
            for i, cell in enumerate(row):
                assert np.abs(cell - cells[c, "content", 0]).mean() > 4, f"{c} {m} {i} is the photo unchanged"
    return image


def test_shipped_zoo_without_gatys(gallery, content_dir, tmp_path):
    out = tmp_path / "gallery.jpg"
    result = gallery.main(["--no-gatys", "--content-dir", str(content_dir), "--size", str(SIZE),
                           "--width", str(WIDTH), "--out", str(out)])
    assert result.path == out and out.stat().st_size <= 400_000
    styles = sum(len(e.styles) + (len(e.styles) > 1) for e in catalogue.shipped())
    _check_grid(result, styles, ["chicago", "amber"], ["fast"])
    assert not result.gatys_seconds


def test_two_style_network_with_a_few_gatys_steps(gallery, content_dir, two_style_zoo, tmp_path):
    out = tmp_path / "g.jpg"
    result = gallery.main(["--zoo", str(two_style_zoo), "--content-dir", str(content_dir), "--size", str(SIZE),
                           "--width", str(WIDTH), "--gatys-steps", "8", "--max-kb", "1000", "--out", str(out)])
    # one shipped style, then the two styles one-hot and their equal blend
    assert [c.title for c in result.columns] == [result.columns[0].title, "red", "blue", "equal blend"]
    assert result.columns[3].blend == {"red": 1.0, "blue": 1.0}
    assert len(result.gatys_seconds) == 2 * 4
    _check_grid(result, 4, ["chicago", "amber"], ["fast", "gatys"])


def test_out_must_be_a_jpeg(gallery, tmp_path):
    with pytest.raises(SystemExit):
        gallery.main(["--no-gatys", "--out", str(tmp_path / "g.png")])
