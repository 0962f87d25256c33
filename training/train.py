"""Fast style training (Johnson et al. 2016), one style or many (conditional instance norm).

``train(settings)`` is what ``python -m training train`` runs. It runs on a CPU, one
GPU, or several under ``torchrun --nproc_per_node=N`` (DistributedDataParallel:
every rank trains on its own share of each global batch; rank 0 alone writes
checkpoints and samples). Sampling is a function of the step (``training.data``),
so ``resume`` continues exactly where the last checkpoint left off.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.backbones import default_loss_network, load_backbone
from models.common.errors import UserError, load_strictly
from models.common.files import file_digest
from models.common.images import read_rgb, resize_max_side, rgb_to_tensor
from models.common.machine import cpu_flags
from models.common.malloc import keep_freed_memory
from models.style_net import StyleNet, arch_config
from training.checkpoint import CHECKPOINT_NAME, NonFiniteWeights, load_checkpoint, save_checkpoint
from training.data import CropDataset, StepSampler, files_fingerprint
from training.losses import LossConfig, PerceptualLoss, StyleCalibration, default_loss_config
from training.samples import sample_image, write_samples
from training.settings import _NOT_RECORDED, TrainSettings, check_resume_compatible, settings_to_resume, style_names


class TrainingDiverged(UserError):
    """The loss, the gradients or the weights became NaN or infinite; the last good checkpoint is kept."""


MAX_SKIPPED_IN_A_ROW = 10  # steps with gradients that are not finite, skipped one after another, before the run stops


def _cpu_has_amx() -> bool:
    return "amx_bf16" in cpu_flags()


def _use_bf16(precision: str, device: torch.device) -> bool:
    if precision == "bf16":
        return True
    if precision == "fp32":
        return False
    if device.type == "cuda":  # emulated bf16 (before Ampere) is slower than fp32
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return _cpu_has_amx()


def _setup_distributed(device_arg: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device); starts the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and device_arg in ("auto", "cuda")
    if device_arg == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but no CUDA device is available")
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
        rank, local = dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(device)
        return rank, world, device
    return 0, 1, torch.device("cuda" if cuda else "cpu")


@dataclass
class TrainingParts:
    """What a training step works on, built by :func:`build_training`."""

    net: StyleNet
    criterion: PerceptualLoss
    opt: torch.optim.Optimizer
    bf16: bool
    weights_source: str = ""  # where the loss network's weights came from, in words


def build_training(s: TrainSettings, device: torch.device, loss: dict | None = None) -> TrainingParts:
    """Seed, then the loss network with the Grams of each style image, the style network
    (one style per image) and its optimizer.

    On CUDA the style network is channels_last (the loss network always is); on a CPU,
    freed memory is kept for the next step (:func:`models.common.malloc.keep_freed_memory`).
    """
    if device.type == "cpu":
        keep_freed_memory()
    if s.loss_net == "auto":  # the name the run is recorded and resumed with
        s.loss_net = default_loss_network()
    torch.manual_seed(s.seed)
    style_size = s.style_size or 2 * s.size
    style_tensors = [rgb_to_tensor(resize_max_side(read_rgb(p, max_side=style_size), style_size)).to(device)
                     for p in s.style]
    backbone = load_backbone(s.loss_net, s.loss_net_weights, device=device)
    absolute_style = None if s.structure_target > 0 else s.style_weight
    if loss is not None:  # a resumed run: the loss its checkpoint records (training.settings.settings_to_resume)
        loss_cfg = LossConfig.from_dict(loss)
    else:
        loss_cfg = default_loss_config(s.loss_net).with_overrides(s.content_weight, absolute_style, s.tv_weight,
                                                                  s.tone_weight)
    criterion = PerceptualLoss(backbone, loss_cfg, style_tensors)
    source = backbone.weights_source
    del backbone  # the criterion holds its own folded copy
    net = StyleNet(arch_config(s.arch), num_styles=len(s.style)).to(device)
    if device.type == "cuda":  # on CPUs channels_last made the style network slower
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    return TrainingParts(net, criterion, opt, _use_bf16(s.precision, device), source)


def train_step(model: torch.nn.Module, criterion: PerceptualLoss, opt: torch.optim.Optimizer,
               batch: torch.Tensor, style_index: torch.Tensor, bf16: bool,
               check: Callable[[dict[str, float]], None] | None = None,
               stability: tuple[float, float] = (0.0, 0.0),
               calibration: StyleCalibration | None = None, step: int = 0) -> dict[str, float]:
    """One optimisation step on a batch of photos (any device; moved to ``style_index``'s).

    Returns the loss values (``total``, ``content``, ``style``, ``tv``, and ``stability``
    when on). ``check(values)`` runs after the backward pass and before the update, and
    may raise to stop it. Gradients that are not all finite skip the update (``skipped`` is
    then in the values): the weights and the optimizer's state stay finite. ``calibration`` (with the step number) sees the outputs and photos
    after the update.

    ``stability = (weight, noise)`` adds the noise-stability term of Gupta et al. 2017: the
    output for each photo and for the same photo plus Gaussian noise should agree, which
    steadies video, where consecutive frames differ by sensor noise. Both go through the
    network as one batch (instance norm keeps them apart; one forward for DDP).
    """
    device = style_index.device
    x = batch.to(device, non_blocking=True)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    n = criterion.num_styles
    weights = F.one_hot(style_index, n).float() if n > 1 else None
    stability_weight, noise = stability
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        if stability_weight:
            noisy = (x + noise * torch.randn_like(x)).clamp(0, 1)
            both = model(torch.cat([x, noisy]), None if weights is None else torch.cat([weights, weights]))
            y, y_noisy = both.chunk(2)
        else:
            y = model(x, weights)
        losses = criterion(y, x, style_index)
        if stability_weight:
            losses["stability"] = F.mse_loss(y_noisy.float(), y.float())
            losses["total"] = losses["total"] + stability_weight * losses["stability"]
    opt.zero_grad(set_to_none=True)
    losses["total"].backward()
    # One device-to-host copy for all the values and whether every gradient is finite: a finite loss
    # can still have NaN gradients (a 0/0 in a backward), and one update with them makes every weight NaN.
    grads = [q.grad for group in opt.param_groups for q in group["params"] if q.grad is not None]
    finite = torch.stack([torch.isfinite(g).all() for g in grads]).all().float() if grads else torch.ones(())
    numbers = torch.stack([*(v.detach().float() for v in losses.values()), finite.to(x.device)]).tolist()
    values = dict(zip(losses, numbers[:-1]))
    if check is not None:
        check(values)
    if not numbers[-1]:  # the update is skipped: the weights and the optimizer's moments stay as they were
        opt.zero_grad(set_to_none=True)
        values["skipped"] = 1.0
        return values
    opt.step()
    if calibration is not None:
        calibration.update(step, y.detach(), x, style_index)
    return values


def train(settings: TrainSettings, progress: bool = True,
          on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> Path:
    """Train a style network; returns the path of the final checkpoint.

    ``on_step(done, total, running_losses)`` is called on rank 0 after each step (and after
    that step's sample and checkpoint are written): the panel's progress; it may raise to stop.
    """
    rank, world, device = _setup_distributed(settings.device)
    try:
        return _train(settings, rank, world, device, progress, on_step)
    finally:
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(s: TrainSettings, rank: int, world: int, device: torch.device, progress: bool,
           on_step: Callable[[int, int, dict[str, float]], None] | None = None) -> Path:
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --out must be a folder, and this is a file")
    if (out / CHECKPOINT_NAME).exists() and not s.resume:
        raise UserError(f"{out / CHECKPOINT_NAME} exists: pass --resume to continue that run, or choose another --out")
    run = _Run(s, rank, world, device)
    if not run.resume():
        return run.ckpt_path
    return run.loop(progress, on_step)


class _Run:
    """One training run: its parts, the record kept in each checkpoint, resuming, and the loop."""

    def __init__(self, s: TrainSettings, rank: int, world: int, device: torch.device):
        self.s, self.rank, self.world, self.device = s, rank, world, device
        self.out = Path(s.out)
        self.ckpt_path = self.out / CHECKPOINT_NAME
        self.names = style_names(s)
        self._ckpt, loss, self.notes = None, None, []
        if s.resume and self.ckpt_path.exists():  # go on with the settings the checkpoint records
            self._ckpt = load_checkpoint(self.ckpt_path)
            s, loss, self.notes = settings_to_resume(s, self._ckpt["config"], self.ckpt_path)
            self.s = s
        self.parts = build_training(s, device, loss)
        self.dataset = CropDataset(s.data, s.size)
        self.config = {
            "arch": s.arch, "net": arch_config(s.arch).to_dict(), "styles": self.names, "loss_net": s.loss_net,
            "loss_net_weights": self.parts.weights_source,
            "loss": self.parts.criterion.config.to_dict(), "style_images": [str(p) for p in s.style],
            "style_sha256": [file_digest(p) for p in s.style],
            "data_files": files_fingerprint(s.data, self.dataset.files),
            "settings": {k: v for k, v in asdict(s).items() if k not in _NOT_RECORDED},
            "precision": "bf16" if self.parts.bf16 else "fp32", "world_size": world,
        }
        self.calibration = self._calibration()
        self.start, self.saved_rng = 0, None
        self.skipped_steps = self.skipped_in_a_row = 0  # steps skipped for gradients that were not finite

    def _calibration(self) -> StyleCalibration | None:
        s, n, criterion = self.s, len(self.names), self.parts.criterion
        if s.structure_target <= 0:
            return None
        calibration = StyleCalibration.for_run(criterion, s.steps, s.structure_target, s.style_factor, n)
        if s.calibration_start is None and s.calibration_end is None:
            return calibration
        start = s.calibration_start if s.calibration_start is not None else calibration.start
        end = s.calibration_end if s.calibration_end is not None else calibration.end
        return StyleCalibration(criterion, s.structure_target, start, max(1, end - start), s.style_factor,
                                num_styles=n)

    def resume(self) -> bool:
        """Load the checkpoint of a ``--resume``d run; False when it has nothing left to do."""
        s, net, opt, criterion = self.s, self.parts.net, self.parts.opt, self.parts.criterion
        if self._ckpt is not None:
            ckpt = self._ckpt
            check_resume_compatible(ckpt["config"], self.config, self.ckpt_path)
            load_strictly(net, ckpt["model"], self.ckpt_path, "cannot resume: its weights do not fit this network")
            opt.load_state_dict(ckpt["optimizer"])
            if "style_scale" in ckpt:
                criterion.style_scale.copy_(ckpt["style_scale"])
            saved = ckpt.get("calibration")
            if self.calibration is not None and saved:  # the schedule it started with, and where it stood
                self.calibration = StyleCalibration(criterion, s.structure_target, saved["start"], saved["steps"],
                                                    self.calibration.style_factor, num_styles=len(self.names))
                self.calibration.measured = {int(k): float(v) for k, v in saved["measured"].items()}
            for group in opt.param_groups:  # a --lr given now applies from here on
                group["lr"] = s.lr
            self.saved_rng = ckpt["rng"]  # restored once the data loader has drawn its own seed (see loop)
            self.start = int(ckpt["step"])
            self.config["wall_seconds_before"] = float(ckpt["config"].get("wall_seconds", 0.0))
            if self.rank == 0:
                recorded = f", with the settings it records ({', '.join(self.notes)})" if self.notes else ""
                print(f"resuming {self.ckpt_path} at step {self.start} of {s.steps}{recorded}", file=sys.stderr)
        elif s.resume and self.rank == 0:
            print(f"--resume: no checkpoint in {self.out} yet, starting from step 0", file=sys.stderr)
        if self.start >= s.steps:
            if self.rank == 0:
                print(f"{self.ckpt_path} is already at step {self.start} of {s.steps}: nothing to do", file=sys.stderr)
            return False
        return True

    def state(self, step: int, wall: float) -> dict:
        """What a checkpoint holds after ``step`` steps and ``wall`` seconds of this process."""
        criterion, calibration, device = self.parts.criterion, self.calibration, self.device
        self.config["wall_seconds"] = self.config.get("wall_seconds_before", 0.0) + wall
        # The style weight each style trained with (the calibrated one where calibrated).
        self.config["style_weights_used"] = dict(zip(self.names, (criterion.config.style_weight
                                                                  * criterion.style_scale.cpu()).tolist()))
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}
        calibrated = None if calibration is None else {
            "start": calibration.start, "steps": calibration.steps,
            "measured": {str(k): v for k, v in calibration.measured.items()}}
        return {"step": step, "model": self.parts.net.state_dict(), "optimizer": self.parts.opt.state_dict(),
                "rng": rng, "style_scale": criterion.style_scale.detach().cpu().clone(), "calibration": calibrated,
                "config": self.config}

    def check_finite(self, values: dict[str, float], step: int) -> None:
        finite = math.isfinite(values["total"])
        if self.world > 1:  # every rank must agree, or rank 0 would step on gradients already poisoned by another
            flag = torch.tensor([0.0 if finite else 1.0], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            finite = flag.item() == 0.0
        if not finite:
            raise TrainingDiverged(
                f"loss became {values['total']} at step {step + 1}; stopped. The last good checkpoint "
                f"({self.ckpt_path}) is kept: try a lower --lr or --style-weight")

    def skip(self, step: int, bar) -> None:
        """A step whose gradients were not finite was skipped (weights kept); too many in a row stop the run."""
        self.skipped_in_a_row += 1
        self.skipped_steps += 1
        if self.rank == 0 and self.skipped_steps <= 3:
            bar.write(f"warning: step {step + 1}: the gradients are NaN or infinite; the step is skipped, the "
                      f"weights are kept", file=sys.stderr)
        if self.skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW:
            raise TrainingDiverged(
                f"the gradients were NaN or infinite for {self.skipped_in_a_row} steps in a row, up to step "
                f"{step + 1}; stopped. The last good checkpoint ({self.ckpt_path}) is kept: try a lower --lr "
                f"or --style-weight")

    def _batches(self, sampler: StepSampler):
        s, device = self.s, self.device
        workers = s.workers if s.workers is not None else (4 if device.type == "cuda" else 0)
        loader = DataLoader(self.dataset, batch_sampler=sampler, num_workers=workers,
                            pin_memory=device.type == "cuda", persistent_workers=False)
        # Making the loader's iterator draws from the global generator; so the random numbers of the
        # steps (the colour term's pixel samples, the stability noise) match an uninterrupted run,
        # a resumed run restores the saved state after that draw.
        batches = iter(loader)
        if self.saved_rng is not None:
            torch.set_rng_state(self.saved_rng["torch"])
            if device.type == "cuda" and self.saved_rng.get("cuda") is not None:
                torch.cuda.set_rng_state(self.saved_rng["cuda"], device)
        return batches

    def loop(self, progress: bool, on_step: Callable[[int, int, dict[str, float]], None] | None) -> Path:
        """Train from :attr:`start` to the last step; samples, checkpoints and ``on_step`` on rank 0."""
        s, rank, device, n = self.s, self.rank, self.device, len(self.names)
        net, criterion, calibration = self.parts.net, self.parts.criterion, self.calibration
        sampler = StepSampler(len(self.dataset), s.batch, s.steps, s.seed, self.start, rank, self.world)
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None) \
            if self.world > 1 else net
        photo = sample_image(self.dataset.files, s.size).to(device) if rank == 0 else None
        if rank == 0:
            print(f"loss network {s.loss_net}: {self.parts.weights_source}", file=sys.stderr)
        t0 = time.perf_counter()
        bar = tqdm(total=s.steps, initial=self.start, disable=not progress or rank != 0, unit="step",
                   dynamic_ncols=True, desc="training")
        running: dict[str, float] = {}
        step = self.start
        net.train()
        for step, batch in zip(range(self.start, s.steps), self._batches(sampler)):
            style_index = torch.tensor([p % n for p in sampler.positions(step)], device=device)
            values = train_step(model, criterion, self.parts.opt, batch, style_index, self.parts.bf16,
                                check=lambda v, step=step: self.check_finite(v, step),
                                stability=(s.stability_weight, s.stability_noise),
                                calibration=calibration, step=step)
            if values.pop("skipped", 0.0):
                self.skip(step, bar)
            else:
                self.skipped_in_a_row = 0
                for k, v in values.items():  # exponential moving averages for the progress bar
                    running[k] = 0.9 * running.get(k, v) + 0.1 * v
            if calibration is not None:  # the style weight in use (mean over styles), what it holds
                running["sw"] = criterion.config.style_weight * float(criterion.style_scale.mean())
                if calibration.measured:
                    running["kept"] = sum(calibration.measured.values()) / len(calibration.measured)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()}, refresh=False)
            done = step + 1
            if rank == 0 and (done % s.sample_every == 0 or done == s.steps):
                write_samples(net, photo, n, self.out / "samples" / f"step_{done:06d}.png")
            if rank == 0 and (done % s.checkpoint_every == 0 or done == s.steps):
                try:
                    save_checkpoint(self.state(done, time.perf_counter() - t0), self.ckpt_path)
                except NonFiniteWeights as e:  # never saved: the previous checkpoint stays
                    raise TrainingDiverged(str(e)) from None
            if rank == 0 and on_step is not None:
                on_step(done, s.steps, dict(running))
        bar.close()
        if self.world > 1:
            dist.barrier()
        if rank == 0 and step + 1 >= s.steps and running:
            summary = ", ".join(f"{k} {v:.4g}" for k, v in running.items())
            skipped = (f"; {self.skipped_steps} step{'s' * (self.skipped_steps != 1)} skipped (gradients NaN or "
                       f"infinite)" if self.skipped_steps else "")
            print(f"done: {s.steps} steps, {time.perf_counter() - t0:.0f} s; losses {summary}{skipped}; "
                  f"checkpoint {self.ckpt_path}", file=sys.stderr)
        return self.ckpt_path
