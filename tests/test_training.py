"""Training end to end on tiny images: the loss falls, checkpoints resume exactly."""

import dataclasses
import math
import subprocess
import sys

import pytest
import torch

from models.backbones import load_backbone
from models.common.images import rgb_to_tensor, read_rgb, resize_max_side
from models.style_net import StyleNet
from training.checkpoint import load_checkpoint, style_net_from_checkpoint
from training.data import CropDataset
from training.losses import PerceptualLoss, StyleCalibration, default_loss_config, structure_kept
from training.train import TrainSettings, build_training, train, train_step
from models.losses import content_loss, gram, style_loss, tone_loss, tv_loss


def _settings(photos_dir, style_images, out, **kw):
    base = dict(style=[str(style_images[0])], data=str(photos_dir), out=str(out), loss_net="efficientnet_lite0",
                arch="lite", size=48,
                style_size=96, batch=2, steps=4, sample_every=2, checkpoint_every=2, precision="fp32",
                device="cpu", workers=0)
    base.update(kw)
    return TrainSettings(**base)


def _eval_loss(net, style_images, photos_dir):
    bb = load_backbone("efficientnet_lite0")
    styles = [rgb_to_tensor(resize_max_side(read_rgb(p), 96)) for p in style_images]
    crit = PerceptualLoss(bb, default_loss_config("efficientnet_lite0"), styles)
    ds = CropDataset(photos_dir, 48)
    x = torch.stack([ds[(i, 99)] for i in range(len(ds))])
    idx = torch.zeros(len(x), dtype=torch.long)
    with torch.no_grad():
        return float(crit(net(x), x, idx)["total"])


def test_a_few_steps_lower_the_loss(photos_dir, style_images, tmp_path):
    ckpt = train(_settings(photos_dir, style_images, tmp_path, steps=30, checkpoint_every=30, lr=3e-3),
                 progress=False)
    trained = style_net_from_checkpoint(load_checkpoint(ckpt))
    torch.manual_seed(0)
    untrained = StyleNet("lite").eval()
    assert _eval_loss(trained, style_images[:1], photos_dir) < 0.8 * _eval_loss(untrained, style_images[:1], photos_dir)
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [f"step_{s:06d}.png" for s in range(2, 31, 2)]


