"""Attribution on the real offline network: saliency, guided backprop, Grad-CAM look at the cat."""

from __future__ import annotations

import cv2
import pytest
import torch
from skimage import data

from models.backbones import load_backbone
from models.common.images import rgb_to_tensor
from visualize.attribution import grad_cam, guided_backprop, saliency

SIZE = 224
# The cat's face in skimage.data.chelsea() (451 x 300), read off the image with a 50 px grid:
# eyes at about (170, 115) and (320, 135), nose at (262, 240), chin at the bottom edge; the
# right strip (x > 370) and the top corners are background, the left cheek is fur.
# Box x 110..370, y 50..300 in the original, scaled to the 224 x 224 resize (48 % of the area).
FACE_X0, FACE_X1 = round(110 * SIZE / 451), round(370 * SIZE / 451)
FACE_Y0, FACE_Y1 = round(50 * SIZE / 300), round(300 * SIZE / 300)
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def model():
    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def chelsea() -> torch.Tensor:
    return rgb_to_tensor(cv2.resize(data.chelsea(), (SIZE, SIZE), interpolation=cv2.INTER_AREA))


def face_mask(h: int = SIZE, w: int = SIZE) -> torch.Tensor:
    mask = torch.zeros(h, w, dtype=torch.bool)
    y0, y1 = round(FACE_Y0 * h / SIZE), round(FACE_Y1 * h / SIZE)
    mask[y0:y1, round(FACE_X0 * w / SIZE):round(FACE_X1 * w / SIZE)] = True
    return mask


def face_stats(heat: torch.Tensor) -> tuple[float, float]:
    """(share of the map's mass inside the face box, mean inside / mean outside)."""
    mask = face_mask(*heat.shape)
    heat = heat.float()
    return float(heat[mask].sum() / heat.sum()), float(heat[mask].mean() / heat[~mask].mean())


def gradient_magnitude(display: torch.Tensor) -> torch.Tensor:
    """Back from guided_backprop's display image (0.5 = no gradient) to |gradient|, max over channels."""
    return (display - 0.5).abs().amax(0)


def test_face_box_is_generous_but_not_everything():
    assert 0.4 < float(face_mask().float().mean()) < 0.55


def test_smoothgrad_saliency_lies_on_the_face(model, chelsea):
    sal, cls = saliency(model, chelsea, smooth_samples=8, noise=0.3, seed=0)
    assert cls in CAT_CLASSES
    assert sal.shape == (1, SIZE, SIZE) and float(sal.min()) >= 0 and float(sal.max()) == pytest.approx(1.0)
    mass, ratio = face_stats(sal[0])
    assert mass > 0.5 and ratio > 2.0, (mass, ratio)  # measured 0.68, 2.3


def test_saliency_seed_makes_smoothgrad_repeatable(model):
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    a, _ = saliency(model, x, target=1, smooth_samples=2, seed=3)
    b, _ = saliency(model, x, target=1, smooth_samples=2, seed=3)
    c, _ = saliency(model, x, target=1, smooth_samples=2, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="out of range"):
        saliency(model, x, target=1000)


def test_grad_cam_lies_on_the_face(model, chelsea):
    cam, cls = grad_cam(model, chelsea)
    assert cls in CAT_CLASSES
    assert cam.shape == (SIZE, SIZE) and float(cam.min()) >= 0 and float(cam.max()) == pytest.approx(1.0)
    mass, ratio = face_stats(cam)
    assert mass > 0.5 and ratio > 2.0, (mass, ratio)  # measured 0.67, 2.2


def test_grad_cam_for_an_absent_class_differs(model, chelsea):
    cat, _ = grad_cam(model, chelsea, target=282)
    bus, cls = grad_cam(model, chelsea, target=779)  # school bus
    assert cls == 779
    assert float((cat - bus).abs().mean()) > 0.05


def test_guided_backprop_class_lies_on_the_face_and_beats_plain_backprop(model, chelsea):
    guided, cls = guided_backprop(model, chelsea, target=282)
    plain, cls2 = guided_backprop(model, chelsea, target=282, guided=False)
    assert cls == cls2 == 282
    assert guided.shape == (3, SIZE, SIZE) and float(guided.min()) >= 0 and float(guided.max()) <= 1
    assert float((guided - plain).abs().mean()) > 0.01
    mass, ratio = face_stats(gradient_magnitude(guided))
    assert mass > 0.5 and ratio > 2.0, (mass, ratio)  # measured 0.70, 2.6
    _, plain_ratio = face_stats(gradient_magnitude(plain))
    assert ratio > plain_ratio + 0.5, (ratio, plain_ratio)  # plain: about 1.3


def test_guided_backprop_of_one_unit_stays_in_its_receptive_field(model):
    x = rgb_to_tensor(cv2.resize(data.chelsea(), (128, 128), interpolation=cv2.INTER_AREA))
    channel = 5
    with torch.no_grad():
        act = model.features(x, ["block4"])["block4"][0, channel]  # stride 8
    row, col = divmod(int(act.flatten().argmax()), act.shape[1])
    g, explained = guided_backprop(model, x, layer="block4", channel=channel)
    assert explained == channel and g.shape == (3, 128, 128)
    moved = gradient_magnitude(g) > 0.02
    assert moved.sum() > 20
    ys, xs = torch.nonzero(moved, as_tuple=True)
    # block4's receptive field is 67 px: everything within about 34 px of the unit's centre.
    cy, cx = 8 * row + 4, 8 * col + 4
    assert int((ys - cy).abs().max()) <= 40 and int((xs - cx).abs().max()) <= 40


def test_guided_backprop_unit_defaults_and_saturated_layers(model):
    x = rgb_to_tensor(cv2.resize(data.chelsea(), (96, 96), interpolation=cv2.INTER_AREA))
    with torch.no_grad():
        head = model.features(x, ["head"])["head"][0]
    strongest = int(head.mean(dim=(1, 2)).argmax())
    g, ch = guided_backprop(model, x, layer="head")
    assert ch == strongest
    # head ends in ReLU6 and its strongest units sit at 6: read before the clamp, they still have a gradient.
    assert float(gradient_magnitude(g).max()) > 0.1
    plain, _ = guided_backprop(model, x, layer="head", guided=False)
    assert float((g - plain).abs().mean()) > 0.005


def test_attribution_errors(model):
    x = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="no layer"):
        guided_backprop(model, x, layer="conv9_9")
    with pytest.raises(ValueError, match="out of range"):
        guided_backprop(model, x, layer="block4", channel=40)
    with pytest.raises(ValueError, match="not both"):
        guided_backprop(model, x, target=3, layer="block4")
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(model, x, target=-1)
    with pytest.raises(ValueError, match="no layer"):
        grad_cam(model, x, layer="nope")
    with pytest.raises(ValueError, match="one image"):
        grad_cam(model, torch.rand(2, 3, 64, 64))


def test_methods_run_with_vgg_layer_names():
    vgg = load_backbone("vgg16", pretrained=False)  # random weights: shapes only
    x = torch.rand(1, 3, 64, 64)
    cam, _ = grad_cam(vgg, x, target=0, layer="relu4_3")
    assert cam.shape == (64, 64)
    cam, _ = grad_cam(vgg, x, target=0)  # cam_layer
    assert cam.shape == (64, 64)
    g, ch = guided_backprop(vgg, x, layer="relu3_3", channel=7)
    assert g.shape == (3, 64, 64) and ch == 7
