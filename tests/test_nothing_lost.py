"""Issue 25, "Nothing lost and nothing silent": a user's file is never damaged, work is never lost or cut
short with exit code 0, and every refusal is one line that names the file.

One test (or a few) per case of the issue, each on small inputs made here (tests/helpers/damaged.py).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.helpers.bad_files import photo
from tests.helpers.clips import make_clip
from tests.helpers.damaged import clip_with_sound, corrupt_jpeg, damaged_avi, decoded, noise_clip


def stylelens(*args, cwd=None, timeout=300, preexec_fn=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylelens", *map(os.fsdecode, args)], capture_output=True,
                          text=True, errors="replace", timeout=timeout, cwd=cwd, preexec_fn=preexec_fn)


def one_error_line(r: subprocess.CompletedProcess, *pieces: str) -> str:
    """The run ended with exit code 2 and one ``error:`` line holding every piece, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    for piece in pieces:
        assert piece in errors[0], errors[0]
    return errors[0]


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# 1. A damaged frame ---------------------------------------------------------------------------------

def test_a_damaged_frame_is_skipped_and_counted_and_the_rest_keeps_its_time_and_sound(tmp_path):
    clip = damaged_avi(tmp_path / "damaged.avi")  # 30 frames at 10 FPS, frame 12 zeroed, 3 s of sound
    out = tmp_path / "out.mkv"
    r = stylelens("render", clip, "--effect", "none", "--out", out, "--codec", "ffv1")
    assert r.returncode == 0, r.stderr
    assert "skipped 1 damaged frame" in r.stdout + r.stderr
    got = decoded(out)
    assert got["frames"] == 29
    assert got["times"][12] == pytest.approx(1.3, abs=1e-3)  # the frames after the damaged one keep their time
    assert got["video_end"] == pytest.approx(3.0, abs=0.11)
    assert got["audio_ends"][0] == pytest.approx(got["video_end"], abs=0.11)  # sound and video end together