def test_resume_continues_at_the_saved_step_exactly(photos_dir, style_images, tmp_path):
    # The calibration runs across the interruption (steps 1-2 of 4): its schedule and state are resumed too.
    cal = dict(calibration_start=1, calibration_end=3)
    straight = train(_settings(photos_dir, style_images, tmp_path / "a", steps=4, **cal), progress=False)
    half = train(_settings(photos_dir, style_images, tmp_path / "b", steps=2, **cal), progress=False)
    assert load_checkpoint(half)["step"] == 2
    assert load_checkpoint(half)["calibration"]["measured"]  # stopped in the middle of the calibration
    resumed = train(_settings(photos_dir, style_images, tmp_path / "b", steps=4, resume=True, **cal), progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(resumed)
    assert b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"] == 4
    assert torch.equal(a["style_scale"], b["style_scale"])


def test_conditional_training_holds_every_style(photos_dir, style_images, tmp_path):
    ckpt = load_checkpoint(train(_settings(photos_dir, style_images, tmp_path, style=[str(p) for p in style_images],
                                           steps=24, checkpoint_every=24, lr=5e-3), progress=False))
    assert ckpt["config"]["styles"] == ["stripes", "blobs"]
    net = style_net_from_checkpoint(ckpt)
    assert net.num_styles == 2
    # for each style, the output asked for that style matches its Grams better than the other output does
    bb = load_backbone("efficientnet_lite0")
    cfg = default_loss_config("efficientnet_lite0")
    crit = PerceptualLoss(bb, cfg, [rgb_to_tensor(resize_max_side(read_rgb(p), 96)) for p in style_images])
    ds = CropDataset(photos_dir, 48)
    x = torch.stack([ds[(i, 5)] for i in range(4)])
    with torch.no_grad():
        outs = [net(x, torch.nn.functional.one_hot(torch.full((4,), s), 2).float()) for s in (0, 1)]
        for s in (0, 1):
            own = crit(outs[s], x, torch.full((4,), s))["style"]
            other = crit(outs[1 - s], x, torch.full((4,), s))["style"]
            assert own < other, (s, float(own), float(other))


def test_existing_run_is_not_overwritten_without_resume(photos_dir, style_images, tmp_path):
    train(_settings(photos_dir, style_images, tmp_path, steps=2), progress=False)
    result = subprocess.run([sys.executable, "-m", "training", "train", "--style", str(style_images[0]),
                             "--data", str(photos_dir), "--out", str(tmp_path), "--steps", "2"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "--resume" in result.stderr and "Traceback" not in result.stderr


def test_cli_trains_with_progress_and_clear_errors(photos_dir, style_images, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "training", "train", "--style", str(style_images[0]),
                             "--data", str(photos_dir), "--out", str(out), "--arch", "lite", "--size", "32",
                             "--steps", "3", "--precision", "fp32"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "3/3" in result.stderr and "style=" in result.stderr  # the tqdm bar with running losses
    assert (out / "checkpoint.pt").is_file()
    missing = subprocess.run([sys.executable, "-m", "training", "train", "--style", str(tmp_path / "nope.jpg"),
                              "--data", str(photos_dir), "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith(f"error: {tmp_path / 'nope.jpg'}: no such file")  # and what was expected
    assert missing.stderr.count("\n") == 1


def test_malicious_checkpoint_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"format": "stylelens-checkpoint-1", "x": Evil()}, protocol=2))
    from models.common.errors import InputFileError

    with pytest.raises(InputFileError, match="not a loadable checkpoint"):
        load_checkpoint(path)


def test_resume_refuses_a_different_data_stream(photos_dir, style_images, tmp_path):
    from models.common.errors import UserError

    train(_settings(photos_dir, style_images, tmp_path, steps=2), progress=False)
    with pytest.raises(UserError, match="batch=3"):
        train(_settings(photos_dir, style_images, tmp_path, steps=4, batch=3, resume=True), progress=False)


def test_resume_knows_the_data_folder_by_its_files_not_its_path(photos_dir, style_images, tmp_path):
    """The folder moved: the same batches, so the run goes on. A photo added under the same path:
    every later batch would differ from an uninterrupted run's, so it is refused."""
    import shutil

    from models.common.errors import UserError

    data, out = tmp_path / "data", tmp_path / "run"
    shutil.copytree(photos_dir, data)
    train(_settings(data, style_images, out, steps=2), progress=False)
    moved = tmp_path / "moved"
    data.rename(moved)
    train(_settings(moved, style_images, out, steps=3, resume=True), progress=False)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
    shutil.copy(next(moved.glob("*.jpg")), moved / "zz_added.jpg")
    with pytest.raises(UserError, match="data=.*same paths, other contents"):
        train(_settings(moved, style_images, out, steps=4, resume=True), progress=False)


def test_resume_knows_a_painting_by_its_content_not_the_path_typed(photos_dir, style_images, tmp_path, monkeypatch):
    """A relative path then an absolute one, or the painting moved: the same run goes on. The same
    path holding another picture: refused, since the style targets would change under the run."""
    import shutil

    from models.common.errors import UserError

    monkeypatch.chdir(style_images[0].parent)
    train(_settings(photos_dir, [style_images[0].name], tmp_path, steps=2), progress=False)
    moved = tmp_path / "elsewhere" / "painting.png"
    moved.parent.mkdir()
    shutil.copy(style_images[0], moved)
    names = dict(names=[style_images[0].stem])  # the style keeps its name; only the file moved
    train(_settings(photos_dir, [str(moved)], tmp_path, steps=3, resume=True, **names), progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 3
    shutil.copy(style_images[1], moved)  # edited in place
    with pytest.raises(UserError, match="same paths, other contents"):
        train(_settings(photos_dir, [str(moved)], tmp_path, steps=4, resume=True, **names), progress=False)


def test_cli_choices_match_the_registries():
    from models.backbones import BACKBONES
    from models.style_net import ARCHS
    from training.__main__ import ARCH_CHOICES, LOSS_NETS

    assert set(ARCH_CHOICES) == set(ARCHS) and set(LOSS_NETS) == set(BACKBONES)


def test_two_processes_with_gloo_keep_identical_weights_and_only_rank0_writes(photos_dir, style_images, tmp_path):
    import os
    import socket
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out, weights = tmp_path / "run", tmp_path / "weights"
    weights.mkdir()
    worker = Path(__file__).parent / "helpers" / "ddp_worker.py"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
                        f"--master_port={port}", str(worker), str(photos_dir), str(style_images[0]), str(out),
                        str(weights)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    rank0, rank1 = (torch.load(weights / f"rank{i}.pt", weights_only=True) for i in (0, 1))
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["step"] == 4 and ckpt["config"]["world_size"] == 2
    untrained = StyleNet("lite").state_dict()
    changed = False
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k]), k
        assert torch.equal(rank0[k], ckpt["model"][k]), k
        changed |= rank0[k].shape == untrained[k].shape and not torch.equal(rank0[k], untrained[k])
    assert changed
    # Rank 0 alone wrote: one checkpoint, one set of samples, nothing else in the run folder.
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "samples"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]
    rank1_out = tmp_path / "run_rank1"
    assert not rank1_out.exists() or not any(rank1_out.rglob("*"))


def test_perceptual_loss_matches_the_straightforward_two_pass_loss(style_images):
    # Folded batch norms, channels_last and a content pass without autograd change nothing but rounding.
    bb = load_backbone("efficientnet_lite0")
    cfg = default_loss_config("efficientnet_lite0")
    assert cfg.color_weight > 0  # drawn at random: its own test below; here the rest of the loss
    cfg = dataclasses.replace(cfg, color_weight=0.0)
    style = rgb_to_tensor(resize_max_side(read_rgb(style_images[0]), 96))
    crit = PerceptualLoss(bb, cfg, [style])
    torch.manual_seed(0)
    x = torch.rand(3, 3, 48, 48)
    y = torch.rand(3, 3, 48, 48, requires_grad=True)
    layers = [l for l in bb.layer_names if l in cfg.content_layers or l in cfg.style_layers]
    assert cfg.style_scales == (1, 2)  # the painting's marks also at twice their size
    fy, fx = bb.features(y, layers), bb.features(x, layers)
    style_terms = []
    for f in cfg.style_scales:
        pool = (lambda t: t) if f == 1 else (lambda t, f=f: torch.nn.functional.avg_pool2d(t, f))
        with torch.no_grad():
            grams = {l: gram(v) for l, v in bb.features(pool(style), cfg.style_layers).items()}
        style_terms.append(style_loss(bb.features(pool(y), cfg.style_layers), grams, cfg.style_layers).mean())
    want = (cfg.content_weight * content_loss(fy, fx, cfg.content_layers).mean()
            + cfg.style_weight * sum(style_terms) / len(style_terms) + cfg.tv_weight * tv_loss(y).mean()
            + cfg.tone_weight * tone_loss(y, x).mean())
    assert cfg.tone_weight > 0  # the photo's light and dark, on by default
    (want_grad,) = torch.autograd.grad(want, y)
    got = crit(y, x, torch.zeros(3, dtype=torch.long))["total"]
    (got_grad,) = torch.autograd.grad(got, y)
    assert abs(got.item() - want.item()) <= 1e-5 * abs(want.item())
    assert float((got_grad - want_grad).norm()) <= 1e-4 * float(want_grad.norm())


def test_train_step_updates_and_its_check_can_stop_the_update(photos_dir, style_images):
    settings = _settings(photos_dir, style_images, "unused")
    parts = build_training(settings, torch.device("cpu"))
    batch = torch.stack([CropDataset(photos_dir, 48)[(i, 1)] for i in range(2)])
    idx = torch.zeros(2, dtype=torch.long)
    before = {k: v.clone() for k, v in parts.net.state_dict().items()}

    def refuse(values):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        train_step(parts.net, parts.criterion, parts.opt, batch, idx, parts.bf16, check=refuse)
    assert all(torch.equal(before[k], v) for k, v in parts.net.state_dict().items())
    seen = []
    values = train_step(parts.net, parts.criterion, parts.opt, batch, idx, parts.bf16, check=seen.append)
    assert seen == [values] and set(values) == {"total", "content", "style", "tv", "tone"}
    assert all(isinstance(v, float) for v in values.values())
    assert any(not torch.equal(before[k], v) for k, v in parts.net.state_dict().items())


def test_noise_stability_term_makes_the_output_less_sensitive_to_noise(photos_dir, style_images):
    """Same start, same batches: with the term the network answers small input noise less."""
    batch = torch.stack([CropDataset(photos_dir, 48)[(i, 3)] for i in range(2)])
    idx = torch.zeros(2, dtype=torch.long)
    probe = torch.stack([CropDataset(photos_dir, 48)[(i, 9)] for i in range(4)])
    noise = 0.03 * torch.randn(probe.shape, generator=torch.Generator().manual_seed(5))
    sensitivity = {}
    for weight in (0.0, 1000.0):
        parts = build_training(_settings(photos_dir, style_images, "unused", lr=3e-3), torch.device("cpu"))
        for _ in range(12):
            values = train_step(parts.net, parts.criterion, parts.opt, batch, idx, parts.bf16, stability=(weight, 0.03))
        assert ("stability" in values) == bool(weight)
        parts.net.eval()
        with torch.no_grad():
            sensitivity[weight] = float((parts.net(probe) - parts.net((probe + noise).clamp(0, 1))).pow(2).mean())
    assert sensitivity[1000.0] < 0.7 * sensitivity[0.0], sensitivity


class _FakeCriterion:
    """What StyleCalibration touches of a PerceptualLoss: its per-style scales."""

    def __init__(self, n: int):
        self.style_scale = torch.ones(n)


def test_structure_kept_is_one_for_the_photo_and_falls_as_its_edges_go():
    gen = torch.Generator().manual_seed(0)
    photo = torch.nn.functional.interpolate(torch.rand(2, 3, 12, 12, generator=gen), size=(48, 48), mode="nearest")
    assert structure_kept(photo, photo).tolist() == pytest.approx([1.0, 1.0])
    tinted = (photo * torch.tensor([0.5, 1.0, 0.2])[:, None, None] + 0.2).clamp(0, 1)  # new colours, same edges
    other = torch.nn.functional.interpolate(torch.rand(2, 3, 12, 12, generator=gen), size=(48, 48), mode="nearest")
    assert float(structure_kept(tinted, photo).min()) > 0.8 > 0.3 > float(structure_kept(other, photo).max())


def _calibration_step(cal, step, kept_by_style):
    """Feed the calibration outputs whose structure_kept against the photos is as given per style."""
    gen = torch.Generator().manual_seed(step)
    photo = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=gen), size=(32, 32), mode="nearest")
    noise = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8, generator=gen), size=(32, 32), mode="nearest")
    idx = torch.tensor([0, 0, 1, 1])
    out = torch.stack([photo[i] if kept_by_style[int(idx[i])] else noise[i] for i in range(4)])
    cal.update(step, out, photo, idx)


