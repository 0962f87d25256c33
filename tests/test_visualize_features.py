"""Filters, neighbours, t-SNE, receptive fields, max-activating patches, occlusion (visualize/)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from models.backbones import load_backbone
from models.common.images import rgb_to_tensor
from visualize.filters import first_layer_filters, layer_filters
from visualize.neighbours import embed, nearest_neighbours, tsne_map
from visualize.occlusion import occlusion
from visualize.patches import max_activating_patches, receptive_field

GALLERY_NAMES = ["astronaut", "coffee", "rocket", "camera", "immunohistochemistry", "coins"]


@pytest.fixture(scope="module")
def model():
    return load_backbone("efficientnet_lite0")


@pytest.fixture(scope="module")
def vgg():
    return load_backbone("vgg16", pretrained=False)  # random weights: shape tests only


def photo(name: str, size: int) -> torch.Tensor:
    from skimage import data

    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = cv2.resize(np.ascontiguousarray(img[..., :3]), (size, size), interpolation=cv2.INTER_AREA)
    return rgb_to_tensor(img)


@pytest.fixture(scope="module")
def query() -> torch.Tensor:
    return photo("chelsea", 96)


@pytest.fixture(scope="module")
def gallery(query) -> torch.Tensor:
    """Six unrelated photos, then the query flipped left-right, shifted by 6 px and brightened."""
    copy = torch.roll(query.flip(3), shifts=6, dims=3)
    copy = (copy * 1.15 + 0.05).clamp(0, 1)
    return torch.cat([photo(n, 96) for n in GALLERY_NAMES] + [copy])


@pytest.fixture(scope="module")
def features(model, gallery, query) -> torch.Tensor:
    """Penultimate features of the gallery, then of the query (8 rows)."""
    return embed(model, torch.cat([gallery, query]), batch=4)


# --- filters ---------------------------------------------------------------------------------

def test_first_layer_filters_grid(model):
    grid = first_layer_filters(model, scale=8, pad=1)
    # The stem has 32 kernels of 3x3: a 6x6 grid of 24 px tiles with 1 px between them.
    assert grid.shape == (3, 6 * 25 - 1, 6 * 25 - 1)
    assert grid.min() >= 0 and grid.max() <= 1
    assert grid.std() > 0.1
    first = grid[:, :24, :24]  # each kernel is min-max scaled on its own
    assert first.min() == 0 and first.max() == 1


def test_layer_filters_efficientnet(model):
    # block3's first conv is its 1x1 expansion: 144 filters over 24 inputs, shown 32 x 16.
    grid = layer_filters(model, "block3", max_filters=32, max_inputs=16, scale=8, pad=1)
    assert grid.shape == (32 * 9 - 1, 16 * 9 - 1)
    assert grid.min() >= 0 and grid.max() <= 1 and grid.std() > 0.1
    # block0 has no expansion: its first conv is depthwise 3x3, one column.
    dw = layer_filters(model, "block0", scale=8)
    assert dw.shape == (32 * 25 - 1, 24)
    assert dw[:24].min() == 0 and dw[:24].max() == 1
    assert layer_filters(model, "block3", index=1).shape == (32 * 41 - 1, 40)  # its 5x5 depthwise conv
    with pytest.raises(ValueError, match="no layer"):
        layer_filters(model, "block99")


def test_layer_filters_vgg(vgg):
    with pytest.raises(ValueError, match="no convolution"):
        layer_filters(vgg, "relu1_1")
    with pytest.raises(ValueError, match="no convolution"):
        layer_filters(vgg, "pool2")
    grid = layer_filters(vgg, "conv2_1", max_filters=32, max_inputs=16, scale=8)
    assert grid.shape == (32 * 25 - 1, 16 * 25 - 1)
    assert first_layer_filters(vgg).shape == (3, 8 * 25 - 1, 8 * 25 - 1)  # 64 kernels: 8 x 8


# --- neighbours and t-SNE ----------------------------------------------------------------------

def test_nearest_neighbours_finds_modified_copy(model, query, gallery, features):
    copy_index = len(GALLERY_NAMES)
    assert features.shape == (len(gallery) + 1, 1280)
    nb = nearest_neighbours(model, query, gallery, k=4)
    assert nb.feature_index[0] == copy_index
    assert len(nb.feature_index) == len(nb.pixel_index) == 4
    assert torch.all(nb.feature_distance[1:] >= nb.feature_distance[:-1])
    assert torch.all(nb.pixel_distance[1:] >= nb.pixel_distance[:-1])
    # The copy is far nearer than any other photo in features (cosine distance 0.05 against
    # 0.71 and more); the two spaces rank the unrelated photos differently.
    assert nb.feature_distance[0] < 0.5 * nb.feature_distance[1]
    assert nb.pixel_index != nb.feature_index
    # Pixel order is the plain L2 order of the raw pixels.
    l2 = (gallery - query).flatten(1).norm(dim=1)
    assert nb.pixel_index == l2.argsort()[:4].tolist()
    # With the query itself in the gallery it comes first, then its modified copy; k clips to N.
    with_self = torch.cat([gallery, query])
    nb2 = nearest_neighbours(model, query, with_self, k=100, gallery_features=features)
    assert nb2.feature_index[:2] == [len(gallery), copy_index]
    assert nb2.pixel_index[0] == len(gallery)
    assert len(nb2.feature_index) == len(with_self)
    assert float(nb2.feature_distance[0]) < 1e-3
    torch.testing.assert_close(nb2.feature_distance[1], nb.feature_distance[0], atol=1e-3, rtol=1e-3)


def test_tsne_map(query, gallery, features):
    images = torch.cat([gallery, query])  # 8 images
    feats = features
    canvas, coords = tsne_map(feats, images, canvas=256, thumb=32, seed=0)
    assert canvas.shape == (3, 256, 256)
    assert canvas.min() >= 0 and canvas.max() <= 1
    assert coords.shape == (8, 2)
    assert (coords >= 16).all() and (coords <= 256 - 16).all()
    for x, y in np.round(coords).astype(int):
        around = canvas[:, y - 2:y + 3, x - 2:x + 3]
        assert (around < 0.99).any(), "a thumbnail should cover its point"
    assert (canvas == 1).all(dim=0).float().mean() > 0.3  # mostly white canvas around 8 thumbnails
    # Deterministic for a seed.
    _, again = tsne_map(feats, images, canvas=256, thumb=32, seed=0)
    np.testing.assert_allclose(coords, again)
    with pytest.raises(ValueError):
        tsne_map(feats[:2], images[:2])


# --- receptive fields and patches --------------------------------------------------------------

def expected_field(layer_index: int) -> tuple[int, int]:
    """Receptive field of EfficientNet-Lite0's block ``layer_index``, from its architecture table."""
    from models.efficientnet_lite import BLOCK_ARGS

    rf, jump = 3, 2  # stem 3x3 / 2
    blocks = [(k, s if i == 0 else 1) for k, s, _, _, n in BLOCK_ARGS for i in range(n)]
    for k, s in blocks[:layer_index + 1]:
        rf += (k - 1) * jump
        jump *= s
    return rf, jump