def test_the_summary_counts_damaged_frames_for_scripts(tmp_path):
    import json

    clip = damaged_avi(tmp_path / "damaged.avi", frames=12, bad=(3, 7), sound=1.2)
    r = stylelens("render", clip, "--effect", "none", "--out", tmp_path / "o.mkv", "--codec", "ffv1", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["skipped_frames"] == 2 and summary["frames_out"] == 10


# 2. The output is an input --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", [i / 10 for i in range(20)], sound=2.0)


@pytest.mark.parametrize("how", ["same", "dot", "absolute", "symlink", "hardlink"])
def test_render_refuses_to_write_over_its_input(clip, tmp_path, how):
    work = tmp_path / "w"
    work.mkdir()
    shutil.copy(clip, work / "clip.mp4")
    before = digest(work / "clip.mp4")
    out = {"same": "clip.mp4", "dot": "./clip.mp4", "absolute": str(work / "clip.mp4"), "symlink": "link.mp4",
           "hardlink": "hard.mp4"}[how]
    if how == "symlink":
        (work / "link.mp4").symlink_to(work / "clip.mp4")
    if how == "hardlink":
        os.link(work / "clip.mp4", work / "hard.mp4")
    r = stylelens("render", "clip.mp4", "--effect", "none", "--out", out, cwd=work)
    one_error_line(r, Path(out).name, "is the input")
    assert digest(work / "clip.mp4") == before


def test_every_verb_that_writes_refuses_an_output_that_is_one_of_its_inputs(clip, tmp_path):
    from models import catalogue

    shutil.copy(clip, tmp_path / "clip.mp4")
    cv2.imwrite(str(tmp_path / "photo.png"), photo())
    (tmp_path / "link.png").symlink_to(tmp_path / "photo.png")
    model = tmp_path / "mine.onnx"
    shutil.copy(catalogue.model_path(), model)
    files = {p: digest(p) for p in (tmp_path / "clip.mp4", tmp_path / "photo.png", model)}
    cases = [
        (("live", "--source", tmp_path / "clip.mp4", "--no-window", "--effect", "none",
          "--out", tmp_path / "clip.mp4"), "clip.mp4"),
        (("render", tmp_path / "clip.mp4", "--model", model, "--out", model.with_suffix(".mp4")), None),
        (("stylize", tmp_path / "photo.png", "--out", tmp_path / "link.png"), "link.png"),
        (("stylize", tmp_path / "photo.png", "--model", model, "--out", tmp_path / "./photo.png"), "photo.png"),
        (("styles", "--photo", tmp_path / "photo.png", "--sheet", tmp_path / "link.png"), "link.png"),
    ]
    for args, named in cases:
        r = stylelens(*args)
        if named is None:  # a model's name with another suffix is not the model
            assert r.returncode == 0, r.stderr
            continue
        one_error_line(r, named, "is the input")
    for path, before in files.items():
        assert digest(path) == before, path


# 3. Sound the output container cannot hold as it is -------------------------------------------------

@pytest.mark.parametrize("source,out", [(("libvpx-vp9", "libopus", "vp9_opus.webm"), "x.mov"),
                                        (("libx264", "flac", "h264_flac.mkv"), "y.mov"),
                                        (("libx264", "libopus", "h264_opus.mkv"), "w.avi")])
def test_sound_the_output_cannot_hold_is_re_encoded_after_trying_the_muxer(tmp_path, source, out):
    video, audio, name = source
    clip = clip_with_sound(tmp_path / name, video, audio)
    r = stylelens("render", clip, "--effect", "none", "--out", tmp_path / out)
    assert r.returncode == 0, r.stderr
    assert "re-encoded" in r.stderr
    got = decoded(tmp_path / out)
    assert got["frames"] == 10 and len(got["audio_ends"]) == 1
    assert got["audio_ends"][0] == pytest.approx(1.0, abs=0.05)


# 4. Stream metadata -----------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_two_sound_tracks_keep_their_language_title_and_the_creation_time(tmp_path, suffix):
    clip = clip_with_sound(tmp_path / "two_tracks.mkv", "libx264", "aac", tracks=2, languages=["eng", "fra"],
                           titles=["English", "Français"], creation_time="2024-05-01T10:20:30.000000Z")
    out = tmp_path / f"out{suffix}"
    r = stylelens("render", clip, "--effect", "none", "--out", out)
    assert r.returncode == 0, r.stderr
    got = decoded(out)
    sound = [meta for kind, meta in got["streams"] if kind == "audio"]
    assert [m.get("language") for m in sound] == ["eng", "fra"]
    assert [m.get("title", m.get("handler_name")) for m in sound] == ["English", "Français"]
    assert got["container"].get("creation_time", "").startswith("2024-05-01T10:20:30")


# 7. A full disk -----------------------------------------------------------------------------------------

def _file_limit(kib: int):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (kib * 1024, kib * 1024))
    return limit


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_full_disk_during_a_render_is_one_line_and_leaves_a_playable_file(tmp_path, suffix):
    clip = noise_clip(tmp_path / "clip.mp4")  # about 1.5 MB of video
    out = tmp_path / f"full{suffix}"
    r = stylelens("render", clip, "--effect", "none", "--out", out, preexec_fn=_file_limit(400))
    one_error_line(r, f"full{suffix}", "full")
    got = decoded(out)  # opens, and every frame in it decodes
    assert 2 <= got["frames"] < 40
    assert out.stat().st_size <= 400 * 1024


# 10. A corrupt JPEG -------------------------------------------------------------------------------------