def test_style_calibration_moves_each_style_toward_the_structure_target_then_freezes():
    crit = _FakeCriterion(2)
    cal = StyleCalibration(crit, target=0.6, start=2, steps=50, style_factor=2.0)
    kept = {0: True, 1: False}  # style 0 keeps the whole photo (too little style), style 1 none of it
    for step in range(2):  # warm-up: untouched
        _calibration_step(cal, step, kept)
    assert crit.style_scale.tolist() == [1.0, 1.0]
    for step in range(2, 52):
        _calibration_step(cal, step, kept)
    up, down = crit.style_scale.tolist()
    assert up > 2.0 * 1.5 and down < 2.0 / 1.5  # moved, then the strength (2x) applied once at the end
    assert cal.measured[0] > 0.9 and cal.measured[1] < 0.3
    frozen = crit.style_scale.clone()
    for step in range(52, 60):
        _calibration_step(cal, step, kept)
    assert torch.equal(crit.style_scale, frozen)
    with pytest.raises(ValueError, match="target"):
        StyleCalibration(crit, target=0.0, start=0, steps=1)


def test_default_training_calibrates_the_style_weight_and_keeps_the_terms_in_balance(photos_dir, style_images,
                                                                                       tmp_path):
    # Defaults (no style weight given): the calibration sets the weight; both terms stay finite,
    # and neither swamps the other in the total.
    s = _settings(photos_dir, style_images, tmp_path / "run", steps=30, sample_every=30, checkpoint_every=30)
    assert 0 < s.structure_target < 1 and s.style_weight is None
    parts = build_training(s, torch.device("cpu"))
    cal = StyleCalibration.for_run(parts.criterion, s.steps, s.structure_target)
    assert 0 < cal.start < cal.end <= s.steps
    ds = CropDataset(photos_dir, s.size)
    gen = torch.Generator().manual_seed(0)
    last = None
    for step in range(s.steps):
        batch = torch.stack([ds[(int(i), step)] for i in torch.randint(len(ds), (s.batch,), generator=gen)])
        last = train_step(parts.net, parts.criterion, parts.opt, batch, torch.zeros(s.batch, dtype=torch.long),
                          False, calibration=cal, step=step)
    scale = float(parts.criterion.style_scale[0])
    assert scale != 1.0 and math.isfinite(scale)
    cfg = parts.criterion.config
    weighted_content = cfg.content_weight * last["content"]
    weighted_style = cfg.style_weight * scale * last["style"]
    assert math.isfinite(weighted_content) and math.isfinite(weighted_style)
    assert 0.05 < weighted_style / weighted_content < 20


