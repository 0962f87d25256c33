"""Every method, live effect and panel tab on every backbone architecture, and VGG perceptual
training end to end.

VGG weights cannot be downloaded here, so every backbone is built with RANDOM weights
(``pretrained=False``, or a random state dict saved to a file for the ``--weights`` path):
these tests check that each method runs on each architecture (shapes, finite values, no
autograd error), never what a network sees. The tables are explicit so a method or a
backbone added later without a row fails ``test_the_tables_cover_everything``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.backbones import BACKBONES, Backbone, load_backbone
from tests.conftest import write_bgr

SIDE = 64  # enough for VGG's pool5 and EfficientNet's head, small enough for 2 shared cores


def _deep(model: Backbone) -> str:
    """A deep spatial layer that ends in an activation (where the unit methods look)."""
    from realtime.panel.widgets import DEFAULT_LAYERS

    return DEFAULT_LAYERS[model.name]["unit"]


def _conv(model: Backbone) -> str:
    from realtime.panel.widgets import DEFAULT_LAYERS

    return DEFAULT_LAYERS[model.name]["filters"]


def _gallery() -> torch.Tensor:
    return torch.rand((4, 3, SIDE, SIDE), generator=torch.Generator().manual_seed(1))


def _run_filters(m, x):
    from visualize.filters import first_layer_filters, layer_filters
    return [first_layer_filters(m), layer_filters(m, _conv(m))]


def _run_activations(m, x):
    from visualize.activations import activation_maps, strongest_channel, tile
    maps = activation_maps(m, x, _deep(m))
    assert 0 <= strongest_channel(m, x, _deep(m)) < maps.shape[0]
    return [maps, tile(maps)]


def _run_neighbours(m, x):
    from visualize.neighbours import embed, nearest_neighbours, tsne_map
    g = _gallery()
    nb = nearest_neighbours(m, x, g, k=2)
    assert len(nb.feature_index) == 2
    return [embed(m, g), tsne_map(embed(m, g), g, canvas=96, thumb=16)[0]]


def _run_patches(m, x):
    from visualize.patches import max_activating_patches, receptive_field
    assert receptive_field(m, _deep(m))[0] > 1
    return list(max_activating_patches(m, _gallery(), _deep(m), 0, k=2).images)


def _run_occlusion(m, x):
    from visualize.occlusion import occlusion
    return [occlusion(m, x, size=32, stride=32)[0]]


def _run_saliency(m, x):
    from visualize.attribution import saliency
    return [saliency(m, x)[0]]


def _run_smoothgrad(m, x):
    from visualize.attribution import saliency
    return [saliency(m, x, smooth_samples=2, seed=0)[0]]


def _run_guided_saliency(m, x):  # the live effect's guided mode
    from visualize.attribution import saliency
    return [saliency(m, x, guided=True)[0]]


def _run_guided_backprop(m, x):
    from visualize.attribution import guided_backprop
    return [guided_backprop(m, x)[0], guided_backprop(m, x, guided=False)[0],
            guided_backprop(m, x, layer=_deep(m))[0], guided_backprop(m, x, layer=_deep(m), guided=False)[0]]


def _run_grad_cam(m, x):
    from visualize.attribution import grad_cam
    return [grad_cam(m, x, target=1)[0]]


def _run_class_visualization(m, x):
    from visualize.class_vis import class_visualization
    return [class_visualization(m, 1, size=SIDE, steps=2)[0]]


def _run_fooling(m, x):
    from visualize.fooling import fooling_image
    return [fooling_image(m, x, 1, max_steps=2).image]


def _run_inversion(m, x):
    from visualize.inversion import invert_layers
    return list(invert_layers(m, x, [_conv(m), _deep(m)], steps=2).values())


def _run_deepdream(m, x):
    from visualize.deepdream import deepdream, dream_steps
    return [deepdream(m, x, _deep(m), octaves=2, steps=1), dream_steps(m, x, _deep(m), steps=1)]


def _run_texture(m, x):
    from visualize.synthesis import texture_synthesis
    return [texture_synthesis(m, x, steps=2).image]


def _run_style_transfer(m, x):
    from visualize.style_transfer import style_transfer
    return [style_transfer(m, x, [_gallery()[:1]], steps=2).image]


METHODS = {
    "filters": _run_filters, "activations": _run_activations, "neighbours_tsne": _run_neighbours,
    "patches": _run_patches, "occlusion": _run_occlusion, "saliency": _run_saliency, "smoothgrad": _run_smoothgrad,
    "guided_saliency": _run_guided_saliency, "guided_backprop": _run_guided_backprop, "grad_cam": _run_grad_cam,
    "class_visualization": _run_class_visualization, "fooling": _run_fooling, "inversion": _run_inversion,
    "deepdream": _run_deepdream, "texture": _run_texture, "style_transfer": _run_style_transfer,
}
# Live effects that run a backbone: (effect name, saliency mode).
LIVE = [("saliency", "plain"), ("saliency", "smoothgrad"), ("saliency", "guided"), ("saliency", "gradcam"),
        ("deepdream", "plain"),
        ("activations", "plain")]
PANEL_TABS = ["filters", "neighbours", "tsne", "patches", "occlusion", "saliency", "guided", "class_visualization",
              "fooling", "inversion", "deepdream", "texture", "gatys"]


@pytest.fixture(scope="module", params=BACKBONES)
def random_backbone(request) -> Backbone:
    """Each architecture with RANDOM weights (shape and autograd tests only)."""
    return load_backbone(request.param, pretrained=False)


def test_the_tables_cover_everything():
    import inspect

    import visualize
    from realtime.effects import EFFECTS, SaliencyEffect
    from realtime.panel import tabs as panel_tabs

    helpers = {"__init__", "optimise", "param", "transforms"}  # no method of their own
    method_modules = {p.stem for p in Path(visualize.__file__).parent.glob("*.py")} - helpers
    runners = "".join(inspect.getsource(fn) for fn in METHODS.values())
    assert {m for m in method_modules if f"visualize.{m} import" in runners} == method_modules
    assert {n for n, _ in LIVE} == set(EFFECTS) - {"none", "style"}
    assert {mode for n, mode in LIVE if n == "saliency"} == set(SaliencyEffect.modes)
    sources = "".join(p.read_text() for p in Path(panel_tabs.__file__).parent.glob("*.py"))
    tabs = set(re.findall(r"self\.(\w+), \[", sources))
    no_backbone = {"fast_style", "fast_style_video", "stream_style", "pick_style", "blend_sliders", "train_style"}
    assert tabs - no_backbone == set(PANEL_TABS)


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_on_every_backbone(random_backbone, method):
    x = torch.rand((1, 3, SIDE, SIDE), generator=torch.Generator().manual_seed(0))
    outputs = METHODS[method](random_backbone, x)
    assert outputs
    for out in outputs:
        assert torch.isfinite(torch.as_tensor(out)).all(), (method, random_backbone.name)


@pytest.mark.parametrize("effect, mode", LIVE)
def test_every_live_effect_on_every_backbone(random_backbone, monkeypatch, effect, mode):
    import models.backbones
    from realtime.effects import EffectOptions, create_effect

    monkeypatch.setattr(models.backbones, "load_backbone", lambda *a, **k: random_backbone)
    fx = create_effect(effect, EffectOptions(backbone=random_backbone.name, size=SIDE, saliency_mode=mode,
                                             dream_steps=1))
    frame = (np.random.default_rng(0).random((48, 80, 3)) * 255).astype(np.uint8)
    for _ in range(2):
        out = fx(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8
        fx.cycle()


@pytest.mark.parametrize("tab", PANEL_TABS)
def test_every_panel_tab_on_every_backbone(random_backbone, monkeypatch, tmp_path, tab):
    from realtime.panel.tabs import attribution, base, features, optimisation, synthesis
    from realtime.panel.widgets import DEFAULT_LAYERS

    monkeypatch.setattr(base, "backbone", lambda name: random_backbone)
    monkeypatch.setattr(base, "CLASSIFY_SIDE", SIDE)
    real_gallery = features.load_gallery
    # the patches tab's 224 px squares, smaller (the neighbours tab's query is fixed at 160 px)
    monkeypatch.setattr(features, "load_gallery",
                        lambda files, size, limits: real_gallery(files, SIDE if size == 224 else size, limits))
    f, a, o, y = (features.FeaturesTab(), attribution.AttributionTab(), optimisation.OptimisationTab(),
                  synthesis.SynthesisTab())
    rng = np.random.default_rng(0)
    files = [str(write_bgr(tmp_path / f"p{i}.png", (rng.random((40, 56, 3)) * 255).astype(np.uint8)))
             for i in range(3)]
    name, img, layers = random_backbone.name, files[0], DEFAULT_LAYERS[random_backbone.name]
    calls = {
        "filters": lambda: f.filters(name, layers["filters"]),
        "neighbours": lambda: f.neighbours(name, img, files, k=2, progress=None),
        "tsne": lambda: f.tsne(name, files, progress=None),
        "patches": lambda: f.patches(name, files, layers["patches"], 0, k=2, progress=None),
        "occlusion": lambda: a.occlusion(name, img, size=32, stride=32, progress=None),
        "saliency": lambda: a.saliency(name, img, smooth_samples=1),
        "guided": lambda: a.guided(name, img, layer=layers["unit"], channel=0),
        "class_visualization": lambda: o.class_visualization(name, "1", steps=2, size=SIDE, progress=None),
        "fooling": lambda: o.fooling(name, img, "1", max_steps=2, progress=None),
        "inversion": lambda: o.inversion(name, img, layers["inversion"][:2], steps=2, progress=None),
        "deepdream": lambda: y.deepdream(name, img, layers["deepdream"], octaves=1, steps=1, max_side=SIDE,
                                         progress=None),
        "texture": lambda: y.texture(name, img, [], size=SIDE, steps=2, progress=None),
        "gatys": lambda: y.gatys(name, img, [files[1]], size=SIDE, steps=2, progress=None),
    }
    out = calls[tab]()
    assert out is not None
    if tab == "guided":
        assert "Grad-CAM" in out[-1]
        assert a.guided(name, img)[0].shape[-1] == 3  # the class, not a unit


# The --weights path: a random VGG state dict saved to a file, used by the real CLIs.

@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    import torchvision

    root = tmp_path_factory.mktemp("vgg")
    out = {}
    for name in ("vgg16", "vgg19"):
        out[name] = root / f"{name}_random.pth"  # RANDOM weights: the file format, not what they see
        torch.save(getattr(torchvision.models, name)(weights=None).state_dict(), out[name])
    return out


def test_live_guided_saliency_with_vgg_weights_file(vgg_weights):
    result = subprocess.run([sys.executable, "-m", "realtime", "--source", "demo", "--no-window", "--max-frames",
                             "2", "--effect", "saliency", "--saliency-mode", "guided", "--backbone", "vgg16",
                             "--weights", str(vgg_weights["vgg16"]), "--size", str(SIDE)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("net", ["vgg16", "vgg19"])
def test_vgg_perceptual_training_runs_resumes_and_exports(vgg_weights, photos_dir, style_images, tmp_path, net):
    base = [sys.executable, "-m", "training", "train", "--style", str(style_images[0]), "--data", str(photos_dir),
            "--out", str(tmp_path), "--loss-net", net, "--weights", str(vgg_weights[net]), "--arch", "tiny",
            "--size", "32", "--batch", "1", "--precision", "fp32", "--no-progress"]
    first = subprocess.run(base + ["--steps", "2"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = subprocess.run(base + ["--steps", "3", "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "at step 2 of 3" in resumed.stdout + resumed.stderr
    ckpt = torch.load(tmp_path / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["config"]["loss_net"] == net
    onnx = tmp_path / "m.onnx"
    exported = subprocess.run([sys.executable, "-m", "training", "export", str(tmp_path), "--out", str(onnx)],
                              capture_output=True, text=True, timeout=300)
    assert exported.returncode == 0, exported.stderr[-2000:]
    assert onnx.stat().st_size > 0