def test_a_corrupt_jpeg_is_refused_at_the_door(tmp_path):
    from models.common.errors import InputFileError
    from models.common.images import read_rgb

    for seed, raw in ((1, True), (2, True), (3, False)):
        bad = corrupt_jpeg(tmp_path / f"c{seed}.jpg", cv2.resize(photo(), (256, 192)), seed=seed, markers=raw)
        with pytest.raises(InputFileError, match="damaged"):
            read_rgb(bad)
    bad = corrupt_jpeg(tmp_path / "c.jpg", cv2.resize(photo(), (256, 192)))
    r = stylelens("stylize", bad, "--out", tmp_path / "o.png")
    one_error_line(r, "c.jpg", "damaged")
    assert not (tmp_path / "o.png").exists()
    # a whole JPEG, and one with bytes after its end marker (as some cameras write), still read
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), photo())
    assert read_rgb(good).shape == (96, 128, 3)
    (tmp_path / "tail.jpg").write_bytes(good.read_bytes() + b"\0" * 64)
    assert read_rgb(tmp_path / "tail.jpg").shape == (96, 128, 3)


# 12. Guards that block what the user asked for ----------------------------------------------------------

def test_a_70_megapixel_jpeg_with_max_size_is_shrunk_while_it_is_read(tmp_path):
    big = tmp_path / "big.jpg"
    h, w = 6840, 10240  # 70 megapixels, over the 67 of the guard
    picture = np.zeros((h, w, 3), np.uint8)
    picture[:, : w // 2] = (40, 120, 200)
    picture[h // 3:, :] //= 2
    assert cv2.imwrite(str(big), picture, [cv2.IMWRITE_JPEG_QUALITY, 50])
    del picture
    out = tmp_path / "small.png"
    r = stylelens("stylize", big, "--max-size", "1024", "--out", out, "--model", "starry_night_tiny")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(out)).shape[:2] == (684, 1024)
    r = stylelens("stylize", big, "--out", out)  # no shrink asked for: the guard holds, and says how
    one_error_line(r, "big.jpg", "too large", "--max-size")


def test_a_flat_dark_texture_stays_flat_and_dark():
    import torch

    from models.backbones import load_backbone
    from visualize.synthesis import texture_synthesis

    model = load_backbone("efficientnet_lite0")
    dark = torch.zeros(1, 3, 48, 48)
    result = texture_synthesis(model, dark, steps=20)
    assert float(result.image.mean()) < 0.05 and float(result.image.std()) < 0.05
    grey = torch.full((1, 3, 48, 48), 0.8)
    assert abs(float(texture_synthesis(model, grey, steps=20).image.mean()) - 0.8) < 0.05


# 11. Tiny inputs, for every model input path and every method -------------------------------------------

TINY = [(1, 1), (2, 3), (5, 3)]  # (width, height)


@pytest.fixture(scope="module")
def tiny_pictures(tmp_path_factory) -> dict[tuple[int, int], Path]:
    folder = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    out = {}
    for w, h in TINY:
        sub = folder / f"{w}x{h}"
        sub.mkdir()
        path = sub / "p.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        out[(w, h)] = path
    return out


@pytest.mark.parametrize("size", TINY, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_shipped_network_on_either_engine_takes_tiny_pictures(size):
    from models import catalogue
    from models.inference.backends import load_style_model, openvino_available

    w, h = size
    rgb = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    for entry in catalogue.shipped():
        for backend in ("onnxruntime", "openvino") if openvino_available() else ("onnxruntime",):
            model = load_style_model(entry.path, backend, ["CPUExecutionProvider"])
            out = model.stylize(rgb, model.styles[-1])
            assert out.shape == rgb.shape, (entry.name, backend)


@pytest.mark.parametrize("size", TINY, ids=lambda s: f"{s[0]}x{s[1]}")
def test_tiny_pictures_through_stylize_and_render(tiny_pictures, tmp_path, size):
    picture = tiny_pictures[size]
    r = stylelens("stylize", picture, "--model", "composition_vii_c32", "--out", tmp_path / "o.png")
    assert r.returncode == 0, r.stderr
    assert cv2.imread(str(tmp_path / "o.png")).shape[:2] == size[::-1]
    for backend in ("onnxruntime", "openvino"):
        r = stylelens("render", picture.parent, "--out", tmp_path / f"o_{backend}.mp4", "--backend", backend)
        assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def backbone():
    from models.backbones import load_backbone

    return load_backbone("efficientnet_lite0")


@pytest.mark.parametrize("size", TINY, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_method_takes_tiny_pictures(backbone, size):
    import torch

    from visualize import activations, attribution, deepdream, fooling, inversion, neighbours, occlusion
    from visualize.style_transfer import style_transfer
    from visualize.synthesis import texture_synthesis

    w, h = size
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    layer = backbone.layer_names[2]
    runs = {
        "saliency": lambda: attribution.saliency(backbone, x),
        "smoothgrad": lambda: attribution.saliency(backbone, x, smooth_samples=2, seed=0),
        "guided": lambda: attribution.guided_backprop(backbone, x),
        "guided unit": lambda: attribution.guided_backprop(backbone, x, layer=layer),
        "grad-cam": lambda: attribution.grad_cam(backbone, x),
        "occlusion": lambda: occlusion.occlusion(backbone, x, size=1, stride=1),
        "activations": lambda: activations.activation_maps(backbone, x, layer),
        "deepdream": lambda: deepdream.deepdream(backbone, x, layer, octaves=3),
        "fooling": lambda: fooling.fooling_image(backbone, x, 3, max_steps=2),
        "inversion": lambda: inversion.invert_features(backbone, x, layer, steps=2),
        "neighbours": lambda: neighbours.nearest_neighbours(backbone, x, torch.rand(3, 3, h, w), k=2),
        "texture": lambda: texture_synthesis(backbone, x, steps=2),
        "gatys": lambda: style_transfer(backbone, x, [x], steps=2),
        "gatys, 3 scales, a 5x3 style": lambda: style_transfer(backbone, x, [torch.rand(1, 3, 3, 5)], steps=3,
                                                                scales=3),
    }
    failed = {}
    for name, run in runs.items():
        try:
            run()
        except Exception as e:  # noqa: BLE001 - every method is tried, and every failure named
            failed[name] = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
    assert not failed


def test_a_flat_style_image_gives_losses_of_the_usual_size(backbone):
    import torch

    from models.losses import color_distribution_loss, image_pixels
    from visualize.style_transfer import style_transfer

    photo_t = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert float(color_distribution_loss(photo_t, image_pixels(flat))) < 50  # 1.2e5 when divided by 1e-6
    flat_run = style_transfer(backbone, photo_t, [flat], steps=0)
    busy_run = style_transfer(backbone, photo_t, [torch.rand(1, 3, 32, 32)], steps=0)
    assert flat_run.initial.total < 200 * busy_run.initial.total


# 5. A file name that is not UTF-8 -------------------------------------------------------------------------

LATIN1_NAME = os.fsdecode(b"mod\xe8le.onnx")  # 'mod\udce8le.onnx': bytes of an old Latin-1 file system


def make_checkpoint(path: Path, nan: bool = False, arch: str = "tiny") -> Path:
    """A checkpoint of an untrained network, as training writes them (``nan``: one weight is NaN)."""
    import torch

    from models.style_net import StyleNet, arch_config
    from training.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = StyleNet(arch)
    state = net.state_dict()
    if nan:
        state["out.weight"][0, 0, 0, 0] = float("nan")
    config = {"arch": arch, "net": arch_config(arch).to_dict(), "styles": ["mine"], "loss_net": "efficientnet_lite0",
              "settings": {"style": ["mine.jpg"], "data": "photos", "size": 64, "batch": 1, "lr": 1e-3}}
    import io

    buffer = io.BytesIO()  # written as save_checkpoint would, without its checks (the old code had none)
    torch.save({"format": "stylelens-checkpoint-1", "step": 1, "model": state, "config": config}, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    assert save_checkpoint  # the writer of real runs
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A checkpoint exported to a file whose name is not UTF-8."""
    folder = tmp_path_factory.mktemp("latin1")
    ckpt = make_checkpoint(folder / "run" / "checkpoint.pt")
    out = folder / LATIN1_NAME
    r = stylelens("export", ckpt, "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def test_export_writes_and_checks_a_model_whose_name_is_not_utf8(exported):
    assert exported.is_file() and exported.stat().st_size > 1000


def test_a_model_whose_name_is_not_utf8_runs_on_every_path(exported, tmp_path):
    from models.inference.backends import load_style_model, openvino_available
    from models.inference.onnx_style import OnnxStyleModel

    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    assert OnnxStyleModel(exported).stylize(rgb).shape == rgb.shape
    if openvino_available():
        assert load_style_model(exported, "openvino").stylize(rgb).shape == rgb.shape
    cv2.imwrite(str(tmp_path / "p.png"), photo())
    r = stylelens("stylize", tmp_path / "p.png", "--model", exported, "--out", tmp_path / "o.png")
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "frames"
    folder.mkdir()
    shutil.copy(tmp_path / "p.png", folder / "a.png")
    for backend in ("onnxruntime", "openvino"):
        r = stylelens("render", folder, "--model", exported, "--backend", backend, "--out", tmp_path / f"{backend}.mp4")
        assert r.returncode == 0, r.stderr


def test_the_int8_copy_of_a_model_whose_name_is_not_utf8_in_a_cache_whose_name_is_not_either(exported, tmp_path,
                                                                                               monkeypatch):
    # int8 is forced: quantizing needs no VNNI, so this runs on every CPU (auto picks int8 only with VNNI)
    from models.inference.backends import load_style_model
    from models.inference.precision import int8_path

    cache = tmp_path / os.fsdecode(b"cach\xe9")
    monkeypatch.setenv("STYLELENS_CACHE_DIR", str(cache))
    rgb = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    out = load_style_model(exported, "onnxruntime-int8").stylize(rgb)
    assert out.shape == rgb.shape
    assert int8_path(exported).is_file() and int8_path(exported).parent.parent == cache
    assert [p.name for p in int8_path(exported).parent.iterdir()] == [int8_path(exported).name]  # no leftovers


# 6. NaN weights ------------------------------------------------------------------------------------------

def _train_settings(photos_dir, style_images, out, **kw):
    from training.settings import TrainSettings

    base = dict(style=[str(style_images[0])], data=str(photos_dir), out=str(out), arch="tiny", size=32,
                loss_net="efficientnet_lite0",
                style_size=64, batch=1, steps=4, sample_every=100, checkpoint_every=2, precision="fp32",
                device="cpu", workers=0)
    base.update(kw)
    return TrainSettings(**base)


def _poison_gradients(monkeypatch, at_steps):
    """From the network's next build on, its output layer's gradient is NaN at the given steps (counted
    from 1), the loss staying finite: as a 0/0 in a backward pass does."""
    import torch

    import training.train as train_module

    real = train_module.build_training

    def build(*args, **kwargs):
        parts = real(*args, **kwargs)
        calls = {"n": 0}

        def poison(grad):
            calls["n"] += 1
            return grad * float("nan") if calls["n"] in at_steps else grad
        parts.net.out.weight.register_hook(poison)
        return parts
    monkeypatch.setattr(train_module, "build_training", build)
    return torch


def test_a_nan_gradient_skips_its_step_and_no_nan_weight_is_ever_saved(photos_dir, style_images, tmp_path,
                                                                       monkeypatch, capsys):
    import torch

    from training.checkpoint import load_checkpoint
    from training.train import train

    _poison_gradients(monkeypatch, at_steps={2})
    ckpt = train(_train_settings(photos_dir, style_images, tmp_path / "run"), progress=False)
    err = capsys.readouterr().err
    assert "step 2: the gradients are NaN or infinite; the step is skipped" in err
    assert "1 step skipped" in err
    state = load_checkpoint(ckpt)
    assert state["step"] == 4
    assert all(bool(torch.isfinite(v).all()) for v in state["model"].values() if v.is_floating_point())


def test_nan_gradients_step_after_step_stop_the_run_naming_the_step(photos_dir, style_images, tmp_path, monkeypatch):
    from training.checkpoint import load_checkpoint
    from training.train import TrainingDiverged, train

    _poison_gradients(monkeypatch, at_steps=set(range(3, 100)))
    with pytest.raises(TrainingDiverged, match=r"for 10 steps in a row, up to step 12; stopped"):
        train(_train_settings(photos_dir, style_images, tmp_path / "run", steps=20), progress=False)
    kept = load_checkpoint(tmp_path / "run" / "checkpoint.pt")  # the last one written: skipped steps kept its weights
    assert kept["step"] == 10


def test_every_verb_that_loads_weights_refuses_nan_ones(photos_dir, style_images, exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    from training.checkpoint import NonFiniteWeights, save_checkpoint

    bad_ckpt = make_checkpoint(tmp_path / "run" / "checkpoint.pt", nan=True)
    one_error_line(stylelens("export", bad_ckpt, "--out", tmp_path / "x.onnx"), "checkpoint.pt", "NaN")
    assert not (tmp_path / "x.onnx").exists()
    r = stylelens("train", "--style", style_images[0], "--data", photos_dir, "--out", tmp_path / "run", "--resume",
                  "--arch", "tiny", "--size", "32", "--steps", "3", "--no-progress", "--loss-net", "efficientnet_lite0")
    one_error_line(r, "checkpoint.pt", "NaN")
    with pytest.raises(NonFiniteWeights):  # and training never writes one
        import torch

        save_checkpoint({"step": 3, "model": {"w": torch.tensor([float("nan")])}}, tmp_path / "never.pt")
    assert not (tmp_path / "never.pt").exists()

    model = onnx.load_from_string(exported.read_bytes())
    weight = next(i for i in model.graph.initializer if i.dims and numpy_helper.to_array(i).size > 8)
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] = np.nan
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    nan_model = tmp_path / "nan.onnx"
    onnx.save(model, str(nan_model))
    (tmp_path / "frames").mkdir()
    cv2.imwrite(str(tmp_path / "frames" / "p.png"), photo())
    one_error_line(stylelens("stylize", tmp_path / "frames" / "p.png", "--model", nan_model, "--out", tmp_path / "o.png"),
                   "nan.onnx", "NaN")
    assert not (tmp_path / "o.png").exists()
    for backend in ("onnxruntime", "openvino"):
        r = stylelens("render", tmp_path / "frames", "--model", nan_model, "--backend", backend,
                      "--out", tmp_path / "o.mp4")
        one_error_line(r, "nan.onnx", "NaN")


# 9. A checkpoint from an older version --------------------------------------------------------------------

def _as_before_the_colour_and_tone_terms(ckpt_path: Path) -> None:
    """Rewrite a checkpoint as one written before the colour and tone terms, the pooled Grams and the
    calibration existed: their settings are not recorded at all."""
    import torch

    ckpt = torch.load(ckpt_path, weights_only=True)
    for key in ("color_weight", "tone_weight", "style_scales"):
        ckpt["config"]["loss"].pop(key)
    for key in ("structure_target", "calibration_start", "calibration_end", "tone_weight", "style_factor"):
        ckpt["config"]["settings"].pop(key, None)
    for key in ("calibration", "style_scale"):
        ckpt.pop(key, None)
    ckpt["config"].pop("style_weights_used", None)
    torch.save(ckpt, ckpt_path)


def test_an_old_checkpoint_resumes_with_the_settings_it_records(photos_dir, style_images, tmp_path, capsys):
    from training.checkpoint import load_checkpoint
    from training.train import train

    run = tmp_path / "old"
    train(_train_settings(photos_dir, style_images, run, steps=2, structure_target=0.0, style_weight=10.0,
                          tone_weight=0.0), progress=False)
    _as_before_the_colour_and_tone_terms(run / "checkpoint.pt")
    capsys.readouterr()
    train(_train_settings(photos_dir, style_images, run, steps=4, resume=True), progress=False)  # today's defaults
    assert "with the settings it records (the colour term off, the tone term off, no calibration)" \
        in capsys.readouterr().err
    resumed = load_checkpoint(run / "checkpoint.pt")
    loss, settings = resumed["config"]["loss"], resumed["config"]["settings"]
    assert resumed["step"] == 4
    assert loss["color_weight"] == 0 and loss["tone_weight"] == 0 and loss["style_scales"] == [1]
    assert loss["style_weight"] == 10.0 and settings["structure_target"] == 0 and resumed["calibration"] is None


def test_resuming_an_old_checkpoint_with_other_settings_is_refused_in_one_line(photos_dir, style_images, tmp_path):
    from training.train import train

    run = tmp_path / "old"
    train(_train_settings(photos_dir, style_images, run, steps=2, structure_target=0.0, style_weight=10.0,
                          tone_weight=0.0), progress=False)
    _as_before_the_colour_and_tone_terms(run / "checkpoint.pt")
    common = ("train", "--style", style_images[0], "--data", photos_dir, "--out", run, "--resume", "--arch", "tiny",
              "--size", "32", "--style-size", "64", "--batch", "1", "--steps", "3", "--no-progress",
              "--precision", "fp32", "--device", "cpu")
    one_error_line(stylelens(*common, "--tone-weight", "1"), "checkpoint.pt", "--tone-weight 1",
                   "trained with 0 (it was trained before this term)")
    one_error_line(stylelens(*common, "--structure-target", "0.55"), "--structure-target 0.55",
                   "before the calibration")
    r = stylelens(*common)
    assert r.returncode == 0, r.stderr


# 8. Two users of the page at once -------------------------------------------------------------------------

def test_concurrent_requests_of_different_methods_give_what_each_gives_alone(tmp_path_factory):
    pytest.importorskip("gradio_client")
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    from tests.helpers.panel_io import output_image, write_chelsea
    from tests.helpers.panel_server import panel_process

    cat = handle_file(str(write_chelsea(tmp_path_factory.mktemp("cat"))))
    tiny = tmp_path_factory.mktemp("tiny") / "tiny.png"
    cv2.imwrite(str(tiny), np.random.default_rng(0).integers(0, 256, (3, 2, 3), dtype=np.uint8))
    requests = {  # user A: guided beside plain backprop, and Grad-CAM; user B: saliency, plain and SmoothGrad
        "guided": (("efficientnet_lite0", cat, "285: Egyptian cat", None, None), "/guided"),
        "saliency": (("efficientnet_lite0", cat, "", 0), "/saliency"),
        "smoothgrad": (("efficientnet_lite0", cat, "", 2), "/saliency"),
    }
    with panel_process(tmp_path_factory.mktemp("panel")) as panel:
        clients = [Client(panel.url, verbose=False, download_files=str(tmp_path_factory.mktemp(f"d{i}")))
                   for i in range(len(requests))]

        def ask(client, name):
            args, api = requests[name]
            result = client.predict(*args, api_name=api)
            return [output_image(r) for r in result if not isinstance(r, str) or Path(r).is_file()]

        alone = {name: ask(clients[0], name) for name in requests}
        styled = output_image(clients[0].predict(handle_file(str(tiny)), "starry_night_lite", "", api_name="/fast_style"))
        assert styled.shape == (3, 2, 3)  # 11: a tiny picture through the page's fast style
        with ThreadPoolExecutor(len(requests)) as pool:
            for _ in range(3):
                futures = {name: pool.submit(ask, client, name) for client, name in zip(clients, requests)}
                for name, future in futures.items():
                    got = future.result()
                    for a, b in zip(alone[name], got):
                        assert np.abs(a.astype(int) - b).max() <= 1, name


# Rough edges: paths checked at the door, in words that say what the path is --------------------------------

DOORS = [  # (arguments, what the one line says); {dir} a folder, {img} a photo, {ckpt} a checkpoint, {clip} a video
    (("train", "--style", "{dir}", "--data", "{dir}", "--out", "{tmp}/r"), "is a folder, expected an image file"),
    (("train", "--style", "{img}", "--data", "{img}", "--out", "{tmp}/r"), "is a file, expected a folder of photos"),
    (("train", "--style", "{tmp}/gone.jpg", "--data", "{dir}", "--out", "{tmp}/r"), "gone.jpg: no such file"),
    (("train", "--style", "{img}", "--data", "{dir}", "--out", "{img}"), "--out must be a folder"),
    (("export", "{ckpt}", "--out", "{dir}"), "is a folder, expected an .onnx file name"),
    (("export", "{dir}", "--out", "{tmp}/x.onnx"), "is a folder without a checkpoint.pt"),
    (("export", "{ckpt}", "--out", "{ckpt}"), "is the input"),
    (("stylize", "{img}", "--model", "{dir}", "--out", "{tmp}/o.png"), "is a folder"),
    (("render", "{clip}", "--out", "{dir}"), "is a folder, expected a video file name"),
]


@pytest.mark.parametrize("args,says", DOORS, ids=[f"{a[0]}-{i}" for i, (a, _) in enumerate(DOORS)])
def test_every_path_is_checked_at_the_door_before_any_heavy_import(clip, tmp_path, args, says):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    cv2.imwrite(str(folder / "sub" / "p.png"), photo())
    img = tmp_path / "photo.png"
    cv2.imwrite(str(img), photo())
    ckpt = tmp_path / "run" / "checkpoint.pt"
    ckpt.parent.mkdir()
    ckpt.write_bytes(b"PK\x03\x04 not really")
    given = [a.format(dir=folder, img=img, ckpt=ckpt, clip=clip, tmp=tmp_path) for a in args]
    code = ("import sys; from stylelens.cli import main; code = main(sys.argv[1:]); "
            "print('torch loaded' if 'torch' in sys.modules else 'no torch', file=sys.stderr); sys.exit(code)")
    r = subprocess.run([sys.executable, "-c", code, *given], capture_output=True, text=True, timeout=120)
    assert r.stderr.splitlines()[-1] == "no torch", r.stderr
    r.stderr = "\n".join(r.stderr.splitlines()[:-1])
    one_error_line(r, says)


def test_a_file_that_is_not_a_checkpoint_is_named_without_torchs_unsafe_advice(tmp_path):
    cv2.imwrite(str(tmp_path / "notes.jpg"), photo())
    line = one_error_line(stylelens("export", tmp_path / "notes.jpg", "--out", tmp_path / "x.onnx"), "notes.jpg",
                          "not a PyTorch checkpoint", "JPEG picture")
    assert "weights_only" not in line


def test_stylize_and_render_both_create_a_missing_output_folder(clip, tmp_path):
    cv2.imwrite(str(tmp_path / "p.png"), photo())
    r = stylelens("stylize", tmp_path / "p.png", "--out", tmp_path / "new" / "x.png")
    assert r.returncode == 0, r.stderr
    r = stylelens("render", clip, "--effect", "none", "--out", tmp_path / "newer" / "deeper" / "x.mp4")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new" / "x.png").is_file() and (tmp_path / "newer" / "deeper" / "x.mp4").is_file()
