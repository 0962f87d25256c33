"""Texture synthesis, Gatys style transfer and DeepDream on the offline EfficientNet-Lite0.

Small images and few steps (CPU): each test checks a behaviour that a broken method fails.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from models.backbones import load_backbone
from models.common.images import read_rgb, rgb_to_tensor
from models.efficientnet_lite import Conv2dSame, FusedConvAct
from models.losses import content_loss
from models.backbones import fast_frozen_copy
from visualize.deepdream import deepdream, dream_steps
from visualize.style_transfer import StyleTransfer, rgb_to_yiq, style_transfer, yiq_to_rgb
from visualize.synthesis import OPTIMISATION_LOSSES, Synthesis, texture_synthesis


@pytest.fixture(scope="module")
def model():
    return load_backbone("efficientnet_lite0")


def _photo(name: str, w: int, h: int) -> torch.Tensor:
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return rgb_to_tensor(cv2.resize(img[..., :3], (w, h), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def content() -> torch.Tensor:
    return _photo("astronaut", 80, 64)


def _read(path, side: int) -> torch.Tensor:
    return rgb_to_tensor(cv2.resize(read_rgb(path), (side, side), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def stripes(style_images) -> torch.Tensor:
    return _read(style_images[0], 96)


@pytest.fixture(scope="module")
def blobs(style_images) -> torch.Tensor:
    return _read(style_images[1], 72)


class Recorder:
    def __init__(self):
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def check(self, total: int) -> None:
        assert self.calls, "progress was never called"
        done = [d for d, _ in self.calls]
        assert all(t == total for _, t in self.calls)
        assert all(a < b for a, b in zip(done, done[1:])), done  # strictly increasing
        assert done[0] > 0 and done[-1] == total


# ----------------------------------------------------------------------------- texture synthesis

def test_texture_synthesis_lowers_gram_loss_by_orders_of_magnitude(model):
    texture = _photo("gravel", 64, 64)
    progress = Recorder()
    r = texture_synthesis(model, texture, steps=200, progress=progress)  # the five default style layers
    assert isinstance(r, Synthesis)
    assert r.image.shape == (1, 3, 64, 64) and 0 <= r.image.min() and r.image.max() <= 1
    assert r.final_loss < r.initial_loss / 100, (r.initial_loss, r.final_loss)  # measured: 190x
    assert len(r.losses) >= 200 and r.losses[-1] < r.losses[0] / 100
    progress.check(200)
    # Same seed, same image; another seed, another image.
    again = texture_synthesis(model, texture, layers=["stem", "block0"], steps=3)
    assert torch.equal(again.image, texture_synthesis(model, texture, layers=["stem", "block0"], steps=3).image)
    other = texture_synthesis(model, texture, layers=["stem", "block0"], steps=3, seed=1)
    assert not torch.allclose(again.image, other.image, atol=1e-3)


def test_texture_synthesis_shallow_and_deep_layers_differ(model, blobs):
    shallow = texture_synthesis(model, blobs, size=(48, 64), layers=["stem", "block0"], steps=25)
    deep = texture_synthesis(model, blobs, size=(48, 64), layers=["block4", "block7"], steps=25)
    default = texture_synthesis(model, blobs, size=(48, 64), steps=25, optimizer="adam")
    for r in (shallow, deep, default):
        assert r.image.shape == (1, 3, 48, 64)
        assert r.final_loss < r.initial_loss / 2, (r.initial_loss, r.final_loss)
    assert (shallow.image - deep.image).abs().mean() > 0.03


def test_texture_synthesis_bad_arguments(model, blobs):
    with pytest.raises(ValueError, match="no layer"):
        texture_synthesis(model, blobs, layers=["conv9_9"], steps=1)
    with pytest.raises(ValueError, match="optimizer"):
        texture_synthesis(model, blobs, optimizer="sgd", steps=1)
    with pytest.raises(ValueError, match="at least one"):
        texture_synthesis(model, blobs, layers=[], steps=1)
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        texture_synthesis(model, blobs[0], steps=1)


# ----------------------------------------------------------------------------- style transfer

def _chroma(x: torch.Tensor) -> torch.Tensor:
    return rgb_to_yiq(x)[:, 1:]


def _low_pass_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Correlation of the two images' luminance at 1/8 resolution: is the layout the same?"""
    la, lb = (torch.nn.functional.avg_pool2d(rgb_to_yiq(x)[:, :1], 8).flatten() for x in (a, b))
    return torch.corrcoef(torch.stack([la, lb]))[0, 1].item()


