"""Seconds for Gatys style transfer, DeepDream and class visualisation against plain references,
measured in one run, with the final losses of both sides.

References, written the way one would from the tutorials and the lecture:

(a) Gatys: built like the PyTorch neural style tutorial: a Normalization module and the
    network's stages copied into an ``nn.Sequential`` with ContentLoss/StyleLoss modules
    inserted after the loss layers (their targets from a separate model call per loss, the
    style Grams computed once), trimmed after the last loss, fp32 eager, contiguous NCHW,
    ``torch.optim.LBFGS`` with its defaults (history 100) on the image, clamped in the
    closure, run for ``steps`` evaluations (= iterations). The style image is resized to the
    content's size, as there. The loss terms are the library's (``models.losses``, relative
    to their targets, plus total variation) where the tutorial has MSE, so losses compare.
(b) DeepDream: per octave and step a forward to the layer and a backward, a normalised
    gradient step with the same jitter draws, nothing reused.
(c) Class visualisation: the same Fourier image, transforms and Adam as the library's default
    recipe, a plain forward and backward through the whole network each step.
(b) and (c) give the library's results bit for bit when its speed-ups are switched off.

Ours (the library) runs on a copy of the network with BatchNorm folded into the convolutions,
channels_last on a CPU, and for Gatys its own L-BFGS settings (history 50, a scaled first
step, bounds kept by projection). Both sides use the same loss network (efficientnet_lite0
from ``models.backbones``) and the library's default layers and weights
(``visualize.synthesis.synthesis_config``); the final figures are evaluated by one function
for both images. Runs are interleaved (reference, ours, reference, ours ...) after a short
warm-up of each side, and the table shows medians. On CUDA the clock waits for the device.

--max-size runs only the library, coarse to fine (``scales``), doubling the longer side from
--size until the device runs out of memory (or a cap on a CPU). L-BFGS keeps 100 vectors of
the image's size (history 50), which at large sizes outweighs the network's activations.

    python scripts/bench_synthesis.py                  # 512 px, 300 L-BFGS iterations, 3 repeats
    python scripts/bench_synthesis.py --quick          # smoke check, under a minute on 2 CPU cores
    python scripts/bench_synthesis.py --device cuda
    python scripts/bench_synthesis.py --max-size --device cuda   # largest Gatys size before OOM
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from models.backbones import Backbone, load_backbone
from models.common.images import read_rgb, resize_max_side, resize_to, rgb_to_tensor
from models.common.machine import cpu_name
from models.catalogue import SAMPLE_PHOTO, SHIPPED_DIR
from visualize.class_vis import FOURIER_LR, JITTER, TF_DEGREES, TF_SCALE, class_visualization
from visualize.deepdream import deepdream
from models.losses import content_loss, gram, style_loss, tv_loss
from visualize.param import FourierImage
from visualize.style_transfer import style_transfer
from visualize.synthesis import SynthesisConfig, synthesis_config
from visualize.transforms import resize, standard_transforms

STYLE_IMAGE = SHIPPED_DIR / "starry_night.jpg"
BACKBONE = "efficientnet_lite0"
DREAM_LAYER = "block10"  # where the library's docs grew the classic DeepDream patterns
GOLDFISH = 1


# ----------------------------------------------------------------------------- reference: Gatys

class _Normalization(nn.Module):
    """The tutorial's first module: the network's own input normalisation."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.mean, self.std = mean.clone(), std.clone()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return (img - self.mean) / self.std


class _ContentLoss(nn.Module):
    """Transparent module that stores its loss against a fixed target feature."""

    def __init__(self, target: torch.Tensor, weight: float):
        super().__init__()
        self.target, self.weight = target.detach(), weight
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = content_loss({"f": x}, {"f": self.target}, {"f": 1.0}).sum()
        return x


class _StyleLoss(nn.Module):
    """Transparent module that stores its Gram loss against the target's Gram (computed once)."""

    def __init__(self, target_feature: torch.Tensor, weight: float):
        super().__init__()
        self.target, self.weight = gram(target_feature).detach(), weight
        self.loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.loss = style_loss({"f": x}, {"f": self.target}, {"f": 1.0}).sum()
        return x


@dataclass
class _TutorialModel:
    net: nn.Sequential
    content_losses: list[_ContentLoss]
    style_losses: list[_StyleLoss]
    cfg: SynthesisConfig

    def loss(self, img: torch.Tensor) -> torch.Tensor:
        """content_weight * content + style_weight * style + tv_weight * TV: the library's loss."""
        self.net(img)
        c_w = sum(cl.weight for cl in self.content_losses)
        s_w = sum(sl.weight for sl in self.style_losses)
        content = sum(cl.weight * cl.loss for cl in self.content_losses) / c_w
        style = sum(sl.weight * sl.loss for sl in self.style_losses) / s_w
        return (self.cfg.content_weight * content + self.cfg.style_weight * style
                + self.cfg.tv_weight * tv_loss(img).sum())


