"""ONNX export: numeric parity with torch, blend input, metadata, and the torch-free stylize path."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from models.common.errors import UserError
from models.common.images import read_rgb
from models.inference.onnx_style import META_STYLES
from models.inference.onnx_style import OnnxStyleModel as _OnnxStyleModel
from models.style_net import StyleNet
from training.checkpoint import save_checkpoint
from training.export import export_checkpoint


def OnnxStyleModel(path):
    """Tests check numbers on the CPU, whatever the machine has."""
    return _OnnxStyleModel(path, providers=["CPUExecutionProvider"])


def _checkpoint(tmp_path, styles, arch="lite", seed=0):
    """A checkpoint whose styles have distinct norm parameters, written like training writes it."""
    torch.manual_seed(seed)
    net = StyleNet(arch, num_styles=len(styles))
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn_like(p))
    path = tmp_path / f"{arch}-{len(styles)}.pt"
    save_checkpoint({"step": 7, "model": net.state_dict(), "optimizer": {}, "rng": {},
                     "config": {"arch": arch, "net": net.config.to_dict(), "styles": styles,
                                "loss_net": "efficientnet_lite0", "settings": {"size": 256}}}, path)
    return path, net.eval()


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cond")
    ckpt, net = _checkpoint(tmp, ["stripes", "blobs", "waves"])
    onnx_path, err = export_checkpoint(ckpt, tmp / "cond.onnx")
    return onnx_path, net, err


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single")
    ckpt, net = _checkpoint(tmp, ["stripes"], arch="johnson")
    onnx_path, err = export_checkpoint(ckpt, tmp / "single.onnx")
    return onnx_path, net, err


def test_single_style_parity_at_two_sizes(single):
    path, net, err = single
    assert err < 1e-4
    model = OnnxStyleModel(path)
    assert not model.conditional and model.styles == ["stripes"]
    for h, w in [(64, 96), (97, 131)]:
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            ref = net(x).numpy()
        got = model.run(x.numpy())
        assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-4


def test_export_is_lean_and_carries_no_local_paths(single, conditional):
    """Scale and shift live inside each InstanceNormalization (no Mul and Add after it, which
    cost onnxruntime two passes over every activation), and the exporter's debug records
    with this machine's paths are gone."""
    from pathlib import Path

    import training

    for path, _, _ in (single, conditional):
        model = onnx.load(str(path))
        ops = [n.op_type for n in model.graph.node]
        norms = ops.count("InstanceNormalization")
        assert norms >= 10
        assert ops.count("Mul") + ops.count("Add") < norms  # only residual adds and shape arithmetic
        assert not any(n.metadata_props for n in model.graph.node)
        assert str(Path(training.__file__).resolve().parents[1]).encode() not in path.read_bytes()


def test_border_pad_is_mirrored_around_the_input_and_cropped(tmp_path):
    """A model exported with --border-pad runs on a mirrored margin: the parity check covers it,
    the output keeps the input's size, and images smaller than the margin still work."""
    import torch.nn.functional as F

    ckpt, net = _checkpoint(tmp_path, ["stripes", "blobs"])
    path, err = export_checkpoint(ckpt, tmp_path / "padded.onnx", border_pad=12)
    assert err < 1e-4
    model = OnnxStyleModel(path)
    assert model.border_pad == 12
    x = torch.rand(1, 3, 40, 52)
    w = torch.tensor([[0.3, 0.7]])
    with torch.no_grad():
        expected = net(F.pad(x, (12, 12, 12, 12), mode="reflect"), w)[..., 12:52, 12:64].numpy()
        plain = net(x, w).numpy()
    got = model.run(x.numpy(), w.numpy())
    assert got.shape == plain.shape and np.abs(got - expected).max() < 1e-4
    assert np.abs(got - plain).max() > 1e-3  # the margin changes the result
    assert model.run(np.random.rand(1, 3, 5, 9).astype(np.float32), w.numpy()).shape == (1, 3, 5, 9)
    with pytest.raises(UserError, match="border"):
        export_checkpoint(ckpt, tmp_path / "bad.onnx", border_pad=-1)


def test_conditional_parity_with_blend_input(conditional):
    path, net, err = conditional
    assert err < 1e-4
    model = OnnxStyleModel(path)
    assert model.conditional and model.styles == ["stripes", "blobs", "waves"]
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image", "style_weights"]
    x = torch.rand(2, 3, 80, 72)
    for blend in ({"stripes": 1.0}, {"stripes": 0.5, "blobs": 0.5}, {"blobs": 1, "waves": 3}):
        w = model.style_weights(blend)
        assert w.sum() == pytest.approx(1.0)
        with torch.no_grad():
            ref = net(x, torch.from_numpy(w).expand(2, -1)).numpy()
        assert np.abs(model.run(x.numpy(), w) - ref).max() < 1e-4


def test_metadata_and_opset(conditional):
    path, _, _ = conditional
    m = onnx.load(str(path))
    meta = {p.key: p.value for p in m.metadata_props}
    assert json.loads(meta[META_STYLES]) == ["stripes", "blobs", "waves"]
    training = json.loads(meta["stylelens.training"])
    assert training["step"] == 7 and training["arch"] == "lite"
    assert max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]  # dynamic batch, height, width