def test_style_transfer_lowers_style_loss_and_keeps_the_layout(model, content, blobs):
    progress = Recorder()
    r = style_transfer(model, content, [blobs], steps=40, progress=progress)
    assert isinstance(r, StyleTransfer)
    assert r.image.shape == content.shape and 0 <= r.image.min() and r.image.max() <= 1
    progress.check(40)
    # From the content image: content loss starts at 0, style loss is what there is to gain.
    assert r.initial.content == pytest.approx(0, abs=1e-6)
    assert r.final.style < r.initial.style / 5, (r.initial, r.final)
    assert r.final.total < r.initial.total / 5
    assert r.final.total == pytest.approx(r.final.content + r.final.style + r.final.tv, rel=1e-4)
    assert len(r.history) == len(r.losses) >= 40
    # The result moved away from the content image...
    assert (r.image - content).abs().mean() > 0.05
    # ...yet its layout is the content's, not the style's (the colour term of the defaults remaps the
    # luminance toward the painting's, which costs some linear correlation: 0.86 here, > 0.9 without).
    assert _low_pass_correlation(r.image, content) > 0.8
    assert _low_pass_correlation(torch.nn.functional.interpolate(blobs, size=content.shape[-2:]), content) < 0.6


def _content_distance(model, image: torch.Tensor, content: torch.Tensor) -> float:
    """The unweighted content loss of ``image`` against ``content`` on the default content layers."""
    layers = dict.fromkeys(OPTIMISATION_LOSSES[model.name].content_layers, 1.0)
    with torch.no_grad():
        return content_loss(model.features(image, list(layers)), model.features(content, list(layers)),
                            layers).sum().item()


def test_the_content_term_holds_the_content_features(model, content, blobs):
    # At the defaults on this 80x64 image the style term dominates and the layout is held by the
    # content start (40 steps without any content term end at the same content loss, 1.14); so
    # the content term is checked where it weighs: as strong as the style term, it keeps the
    # content features (measured 0.60 against 1.14) while the style loss still falls over 10x.
    free = style_transfer(model, content, [blobs], steps=40, content_weight=0)
    held = style_transfer(model, content, [blobs], steps=40, content_weight=100)
    assert held.final.style < held.initial.style / 5, (held.initial, held.final)
    d_free, d_held = _content_distance(model, free.image, content), _content_distance(model, held.image, content)
    assert d_held < 0.7 * d_free, (d_held, d_free)
    assert held.final.content == pytest.approx(100 * d_held, rel=1e-3)


def test_style_transfer_preserve_color_keeps_content_chroma(model, content, stripes):
    plain = style_transfer(model, content, [stripes], steps=30)
    kept = style_transfer(model, content, [stripes], steps=30, preserve_color=True)
    assert kept.image.shape == content.shape
    assert kept.final.style < kept.initial.style / 3
    err_kept = (_chroma(kept.image) - _chroma(content)).abs().mean().item()
    err_plain = (_chroma(plain.image) - _chroma(content)).abs().mean().item()
    assert err_kept < 0.01, err_kept  # only clipping to [0, 1] changes the chroma
    assert err_plain > 3 * err_kept, (err_plain, err_kept)
    # The luminance did change.
    assert (rgb_to_yiq(kept.image)[:, 0] - rgb_to_yiq(content)[:, 0]).abs().mean() > 0.03