def _tutorial_model(model: Backbone, content: torch.Tensor, style: torch.Tensor) -> _TutorialModel:
    """get_style_model_and_losses of the tutorial, on the backbone's named stages."""
    cfg = synthesis_config(model)
    s_layers, c_layers = cfg.style_layer_map(), dict.fromkeys(cfg.content_layers, 1.0)
    net = nn.Sequential(_Normalization(model.mean, model.std))
    contents, styles = [], []
    for name, stage in model.stages.items():
        net.add_module(name, stage)
        if name in c_layers:
            loss = _ContentLoss(net(content).detach(), c_layers[name])
            net.add_module(f"content_loss_{name}", loss)
            contents.append(loss)
        if name in s_layers:
            loss = _StyleLoss(net(style).detach(), s_layers[name])
            net.add_module(f"style_loss_{name}", loss)
            styles.append(loss)
        if len(contents) == len(c_layers) and len(styles) == len(s_layers):
            break  # the tutorial trims everything after the last loss module
    return _TutorialModel(net.eval(), contents, styles, cfg)


def reference_style_transfer(model: Backbone, content: torch.Tensor, style: torch.Tensor, steps: int) -> torch.Tensor:
    """run_style_transfer of the tutorial: LBFGS with its defaults, from the content image."""
    tm = _tutorial_model(model, content, style)
    input_img = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([input_img])
    run = [0]
    while run[0] < steps:
        def closure() -> torch.Tensor:
            with torch.no_grad():
                input_img.clamp_(0, 1)
            optimizer.zero_grad()
            loss = tm.loss(input_img)
            loss.backward()
            run[0] += 1
            return loss

        optimizer.step(closure)
    with torch.no_grad():
        input_img.clamp_(0, 1)
    return input_img.detach()


# ----------------------------------------------------------------------------- reference: DeepDream

def reference_deepdream(model: Backbone, image: torch.Tensor, layer: str, octaves: int = 4,
                        octave_scale: float = 1.4, steps: int = 10, lr: float = 0.015, jitter: int = 32,
                        seed: int = 0) -> torch.Tensor:
    """The loop from the lecture: octaves, and per step a jittered forward, backward and
    normalised ascent step; same defaults and random draws as ``visualize.deepdream``."""
    net = nn.Sequential(_Normalization(model.mean, model.std))
    for name, stage in model.stages.items():
        net.add_module(name, stage)
        if name == layer:
            break
    gen = torch.Generator().manual_seed(seed)
    h, w = image.shape[-2:]
    sizes = [(max(min(h, 32), round(h / octave_scale ** i)), max(min(w, 32), round(w / octave_scale ** i)))
             for i in reversed(range(octaves))]
    detail = None
    for size in sizes:
        base = resize(image, size)
        x = base if detail is None else (base + resize(detail, size)).clamp(0, 1)
        for _ in range(steps):
            dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=gen).tolist()
            xj = torch.roll(x, (dy, dx), dims=(2, 3)).detach().requires_grad_(True)
            net(xj).pow(2).mean().backward()
            g = xj.grad
            x = torch.roll(xj.detach() + lr * g / g.abs().mean().clamp_min(1e-8), (-dy, -dx), dims=(2, 3)).clamp(0, 1)
        detail = x - base
    return x


# ----------------------------------------------------------------------------- reference: class vis

def reference_class_vis(model: Backbone, target: int, size: int = 224, steps: int = 200, seed: int = 0) -> torch.Tensor:
    """Gradient ascent on the class logit: Fourier image, Lucid's transforms, Adam; plain loop."""
    device = model.mean.device
    image = FourierImage((size, size), seed=seed, device=device)
    tf = standard_transforms(JITTER, scale=TF_SCALE, degrees=TF_DEGREES)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(image.parameters(), lr=FOURIER_LR)
    for _ in range(steps):
        loss = -model(tf(image(), generator=gen))[0, target]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return image()


# ----------------------------------------------------------------------------- measuring

def machine(device: torch.device) -> str:
    text = (f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"device {device}")
    if device.type == "cuda":
        text += f" ({torch.cuda.get_device_name(device)})"
    return text


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds of this process (all threads) and the result of ``fn()``."""
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, time.process_time() - c0, out


def load_images(side: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The bundled photo at ``side`` px (longer side) and Starry Night resized to its exact size."""
    photo = resize_max_side(read_rgb(SAMPLE_PHOTO), side, enlarge=True)
    style = resize_to(read_rgb(STYLE_IMAGE), photo)
    return rgb_to_tensor(photo).to(device), rgb_to_tensor(style).to(device)