def test_fp16_export_runs_close_to_fp32(tmp_path):
    ckpt, _ = _checkpoint(tmp_path, ["stripes"])
    path, err = export_checkpoint(ckpt, tmp_path / "half.onnx", fp16=True)
    assert err < 1e-2
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in onnx.load(str(path)).graph.initializer)


def test_unknown_style_name_is_a_clear_error(conditional):
    model = OnnxStyleModel(conditional[0])
    with pytest.raises(UserError, match="holds"):
        model.style_weights({"monet": 1.0})
    for bad in ({"stripes": float("nan")}, {"stripes": -1.0, "blobs": 2.0}, {"stripes": 0.0}):
        with pytest.raises(UserError, match="non-negative"):
            model.style_weights(bad)


def test_parse_blend():
    from models.inference.onnx_style import parse_blend

    assert parse_blend(["a=0.25", "b"]) == {"a": 0.25, "b": 1.0}
    with pytest.raises(UserError, match="NAME=WEIGHT"):
        parse_blend(["a=lots"])


@pytest.mark.parametrize("hw", [(1, 1), (3, 200), (15, 16)])
def test_tiny_images_are_padded_not_refused(single, hw):
    model = OnnxStyleModel(single[0])
    rgb = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    assert model.stylize(rgb).shape == rgb.shape


def test_stylize_refuses_an_unwritable_output_before_working(tmp_path, single):
    (tmp_path / "out.png").mkdir()
    for out, problem in [(tmp_path / "x.xyz", "suffix"), (tmp_path / "out.png", "folder")]:
        r = subprocess.run([sys.executable, "-m", "training", "stylize", "--model", str(single[0]), "--out", str(out),
                            "--provider", "cpu"], capture_output=True, text=True)
        assert r.returncode == 2 and problem in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert [p.name for p in tmp_path.rglob("*")] == ["out.png"]  # no stray temporary files


def test_export_cli_prints_parity(tmp_path):
    ckpt, _ = _checkpoint(tmp_path, ["stripes"])
    out = tmp_path / "cli.onnx"
    r = subprocess.run([sys.executable, "-m", "training", "export", str(ckpt), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "max abs difference" in r.stdout and out.is_file()


def test_stylize_cli_needs_no_torch_and_blends(conditional, photos_dir, tmp_path):
    """Runs the CLI in a process where importing torch fails."""
    path = conditional[0]
    photo = sorted(photos_dir.glob("*.jpg"))[0]
    outs = {}
    for name, blend in [("a", ["stripes=1"]), ("b", ["blobs=1"]), ("mix", ["stripes=0.5", "blobs=0.5"])]:
        out = tmp_path / f"{name}.png"
        code = ("import sys; sys.modules['torch'] = None; from training.__main__ import main; "
                f"sys.exit(main(['stylize', '--model', {str(path)!r}, {str(photo)!r}, '--out', {str(out)!r}, '--provider', 'cpu', "
                f"'--blend', *{blend!r}]))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        outs[name] = read_rgb(out).astype(float)
    src = read_rgb(photo).astype(float)
    assert all(o.shape == src.shape for o in outs.values())
    assert np.abs(outs["a"] - src).mean() > 5  # stylised, not the input
    d_ab = np.abs(outs["a"] - outs["b"]).mean()
    assert d_ab > 1
    assert np.abs(outs["mix"] - outs["a"]).mean() < d_ab and np.abs(outs["mix"] - outs["b"]).mean() < d_ab


def test_a_checkpoint_that_does_not_fit_names_the_keys(tmp_path):
    """An old example's instance norms kept running statistics: the export names those keys."""
    ckpt, _ = _checkpoint(tmp_path, ["stripes"])
    state = torch.load(ckpt, weights_only=True)
    norms = [k[:-len(".weight")] for k in state["model"] if ".norm" in k and k.endswith(".weight")]
    for n in norms:
        state["model"][f"{n}.running_mean"] = torch.zeros(3)
        state["model"][f"{n}.running_var"] = torch.ones(3)
    first = next(k for k in state["model"] if k.endswith(".weight"))
    del state["model"][first]
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, ckpt)
    r = subprocess.run([sys.executable, "-m", "training", "export", str(ckpt), "--out", str(tmp_path / "x.onnx")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and str(ckpt) in line
    assert f"{2 * len(norms)} unexpected ({norms[0]}.running_mean, {norms[0]}.running_var" in line
    assert f"and {2 * len(norms) - 3} more" in line
    assert f"1 missing ({first})" in line


def test_state_dict_mismatch_names_shapes_and_is_empty_for_a_fit():
    from models.common.errors import state_dict_mismatch

    own = {"a": torch.zeros(2, 3), "b": torch.zeros(4)}
    assert state_dict_mismatch(own, dict(own)) == ""
    assert state_dict_mismatch(own, {"a": torch.zeros(3, 2), "b": torch.zeros(4)}) == \
        "1 of another shape (a 3x2 in the file, 2x3 here)"