def test_receptive_field(model, vgg):
    fields = {name: receptive_field(model, name) for name in ("block0", "block4", "block10")}
    assert fields["block0"][0] < fields["block4"][0] < fields["block10"][0]
    assert [s for _, s in fields.values()] == [2, 8, 16]  # the notes' table of strides
    assert fields == {"block0": expected_field(0), "block4": expected_field(4), "block10": expected_field(10)}
    assert fields["block10"][0] == 339  # larger than the input: measured on a larger one
    assert receptive_field(vgg, "pool5") == (212, 32)  # VGG16's well-known field
    assert receptive_field(vgg, "relu1_1") == (3, 1)


def test_max_activating_patches(model, gallery):
    layer = "block4"
    with torch.no_grad():
        acts = model.features(gallery, [layer])[layer]
    channel = int(acts.amax(dim=(0, 2, 3)).argmax())
    steps = []
    res = max_activating_patches(model, gallery, layer, channel, k=9, batch=3,
                                 progress=lambda done, total: steps.append((done, total)))
    rf = receptive_field(model, layer)[0]
    assert res.receptive_field == rf == 67
    assert res.images.shape == (9, 3, rf, rf)
    assert res.images.min() >= 0 and res.images.max() <= 1
    assert res.activations.shape == (9,)
    assert torch.all(res.activations[1:] <= res.activations[:-1])
    assert torch.isclose(res.activations[0], acts[:, channel].max(), rtol=1e-4, atol=1e-5)
    assert len(set(res.sources)) == 9
    for (i, y, x), a in zip(res.sources, res.activations):
        assert torch.isclose(acts[i, channel, y, x], a, rtol=1e-4, atol=1e-5)
    # The crop is centred on the unit: block4 unit (y, x) is centred on input pixel (8y+7, 8x+7)
    # (TensorFlow "same" padding pads stride-2 convs on the bottom/right).
    i, y, x = res.sources[0]
    torch.testing.assert_close(res.images[0, :, rf // 2, rf // 2], gallery[i, :, 8 * y + 7, 8 * x + 7])
    assert steps[-1] == (len(gallery), len(gallery))
    small = max_activating_patches(model, gallery, layer, channel, k=2, patch_size=32)
    assert small.images.shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="channel"):
        max_activating_patches(model, gallery, layer, 10_000)


# --- occlusion ---------------------------------------------------------------------------------

# skimage.data.chelsea() squashed to 224x224 (looked at in a scratch copy): the cat's head fills
# the picture; its face (both eyes, the bridge of the nose, the nose and mouth) lies in
# x 0.27-0.83, y 0.25-0.95 of the image. Blurred background is only at the right edge (x > 0.85).
FACE_BOX = (0.27, 0.83, 0.25, 0.95)  # x0, x1, y0, y1 as fractions of the side
GENEROUS_BOX = (0.15, 0.95, 0.10, 1.00)


def box_mask(box: tuple[float, float, float, float], size: int) -> torch.Tensor:
    x0, x1, y0, y1 = (round(v * size) for v in box)
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_occlusion_focuses_on_the_face(model):
    image = photo("chelsea", 224)
    steps = []
    # 80 px squares: with 48 px ones no single square hides enough of this close-up to matter
    # (p(Egyptian cat) 0.78 falls by at most 0.06) and the map shows breed cues (cheek stripes,
    # one eye, an ear tip) more than the face.
    heat, target = occlusion(model, image, size=80, stride=40, progress=lambda d, t: steps.append((d, t)))
    assert heat.shape == (224, 224)
    assert model.categories[target] == "Egyptian cat"
    assert steps[-1] == (25, 25)
    face = box_mask(FACE_BOX, 224)
    assert heat[face].mean() > 1.5 * heat[~face].mean()
    positive = heat.clamp_min(0)
    inside = positive[box_mask(GENEROUS_BOX, 224)].sum() / positive.sum()
    assert inside > 0.5
    # More of the positive mass on the face than its share of the area.
    assert positive[face].sum() / positive.sum() > face.float().mean() + 0.1


def test_occlusion_values(model, query):
    image = query  # 96 px cat
    heat, target = occlusion(model, image, target=282, size=32, stride=32, fill=0.5, batch=4)
    assert target == 282 and heat.shape == (96, 96)
    # A pixel covered by one window only holds that window's drop.
    hidden = image.clone()
    hidden[:, :, :32, :32] = 0.5
    with torch.no_grad():
        drop = model.classify(image).softmax(1)[0, 282] - model.classify(hidden).softmax(1)[0, 282]
    assert torch.isclose(heat[0, 0], drop, atol=1e-5)
    assert torch.allclose(heat[:32, :32], heat[0, 0].expand(32, 32))
    with pytest.raises(ValueError, match="target"):
        occlusion(model, image, target=1000)


def test_occlusion_refuses_gaps_between_squares(model):
    """size 16, stride 48 on 227x201 left 83% of the pixels at an untested 0."""
    with pytest.raises(ValueError, match="stride 48 is larger than the square size 16") as err:
        occlusion(model, torch.rand(1, 3, 201, 227), size=16, stride=48)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("length", [1, 15, 16, 17, 201, 227])
@pytest.mark.parametrize("size, stride", [(16, 16), (16, 8), (16, 1), (32, 24), (80, 40), (300, 56)])
def test_occlusion_windows_cover_every_pixel(length, size, stride):
    from visualize.occlusion import _starts

    covered = np.zeros(length, bool)
    for s in _starts(length, size, stride):
        covered[s:s + size] = True
    assert covered.all()