def test_yiq_round_trip():
    x = torch.rand(2, 3, 5, 7)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(x)), x, atol=1e-5)
    grey = torch.full((1, 3, 2, 2), 0.4)
    assert torch.allclose(rgb_to_yiq(grey)[:, 1:], torch.zeros(1, 2, 2, 2), atol=1e-6)


def test_style_blend_of_two_styles(model, content, stripes, blobs):
    both = style_transfer(model, content, [stripes, blobs], style_blend=[0.5, 0.5], steps=30)
    assert both.image.shape == content.shape
    assert both.final.style < both.initial.style / 3
    # The targets are the weighted mean of the styles' Grams: a zero weight drops a style exactly.
    only = style_transfer(model, content, [stripes], steps=3)
    dropped = style_transfer(model, content, [stripes, blobs], style_blend=[2.0, 0.0], steps=3)
    assert torch.allclose(only.image, dropped.image, atol=1e-5)
    assert not torch.allclose(only.image, both.image, atol=1e-2)


def test_style_transfer_coarse_to_fine_and_options(model, stripes):
    content = _photo("chelsea", 99, 75)  # odd sizes: the scales must round back to them
    progress = Recorder()
    r = style_transfer(model, content, [stripes], steps=20, scales=2, progress=progress)
    assert r.image.shape == (1, 3, 75, 99)
    progress.check(20)
    assert r.final.style < r.initial.style / 2
    adam = style_transfer(model, content, [stripes], steps=8, optimizer="adam", init="style",
                          style_layers=["stem", "block2"], content_layers={"block2": 1.0, "block4": 0.5}, tv_weight=0)
    assert adam.image.shape == content.shape and adam.final.tv == 0
    assert adam.final.total < adam.initial.total
    noise = style_transfer(model, content, [stripes], steps=6, init="noise", preserve_color=True, scales=2)
    assert noise.image.shape == content.shape and noise.final.total < noise.initial.total
    assert (_chroma(noise.image) - _chroma(content)).abs().mean() < 0.01


def test_style_transfer_bad_arguments(model, content, stripes):
    with pytest.raises(ValueError, match="empty"):
        style_transfer(model, content, [], steps=1)
    with pytest.raises(ValueError, match="2 styles"):
        style_transfer(model, content, [stripes, stripes], style_blend=[1.0], steps=1)
    with pytest.raises(ValueError, match="style_blend"):
        style_transfer(model, content, [stripes], style_blend=[-1.0], steps=1)
    for name in ("content_weight", "style_weight", "tv_weight"):
        with pytest.raises(ValueError, match=name):
            style_transfer(model, content, [stripes], steps=1, **{name: -1.0})
    with pytest.raises(ValueError, match="optimizer"):
        style_transfer(model, content, [stripes], optimizer="sgd", steps=1)
    with pytest.raises(ValueError, match="no layer"):
        style_transfer(model, content, [stripes], style_layers=["relu1_1"], steps=1)
    with pytest.raises(ValueError, match="no layer"):
        style_transfer(model, content, [stripes], content_layers=["block99"], steps=1)
    with pytest.raises(ValueError, match="init"):
        style_transfer(model, content, [stripes], init="zeros", steps=1)


def test_default_settings_name_real_layers(model):
    cfg = OPTIMISATION_LOSSES["efficientnet_lite0"]
    assert cfg.style_layers == ("stem", "block0", "block2", "block4", "block7")
    assert cfg.content_layers == ("block4",)
    assert (cfg.style_weight, cfg.content_weight, cfg.tv_weight) == (1e3, 1.0, 20.0)
    with pytest.raises(Exception):
        cfg.style_weight = 1.0  # frozen: a shared default cannot be changed by accident
    model.check_layers([*cfg.style_layers, *cfg.content_layers])
    vgg_layers = {f"relu{b}_{i}" for b in range(1, 6) for i in range(1, 5)}
    for name in ("vgg16", "vgg19"):
        assert set(OPTIMISATION_LOSSES[name].style_layers) <= vgg_layers
        assert set(OPTIMISATION_LOSSES[name].content_layers) <= vgg_layers