def test_checkpoint_keeps_the_calibrated_style_weight(photos_dir, style_images, tmp_path):
    s = _settings(photos_dir, style_images, tmp_path / "run", steps=20, sample_every=20, checkpoint_every=20)
    ckpt = load_checkpoint(train(s, progress=False))
    used = ckpt["config"]["style_weights_used"]["stripes"]
    assert used == pytest.approx(10.0 * float(ckpt["style_scale"][0]))
    assert used != 10.0  # the calibration ran (steps 2-9 of 20)


def test_resume_from_a_checkpoint_whose_weights_do_not_fit_names_the_keys(photos_dir, style_images, tmp_path):
    from models.common.errors import UserError
    from training.checkpoint import save_checkpoint

    out = tmp_path / "run"
    path = train(_settings(photos_dir, style_images, out, steps=2), progress=False)
    ckpt = load_checkpoint(path)
    ckpt["model"]["enc.0.norm.running_mean"] = torch.zeros(16)  # as an old example's instance norms had
    save_checkpoint({k: v for k, v in ckpt.items() if k != "format"}, path)
    with pytest.raises(UserError, match=r"cannot resume.*1 unexpected \(enc\.0\.norm\.running_mean\)"):
        train(_settings(photos_dir, style_images, out, steps=4, resume=True), progress=False)