@dataclass
class Case:
    """One method: how to run each side, and the figure that says how well it did."""

    name: str
    setting: str
    reference: Callable[[], torch.Tensor]
    ours: Callable[[], torch.Tensor]
    score: Callable[[torch.Tensor], float]
    score_name: str


def cases(model: Backbone, args: argparse.Namespace, device: torch.device) -> list[Case]:
    content, style = load_images(args.size, device)
    out: list[Case] = []
    if "gatys" in args.methods:
        with torch.no_grad():
            judge = _tutorial_model(model, content, style)

        def gatys_loss(img: torch.Tensor) -> float:
            with torch.no_grad():
                return float(judge.loss(img))

        out.append(Case(
            "gatys", f"{tuple(content.shape[-2:])}, {args.steps} L-BFGS it.",
            lambda: reference_style_transfer(model, content, style, args.steps),
            # the reference's objective (Grams only): the pooled Grams and colour term of our defaults
            # cost 1.8x a step and are not what it optimises
            lambda: style_transfer(model, content, [style], steps=args.steps, channels_last=args.channels_last,
                                   style_scales=(1,), color_weight=0.0).image,
            gatys_loss, "final loss"))
    if "deepdream" in args.methods:
        def dream_score(img: torch.Tensor) -> float:
            with torch.no_grad():
                return float(model.features(img, [args.dream_layer])[args.dream_layer].pow(2).mean())

        out.append(Case(
            "deepdream", f"{tuple(content.shape[-2:])}, {args.dream_layer}, 4 oct. x {args.dream_steps}",
            lambda: reference_deepdream(model, content, args.dream_layer, steps=args.dream_steps),
            lambda: deepdream(model, content, args.dream_layer, steps=args.dream_steps),
            dream_score, "mean act^2"))
    if "classvis" in args.methods:
        def class_score(img: torch.Tensor) -> float:
            with torch.no_grad():
                return float(model(img)[0, GOLDFISH])

        out.append(Case(
            "classvis", f"{args.class_size} px, {args.class_steps} Adam steps",
            lambda: reference_class_vis(model, GOLDFISH, args.class_size, args.class_steps),
            lambda: class_visualization(model, GOLDFISH, size=args.class_size, steps=args.class_steps)[0],
            class_score, "goldfish logit"))
    return out


def compare(model: Backbone, args: argparse.Namespace, device: torch.device) -> None:
    todo = cases(model, args, device)
    # Warm-up (allocator, oneDNN/cuDNN choices): a short run of each side at a small size.
    warm = argparse.Namespace(**{**vars(args), "size": 64, "steps": 2, "dream_steps": 1, "class_size": 64,
                                 "class_steps": 1})
    for case in cases(model, warm, device):
        case.reference(), case.ours()
    wall: dict[str, dict[str, list[float]]] = {c.name: {"reference": [], "ours": []} for c in todo}
    cpu: dict[str, dict[str, list[float]]] = {c.name: {"reference": [], "ours": []} for c in todo}
    scores: dict[str, dict[str, float]] = {c.name: {} for c in todo}
    for r in range(args.repeats):
        for case in todo:
            for side in ("reference", "ours"):
                w, c, img = timed(getattr(case, side), device)
                wall[case.name][side].append(w)
                cpu[case.name][side].append(c)
                scores[case.name][side] = case.score(img)
                print(f"  repeat {r + 1}/{args.repeats} {case.name:9s} {side:9s} {w:7.1f} s ({c:6.1f} CPU s)  "
                      f"{case.score_name} {scores[case.name][side]:.5g}", flush=True)
    on_cpu = device.type == "cpu"
    print()
    print(f"{'method':9s}  {'setting':38s} {'ref s':>7s} {'ours s':>7s} {'x faster':>8s}"
          + (f" {'x (CPU s)':>9s}" if on_cpu else "")
          + f"  {'figure':14s} {'ref':>9s} {'ours':>9s} {'diff':>7s}")
    for case in todo:
        ref, ours = (statistics.median(wall[case.name][k]) for k in ("reference", "ours"))
        ref_c, ours_c = (statistics.median(cpu[case.name][k]) for k in ("reference", "ours"))
        a, b = scores[case.name]["reference"], scores[case.name]["ours"]
        diff = (b - a) / abs(a) * 100 if a else float("nan")
        print(f"{case.name:9s}  {case.setting:38s} {ref:7.1f} {ours:7.1f} {ref / ours:8.2f}"
              + (f" {ref_c / ours_c:9.2f}" if on_cpu else "")
              + f"  {case.score_name:14s} {a:9.5g} {b:9.5g} {diff:+6.1f}%")
    print(f"\nmedians of {args.repeats} interleaved run(s) each side; x faster = reference s / ours s (wall clock)"
          + ("; x (CPU s) = the same in CPU seconds of the process, less hit by other load on shared cores" if on_cpu
             else "") + ".\ndiff = (ours - ref) / ref of the figure on the final images, evaluated alike for both. "
          "Gatys: lower loss is better; DeepDream (the layer's mean squared activation) and class visualisation "
          "(the class logit): higher is stronger.")