# ----------------------------------------------------------------------------- DeepDream

def test_deepdream_odd_size_changes_image_and_reports_progress(model):
    image = _photo("coffee", 131, 97)
    progress = Recorder()
    out = deepdream(model, image, "block4", octaves=3, steps=2, progress=progress)
    assert out.shape == image.shape
    assert 0 <= out.min() and out.max() <= 1
    assert (out - image).abs().mean() > 0.01
    progress.check(6)
    assert [d for d, _ in progress.calls] == list(range(1, 7))
    # Deterministic given the seed; another seed jitters differently.
    assert torch.equal(out, deepdream(model, image, "block4", octaves=3, steps=2))
    assert not torch.equal(out, deepdream(model, image, "block4", octaves=3, steps=2, seed=1))


def test_deepdream_raises_the_layer_activation(model):
    image = _photo("chelsea", 64, 48)
    out = deepdream(model, image, "block4", octaves=2, steps=6)

    def energy(x):
        with torch.no_grad():
            return model.features(x, ["block4"])["block4"].pow(2).mean().item()

    assert energy(out) > 1.25 * energy(image)
    # dream_steps, used by the live runner, still works on its own.
    steps = dream_steps(model, image, "block7", steps=1, generator=torch.Generator().manual_seed(0))
    assert steps.shape == image.shape and not torch.equal(steps, image)