def test_the_exported_model_records_the_calibrated_style_weight(photos_dir, style_images, tmp_path):
    import json

    import onnx

    from training.export import export_checkpoint

    ckpt_path = train(_settings(photos_dir, style_images, tmp_path / "run", steps=10, checkpoint_every=10,
                                sample_every=10), progress=False)
    path, _ = export_checkpoint(ckpt_path, tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    recorded = json.loads(meta["stylelens.training"])["style_weights_used"]
    assert recorded == load_checkpoint(ckpt_path)["config"]["style_weights_used"]


def test_calibration_lasts_until_the_last_fifth_and_moves_the_weights_of_several_styles_more_slowly():
    # A style of a five-style network is in about a fifth of the samples, so its outputs follow its
    # weight about five times more slowly: each change is smaller.
    one = StyleCalibration.for_run(_FakeCriterion(1), 3000, 0.55)
    five_crit = _FakeCriterion(5)
    five = StyleCalibration.for_run(five_crit, 3000, 0.55, num_styles=5)
    assert (one.start, one.end) == (100, 2400)  # until the last fifth of the run
    assert (five.start, five.end) == (100, 2400)
    for step in range(100, 110):  # every style far from the target: each moves at most max_change/5
        _calibration_step(five, step, {k: False for k in range(5)})
    assert five_crit.style_scale[0] < 1 and five_crit.style_scale.min().item() >= math.exp(-10 * 0.03 / 5) - 1e-6


def test_tone_weight_adds_the_tone_term_to_the_loss_and_is_recorded(photos_dir, style_images, tmp_path):
    seen: list[dict[str, float]] = []
    ckpt = train(_settings(photos_dir, style_images, tmp_path, steps=2), progress=False,  # on by default
                 on_step=lambda step, total, values: seen.append(values))
    assert len(seen) == 2 and all(0.0 <= v["tone"] <= 2.0 for v in seen)
    assert load_checkpoint(ckpt)["config"]["loss"]["tone_weight"] == 1.0
    plain: list[dict[str, float]] = []
    train(_settings(photos_dir, style_images, tmp_path / "plain", steps=1, tone_weight=0.0), progress=False,
          on_step=lambda step, total, values: plain.append(values))
    assert "tone" not in plain[0]  # off: the term costs nothing then


def test_the_sample_sheet_shows_a_whole_photo_at_twice_the_training_size(tmp_path):
    # A crop at the training size blew one object up to the size of the painting's marks; the
    # sample is the first readable photo, whole, its longer side twice the crop size.
    import numpy as np

    from models.common.images import write_rgb
    from training.samples import sample_image

    (tmp_path / "a_broken.jpg").write_bytes(b"not an image")
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 60, (20, 30, 3)), 0, 255).astype(np.uint8).repeat(10, 0).repeat(10, 1)
    write_rgb(tmp_path / "b_photo.png", photo)  # 200 x 300
    with pytest.warns(UserWarning, match="a_broken.jpg"):
        x = sample_image(sorted(tmp_path.iterdir()), 64)
    assert tuple(x.shape) == (1, 3, 85, 128)
    assert torch.allclose(x, rgb_to_tensor(resize_max_side(photo, 128)))
    x = sample_image([tmp_path / "b_photo.png"], 256)  # a photo under twice the size is enlarged
    assert tuple(x.shape) == (1, 3, 341, 512)
    assert abs(float(x.mean()) - photo.mean() / 255) < 0.01