# ----------------------------------------------------------------------------- largest size

def _out_of_memory(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)


def max_size(model: Backbone, args: argparse.Namespace, device: torch.device) -> None:
    """Double the Gatys size (library, coarse to fine) until memory runs out or the cap is reached."""
    limit = args.max_side_limit or (2048 if device.type == "cpu" else 65536)
    side, best = args.size, None
    print(f"style_transfer(scales={args.scales}, steps={args.max_size_steps}, optimizer={args.optimizer}), "
          f"doubling from {side} px up to {limit} px")
    peak_name = "GPU peak GiB" if device.type == "cuda" else "RSS peak GiB"
    print(f"{'longer side':>11s} {'H x W':>13s} {'seconds':>8s} {peak_name:>12s}")
    while side <= limit:
        content = style = None
        try:
            content, style = load_images(side, device)
            h, w = content.shape[-2:]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            s, _, _ = timed(lambda: style_transfer(model, content, [style], steps=args.max_size_steps,
                                                   scales=args.scales, optimizer=args.optimizer,
                                                   channels_last=args.channels_last), device)
        except (torch.OutOfMemoryError, RuntimeError) as e:
            if not _out_of_memory(e):
                raise
            print(f"{side:11d} {'':13s} out of memory", flush=True)
            break
        finally:
            content = style = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(device) / 2 ** 30
        else:  # the process's peak so far (Linux reports KiB)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        print(f"{side:11d} {f'{h} x {w}':>13s} {s:8.1f} {peak:12.1f}", flush=True)
        best, side = side, side * 2
    else:
        print(f"stopped at the cap (--max-side-limit {limit})")
    print(f"largest size reached: {best} px (longer side)" if best else "no size fitted")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke check: 128 px, 20 L-BFGS iterations, DeepDream 3 steps per octave, "
                         "class visualisation 128 px x 20 steps, 1 repeat")
    ap.add_argument("--size", type=int, help="longer side of the photo in px (default 512; quick 128)")
    ap.add_argument("--steps", type=int, help="Gatys L-BFGS iterations (default 300; quick 20)")
    ap.add_argument("--dream-steps", type=int, help="DeepDream steps per octave (default 10, the library's)")
    ap.add_argument("--dream-layer", default=DREAM_LAYER, help=f"DeepDream layer (default {DREAM_LAYER})")
    ap.add_argument("--class-size", type=int, help="class visualisation size (default 224, the library's)")
    ap.add_argument("--class-steps", type=int, help="class visualisation steps (default 200, the library's)")
    ap.add_argument("--methods", nargs="+", choices=("gatys", "deepdream", "classvis"),
                    default=["gatys", "deepdream", "classvis"])
    ap.add_argument("--repeats", type=int, help="interleaved runs per side; the median is shown (default 3; quick 1)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                    help="cpu or cuda (default: cuda when present)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto",
                    help="the library's Gatys memory layout (auto: channels_last on a CPU only); try 'on' on a GPU")
    ap.add_argument("--max-size", action="store_true",
                    help="instead: double the Gatys size (library only) until out of memory; report the largest")
    ap.add_argument("--scales", type=int, default=3, help="--max-size: coarse-to-fine scales (default 3)")
    ap.add_argument("--max-size-steps", type=int, default=30, help="--max-size: iterations per size (default 30)")
    ap.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs",
                    help="--max-size: the library's optimizer (L-BFGS keeps 100 image-sized vectors of history)")
    ap.add_argument("--max-side-limit", type=int,
                    help="--max-size: stop doubling past this side (default 2048 on a CPU, none on CUDA)")
    args = ap.parse_args()
    quick = args.quick
    defaults = {"size": 128 if quick else 512, "steps": 20 if quick else 300, "dream_steps": 3 if quick else 10,
                "class_size": 128 if quick else 224, "class_steps": 20 if quick else 200, "repeats": 1 if quick else 3}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = load_backbone(BACKBONE, device=device)
    print(machine(device))
    if args.max_size:
        max_size(model, args, device)
    else:
        compare(model, args, device)


if __name__ == "__main__":
    main()