@pytest.mark.parametrize("groups, kernel, stride", [(8, 3, 2), (8, 5, 2), (8, 5, 1), (1, 3, 2), (1, 1, 1)])
def test_same_padding_matches_tensorflow_padding(groups, kernel, stride):
    """The padding passed to the convolution (a leading zero in the kernel where TensorFlow
    pads one more pixel after than before) gives what padding the input would."""
    torch.manual_seed(0)
    conv = Conv2dSame(8, 8, kernel, stride, groups=groups, bias=False)
    for h, w in [(16, 16), (15, 17), (9, 10), (1, 2)]:
        x = torch.rand(1, 8, h, w, requires_grad=True)
        ph = max((-(-h // stride) - 1) * stride + kernel - h, 0)
        pw = max((-(-w // stride) - 1) * stride + kernel - w, 0)
        padded = torch.nn.functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        want = torch.nn.functional.conv2d(padded, conv.weight, None, stride, 0, 1, groups)
        got = conv(x)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6), (h, w)
        g = torch.rand_like(want)
        (gw,) = torch.autograd.grad(want, x, g)
        (gg,) = torch.autograd.grad(got, x, g)
        assert torch.allclose(gg, gw, atol=1e-6), (h, w)


def test_fast_frozen_copy_gives_the_networks_values_and_gradients(model):
    fast = fast_frozen_copy(model)
    assert fast is not model
    assert sum(isinstance(m, FusedConvAct) for m in fast.modules()) == 49
    assert not any(isinstance(m, FusedConvAct) for m in model.modules())  # the user's network is untouched
    for fmt in (torch.channels_last, torch.contiguous_format):
        for h, w in [(64, 64), (61, 90)]:
            x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h)).contiguous(memory_format=fmt)
            xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
            want, got = model.classify(xa), fast.classify(xb)
            assert torch.allclose(got, want, atol=1e-3 * float(want.detach().abs().max()))
            want[0, 1].backward()
            got[0, 1].backward()
            assert torch.allclose(xb.grad, xa.grad, atol=1e-3 * float(xa.grad.abs().max()))
            act = fast.features(x, ["block10"])["block10"]
            ref = model.features(x, ["block10"])["block10"]
            assert torch.allclose(act, ref, atol=1e-3 * float(ref.abs().max()))


def test_deepdream_bad_arguments(model):
    image = _photo("coffee", 40, 32)
    with pytest.raises(ValueError, match="no layer"):
        deepdream(model, image, "relu4_2", steps=1)
    with pytest.raises(ValueError, match="octaves"):
        deepdream(model, image, "block4", octaves=0)


def test_fused_convolution_falls_back_to_the_plain_ops_when_the_private_op_fails(model):
    """The fusion calls a private oneDNN op; if another torch changes it, results stay right."""
    import models.efficientnet_lite as enl

    fast = fast_frozen_copy(model)
    x = torch.rand(1, 3, 64, 80)
    assert enl.fusion_works()
    want = fast.classify(x)
    original = enl._CONV_POINTWISE

    def broken(*args):
        raise TypeError("changed signature")

    try:
        enl._CONV_POINTWISE = broken
        enl.fusion_works.cache_clear()
        with pytest.warns(UserWarning, match="plain ops"):
            got = fast.classify(x)
        assert not enl.fusion_works()
    finally:
        enl._CONV_POINTWISE = original
        enl.fusion_works.cache_clear()
    assert torch.allclose(got, want, atol=1e-3 * float(want.abs().max()))


def test_color_distribution_loss_is_zero_on_the_palette_and_large_on_another():
    from models.losses import color_distribution_loss

    gen = torch.Generator().manual_seed(0)
    painting = torch.rand(1, 3, 40, 50, generator=gen) * torch.tensor([1.0, 0.2, 0.1])[:, None, None]  # reds
    pixels = painting.flatten(2).transpose(1, 2)
    shuffled = painting.flatten(2)[..., torch.randperm(2000, generator=gen)].reshape(1, 3, 40, 50)
    same = color_distribution_loss(shuffled, pixels, generator=torch.Generator().manual_seed(1))
    blue = torch.rand(2, 3, 30, 30, generator=gen) * torch.tensor([0.1, 0.2, 1.0])[:, None, None]
    blue.requires_grad_(True)
    other = color_distribution_loss(blue, pixels, generator=torch.Generator().manual_seed(1))
    assert other.shape == (2,)
    assert float(same) < 0.05 < 1.0 < float(other.min())
    other.sum().backward()
    assert torch.isfinite(blue.grad).all() and blue.grad.abs().sum() > 0


def test_tone_loss_accepts_any_brighter_or_flatter_copy_and_punishes_the_negative():
    from models.losses import tone_loss

    gen = torch.Generator().manual_seed(0)
    photo = torch.nn.functional.interpolate(torch.rand(2, 3, 6, 6, generator=gen), size=(48, 48), mode="bilinear")
    recoloured = (0.3 + 0.4 * photo) * torch.tensor([1.0, 0.6, 0.2])[:, None, None]  # flatter, orange, same layout
    negative = (1 - photo).requires_grad_(True)
    same, neg = tone_loss(recoloured, photo), tone_loss(negative, photo)
    assert same.shape == (2,) and float(same.max()) < 0.1  # the layout is kept whatever the palette
    assert float(neg.min()) > 1.8  # the photo's negative is as far as it gets
    neg.sum().backward()
    assert torch.isfinite(negative.grad).all() and negative.grad.abs().sum() > 0


def test_style_transfer_colour_term_brings_the_paintings_palette(model, content, blobs):
    """With the colour term the result's colours are nearer the painting's than without it, and the
    loss is one function (the same samples at every evaluation), so the recorded total falls."""
    from models.losses import color_distribution_loss

    palette = blobs.flatten(2).transpose(1, 2)

    def colour_distance(img: torch.Tensor) -> float:
        gen = torch.Generator().manual_seed(1)  # other samples than the optimisation's
        return float(color_distribution_loss(img, palette, samples=8192, directions=64, generator=gen))

    plain = style_transfer(model, content, [blobs], steps=30, style_scales=(1,), color_weight=0.0)
    coloured = style_transfer(model, content, [blobs], steps=30, style_scales=(1, 2), color_weight=1.0)
    assert colour_distance(coloured.image) < 0.7 * colour_distance(plain.image)
    assert coloured.final.total < coloured.initial.total / 3
    with pytest.raises(ValueError, match="style_scales"):
        style_transfer(model, content, [blobs], steps=1, style_scales=(0,))
