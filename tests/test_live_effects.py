"""The live effects on the real offline network: each saliency mode puts its map on the cat's face,
Grad-CAM from the fast engine equals Grad-CAM by backpropagation, activations from the engine
equal torch's, and DeepDream's dream follows the camera and grows over frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from realtime.effects import EffectOptions, create_effect

FRAME = cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)  # 300 x 451
FACE = np.zeros(FRAME.shape[:2], bool)
FACE[50:300, 110:370] = True  # the cat's face (tests/test_visualize_attribution.py), 48 % of the frame


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLELENS_CACHE_DIR", str(tmp_path))


@pytest.mark.parametrize("mode, mass, ratio", [("smoothgrad", 0.58, 1.6), ("guided", 0.6, 2.0),
                                               ("gradcam", 0.6, 2.0), ("plain", 0.49, 1.05)])
def test_each_saliency_mode_lies_on_the_face(mode, mass, ratio):
    """Measured at 224 px: smoothgrad 0.63-0.66 / 1.8-2.1 over six frames, guided 0.72 / 2.8,
    gradcam 0.70 / 2.5, plain 0.52 / 1.15 (the plain gradient of this network is diffuse)."""
    fx = create_effect("saliency", EffectOptions(saliency_mode=mode))
    for _ in range(4):
        heat = cv2.resize(fx.heat(FRAME), FRAME.shape[1::-1])
    assert 281 <= fx._cls <= 285  # a cat
    share, contrast = float(heat[FACE].sum() / heat.sum()), float(heat[FACE].mean() / heat[~FACE].mean())
    assert share > mass and contrast > ratio, (share, contrast)
    out = fx(FRAME)
    assert out.shape == FRAME.shape and np.abs(out.astype(int) - FRAME).mean() > 5


def test_the_class_activation_map_from_the_engine_is_grad_cam():
    from visualize.attribution import grad_cam

    fx = create_effect("saliency", EffectOptions(saliency_mode="gradcam"))
    x = fx.small(FRAME)
    fast = fx._cam(x)
    cam, cls = grad_cam(fx.model, torch.from_numpy(x), None)
    assert cls == fx._cls
    slow = cam[0].numpy() if cam.dim() == 3 else cam.numpy()
    slow = cv2.resize(slow, fast.shape[::-1]) if slow.shape != fast.shape else slow
    a, b = fast / fast.max(), slow / slow.max()
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98 and np.abs(a - b).mean() < 0.05


def test_activations_from_the_engine_match_torch():
    from visualize.activations import activation_maps

    fx = create_effect("activations", EffectOptions(layer="block4"))
    maps = fx.maps(FRAME)
    want = activation_maps(fx.model, torch.from_numpy(fx.small(FRAME)), "block4").numpy()
    assert maps.shape == want.shape and np.abs(maps - want).max() < 1e-3
    assert fx.engine("block4", fx.small(FRAME).shape[-2:]).backend in ("onnxruntime", "openvino")


def test_the_dream_follows_the_camera_and_grows():
    fx = create_effect("deepdream", EffectOptions(size=192))
    shifted = [np.roll(FRAME, 3 * i, axis=1) for i in range(6)]
    outs = [fx(f) for f in shifted]
    change = [float(np.abs(o.astype(int) - f).mean()) for o, f in zip(outs, shifted)]
    assert change[-1] > change[0] * 1.5  # the dream grows over frames
    # the pattern moves with the picture: the last dream lines up with the frame better shifted than not
    small = [cv2.resize(o, (192, 128)).astype(float) for o in outs[-2:]]
    moved = np.abs(np.roll(small[0], 1, axis=1) - small[1]).mean()
    assert moved < np.abs(small[0] - small[1]).mean()
    fx(np.zeros_like(FRAME))  # a cut starts afresh
    assert fx.dream is not None and float(np.abs(fx(np.zeros_like(FRAME)).astype(int)).mean()) < change[-1]


@pytest.mark.parametrize("objective", ["class", "guided", "dream:block10"])
def test_the_written_out_gradient_is_autograds_and_runs_in_the_engines(objective):
    import onnxruntime as ort

    from models.backbone_onnx import export_gradient
    from models.backbones import fold_batchnorm, load_backbone
    from models.input_gradient import InputGradient
    from visualize.attribution import guided_relus

    model = load_backbone("efficientnet_lite0")
    folded = fold_batchnorm(model)
    x = torch.rand(1, 3, 91, 127, generator=torch.Generator().manual_seed(0))
    ours, _ = InputGradient(model, objective)(x, torch.zeros(1, 1000))
    xr = x.clone().requires_grad_(True)
    if objective.startswith("dream"):
        (want,) = torch.autograd.grad(folded.features(xr, ["block10"])["block10"].pow(2).mean(), xr)
    else:
        with guided_relus(folded) if objective == "guided" else torch.enable_grad():
            logits = folded.classify(xr)
            (want,) = torch.autograd.grad(logits[0, int(logits.argmax())], xr)
    assert (ours - want).abs().max() < 1e-5 * want.abs().max()
    session = ort.InferenceSession(str(export_gradient(model, objective, (91, 127))), providers=["CPUExecutionProvider"])
    feeds = {"image": x.numpy(), "class_weights": np.zeros((1, 1000), np.float32)}
    got = session.run(["gradient"], {i.name: feeds[i.name] for i in session.get_inputs()})[0]
    assert np.abs(got - want.numpy()).max() < 1e-4 * float(want.abs().max())
