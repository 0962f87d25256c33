import socket

import cv2
import pytest
import torch

from models.backbones import load_backbone
from models.efficientnet_lite import weights_file
from models.common.errors import InputFileError, WeightsUnavailableError
from models.common.images import rgb_to_tensor


@pytest.fixture(scope="module")
def effnet():
    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def random_vgg():
    """VGG16 with random weights, asked for explicitly: for shape and structure tests only."""
    return load_backbone("vgg16", pretrained=False)


def _center_crop(rgb, size=224):
    h, w = rgb.shape[:2]
    s = 256 / min(h, w)
    rgb = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    h, w = rgb.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return rgb[y:y + size, x:x + size]


def test_efficientnet_loads_strictly_and_is_frozen(effnet):
    import torch as t

    sd = t.load(weights_file(), weights_only=True)
    assert len(sd) == 296
    assert not any(p.requires_grad for p in effnet.parameters())
    assert not effnet.training


@pytest.mark.parametrize("name, classes", [("chelsea", range(281, 286)), ("coffee", [967])])
def test_efficientnet_classifies_real_photos(effnet, name, classes):
    from skimage import data

    x = rgb_to_tensor(_center_crop(getattr(data, name)()))
    top = int(effnet.classify(x).argmax(1))
    assert top in classes, effnet.categories[top]


def test_named_layers_have_the_documented_strides(effnet):
    feats = effnet.features(torch.rand(1, 3, 224, 224), ["stem", "block0", "block2", "block4", "block7", "head"])
    assert {k: (v.shape[1], 224 // v.shape[2]) for k, v in feats.items()} == {
        "stem": (32, 2), "block0": (16, 2), "block2": (24, 4), "block4": (40, 8), "block7": (80, 16),
        "head": (1280, 32)}


def test_unknown_layer_is_a_clear_error(effnet):
    with pytest.raises(ValueError, match="block99"):
        effnet.features(torch.rand(1, 3, 32, 32), ["block99"])


def test_normalisation_is_the_backbones_own(effnet):
    x = torch.full((1, 3, 8, 8), 0.5)
    assert effnet.normalize(x).abs().max() == 0  # [0, 1] -> [-1, 1]


def test_vgg_without_network_or_file_names_both_options(tmp_path, monkeypatch):
    from models import vgg16_offline

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    monkeypatch.setattr(vgg16_offline, "available", lambda: False)  # and no offline VGG16

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(WeightsUnavailableError) as err:
        load_backbone("vgg16")
    msg = str(err.value)
    assert "--weights" in msg and str(tmp_path) in msg and "vgg16-397923af.pth" in msg
    assert "stylelens[vgg16]" in msg and "\n" not in msg


def test_vgg_local_weights_of_another_network_are_refused():
    with pytest.raises(InputFileError, match="do not fit") as err:
        load_backbone("vgg16", weights=weights_file())
    assert "missing (features.0.weight" in str(err.value) and "296 unexpected (_conv_stem.weight" in str(err.value)


def test_vgg_layers_are_named_without_weights(random_vgg):
    """Shape test only: random weights asked for explicitly."""
    vgg = random_vgg
    assert vgg.layer_names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    feats = vgg.features(torch.rand(1, 3, 64, 64), ["relu2_2", "relu4_3"])
    assert feats["relu2_2"].shape == (1, 128, 32, 32) and feats["relu4_3"].shape == (1, 512, 8, 8)
    assert vgg.classify(torch.rand(1, 3, 64, 64)).shape == (1, 1000)


def test_folding_batchnorm_keeps_the_features_and_leaves_the_original_alone(random_vgg):
    from models.backbones import fold_batchnorm

    model = load_backbone("efficientnet_lite0")
    folded = fold_batchnorm(model)
    assert folded is not model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = model.features(x, ["block4", "head"]), folded.features(x, ["block4", "head"])
        for layer in a:
            assert torch.allclose(a[layer], b[layer], atol=1e-4 * float(a[layer].abs().max())), layer
        assert model.classify(x).argmax() == folded.classify(x).argmax()
    assert fold_batchnorm(random_vgg) is random_vgg  # nothing to fold, no copy


def test_the_fast_paths_know_which_networks_they_cover(effnet, random_vgg):
    """CAM in the engine and the written-out gradient cover EfficientNet-Lite0 only; VGG (random
    weights: shapes only) keeps Grad-CAM by backpropagation and PyTorch's autograd."""
    from models.input_gradient import InputGradient, gradient_fn, has_written_out_gradient

    vgg = random_vgg
    assert effnet.pooled_linear_head and has_written_out_gradient(effnet) and gradient_fn(effnet) is not None
    assert not vgg.pooled_linear_head and not has_written_out_gradient(vgg) and gradient_fn(vgg) is None
    with pytest.raises(ValueError, match="covers this project.s efficientnet_lite0"):
        InputGradient(vgg)
