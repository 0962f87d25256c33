"""Reduced precision for the style networks: offered only where the CPU has it, kept only within the
PSNR budget of fp32 on the calibration photos, and fp32 on every other machine."""

from __future__ import annotations

import numpy as np
import pytest

from models import catalogue
from models.inference import backends, precision
from models.inference.backends import candidates, load_style_model, probe_backends

MODEL = catalogue.model_path("starry_night_tiny")
needs_openvino = pytest.mark.skipif(not backends.openvino_available(), reason="needs OpenVINO")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLELENS_CACHE_DIR", str(tmp_path))


def test_candidates_follow_the_cpu(monkeypatch):
    monkeypatch.setattr(backends, "has_bf16", lambda: False)
    monkeypatch.setattr(backends, "has_vnni", lambda: False)
    plain = candidates("auto")
    assert all("-" not in c for c in plain)  # an AVX2 machine: fp32 only
    monkeypatch.setattr(backends, "has_bf16", lambda: True)
    monkeypatch.setattr(backends, "has_vnni", lambda: True)
    rich = candidates("auto")
    assert ("openvino-bf16" in rich) == backends.openvino_available() and "onnxruntime-int8" in rich
    assert candidates("fp32") == plain


def test_the_calibration_photos_and_the_budget():
    images = precision.calibration_images()
    assert len(images) == 8 and all(x.dtype == np.float32 and x.shape[1] == 3 and x.max() <= 1 for x in images)
    ref = load_style_model(MODEL, "onnxruntime", ["CPUExecutionProvider"], 1)
    assert precision.within_budget(ref.run, ref.run, images[:2]) == float("inf")
    noisy = lambda x: np.clip(ref.run(x) + 0.05, 0, 1)  # noqa: E731  a shift of 13 grey levels: 26 dB
    assert precision.within_budget(ref.run, noisy, images[:2]) < precision.PSNR_BUDGET


@pytest.mark.parametrize("forced", ["fp32", "int8", pytest.param("bf16", marks=needs_openvino)])
def test_a_forced_precision_runs_and_is_kept_only_within_the_budget(forced):
    log: list[str] = []
    choice, seconds, models = probe_backends(MODEL, (64, 96), threads=1, log=log.append, precision=forced)
    engine, got = backends.split_backend(choice)
    ref = load_style_model(MODEL, "onnxruntime", ["CPUExecutionProvider"], 1)
    quality = precision.within_budget(ref.run, load_style_model(MODEL, choice, ["CPUExecutionProvider"], 1).run,
                                      precision.calibration_images()[:3])
    assert quality >= precision.PSNR_BUDGET  # whatever runs keeps the picture
    if got != forced:  # the forced precision missed the budget here, and said so
        assert got == "fp32" and any("budget" in line for line in log), log
    x = np.random.default_rng(0).random((1, 3, 2, 3), dtype=np.float32)  # and runs on a tiny input too
    assert load_style_model(MODEL, choice, ["CPUExecutionProvider"], 1).run(x).shape == x.shape


def test_the_style_effect_runs_fp32_on_a_machine_without_bf16_or_vnni(monkeypatch):
    from realtime.effects import EffectOptions, create_effect

    monkeypatch.setattr(backends, "has_bf16", lambda: False)
    monkeypatch.setattr(backends, "has_vnni", lambda: False)
    fx = create_effect("style", EffectOptions(model="starry_night_tiny", provider="cpu"))
    fx.prepare((48, 64))
    assert backends.split_backend(fx.backend)[1] == "fp32"
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    assert fx(frame).shape == frame.shape


@needs_openvino
@pytest.mark.parametrize("name", ["starry_night_lite", "starry_night_tiny", "five_styles_lite"])
def test_openvino_runs_the_decoder_rewritten_and_gives_the_exported_networks_output(name):
    """The upsampling decoder runs as transposed convolutions (openvino_graph) where the sizes allow:
    the same picture as onnxruntime's fp32 at sides that are multiples of 4 and at sides that are not
    (those run the graph as exported)."""
    from models.inference.openvino_graph import upsampling_as_transposed_conv

    path = catalogue.model_path(name)
    ref = load_style_model(path, "onnxruntime", ["CPUExecutionProvider"], 1)
    fast = load_style_model(path, "openvino", ["CPUExecutionProvider"], 1)
    assert fast.session.multiple == 4  # two upsamplings rewritten
    x = np.random.default_rng(1).random((1, 3, 48, 64), dtype=np.float32)
    assert np.abs(fast.run(x) - ref.run(x)).max() < 1e-4
    assert fast.session._as_exported is None  # the rewritten graph ran: the exported one was not needed
    for hw in ((50, 66), (37, 53)):  # sides that are not multiples of 4 (with the model's own margin)
        x = np.random.default_rng(1).random((1, 3, *hw), dtype=np.float32)
        y = fast.run(x)
        assert y.shape == x.shape and np.abs(y - ref.run(x)).max() < 1e-4, hw
    import openvino as ov

    model = ov.Core().read_model(str(path))
    assert upsampling_as_transposed_conv(model) == 2
    assert "ConvolutionBackpropData" in {op.get_type_name() for op in model.get_ordered_ops()}
    # Forced onto a size where the upsampling does not double, the rewritten graph gives another
    # size: the session notices, keeps to the exported graph from then on, and the picture is right.
    forced = load_style_model(path, "openvino", ["CPUExecutionProvider"], 1)
    forced.session.multiple = 1
    x = np.random.default_rng(1).random((1, 3, 50, 66), dtype=np.float32)
    y = forced.run(x)
    assert forced.session.compiled is forced.session._as_exported
    assert y.shape == x.shape and np.abs(y - ref.run(x)).max() < 1e-4


@needs_openvino
@pytest.mark.parametrize("transform, nearest_mode", [("align_corners", "floor"), ("asymmetric", "ceil"),
                                                     ("asymmetric", "floor")])
def test_the_rewrite_takes_only_the_upsampling_it_replaces_exactly(tmp_path, transform, nearest_mode):
    """Nearest upsampling picks x[o // 2] only with the asymmetric coordinate and floor (as torch
    exports it); other modes pick other pixels, and the graph keeps them."""
    import onnx
    from onnx import TensorProto, helper

    import openvino as ov

    from models.inference.openvino_graph import upsampling_as_transposed_conv

    w = np.random.default_rng(0).normal(size=(2, 2, 3, 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest",
                          coordinate_transformation_mode=transform, nearest_mode=nearest_mode),
         helper.make_node("Pad", ["up", "pads"], ["padded"], mode="reflect"),
         helper.make_node("Conv", ["padded", "w"], ["y"])],
        "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 12, 16])],
        [helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2]),
         helper.make_tensor("pads", TensorProto.INT64, [8], [0, 0, 1, 1, 0, 0, 1, 1]),
         helper.make_tensor("w", TensorProto.FLOAT, w.shape, w.ravel())])
    path = tmp_path / "toy.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    core = ov.Core()
    model = core.read_model(str(path))
    taken = upsampling_as_transposed_conv(model)
    assert taken == (transform == "asymmetric" and nearest_mode == "floor")
    x = np.random.default_rng(1).random((1, 2, 6, 8), dtype=np.float32)
    exported = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    rewritten = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    assert np.abs(rewritten({"x": x})[0] - exported({"x": x})[0]).max() < 1e-4  # taken or left, exact
