"""Training speed, peak memory and loss curve of this project's loop against a reference, in one run.

(a) reference: a loop built like PyTorch's fast_neural_style example: fp32, eager, NCHW;
    the loss network runs twice per step, over the stylised batch and over the content
    batch (every tapped layer for both), the Grams of the stylised features are computed
    the straightforward way (``models.losses``), the style Grams once before the loop;
    ``.item()`` of every loss term each step, as the example logs them.
(b) ours: the project's own code, not a copy: ``training.train.build_training`` builds the
    pieces and ``training.train.train_step`` runs each step, exactly as ``python -m training
    train`` does (the loss network with its batch norms folded, in channels_last; the
    content batch through it without autograd and only to the deepest content layer;
    on CUDA bf16 autocast and a channels_last style network; bf16 on CPUs with AMX).
(c) a twin of (a) whose initial weights are moved by a rounding-sized amount (x (1 + 1e-6 n),
    n ~ N(0, 1)): the noise floor. Adam turns rounding differences into step-sized ones in
    the first steps, so two loops that differ only in rounding end a few percent apart
    tens of steps later (measured: +-3.5% at step 16, ``johnson``, 128 px, batch 4); a
    difference between (a) and (b) means something only when it is well above the twin's. The twin's speed against (a) shows the
    timing noise of the run. Left out with ``--quick`` or ``--no-twin``.
(d) with ``--compile``: (b) with the style network (``net``) or both networks (``all``)
    wrapped in ``torch.compile``; its compile time is reported apart from its speed.

Both use the same style network (``--arch``), the same loss network (``--loss-net``:
efficientnet_lite0 unless told, the light one; ``train``'s own default, auto, takes vgg16 where
its weights are at hand, so give ``--loss-net vgg16`` to time what training does then), the same style image, the same seed (hence the same initial
weights, checked) and the same batches (``training.data``), the same learning rate and
number of steps. Each loop runs in its own process, so peak memory is its own: on CUDA
``torch.cuda.max_memory_allocated``; on a CPU the growth of the resident set from just
before the first step to its peak after the warm-up steps (VmHWM, reset through
/proc/self/clear_refs; ``ru_maxrss`` where that is unavailable). The processes take turns
(chunks of steps: reference, ours, reference, ours ...), never run at once, and the
figures are medians over steps, so noise on a shared machine hits both alike. Data
loading is not timed (it is the same for both). The processes run with
OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise: threads that spin while
waiting cost several times their work on shared cores.

    python scripts/bench_train.py                     # CPU: lite, 256 px, batch 4, 40 steps
    python scripts/bench_train.py --quick             # smoke check, under a minute
    python scripts/bench_train.py --device cuda --arch johnson --compile all
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path("/work/shared/data/bsds500")
LOSS_NET = "efficientnet_lite0"  # this bench's default of --loss-net (not training's auto)
LR = 1e-3  # the training CLI's default, and the example's
TERMS = ("total", "content", "style", "tv")
TWIN_NOISE = 1e-6  # relative change of the twin's initial weights: the size of fp32 rounding
AGREE_FLOOR = 0.02  # differences below 2% count as noise even when the twin happened to land closer


# ---------------------------------------------------------------- worker side (one per loop)

def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux 4.0+); False where not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _max_rss_kib() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB on Linux


class _Memory:
    """Peak memory of the training steps of this process."""

    def __init__(self, device):
        import torch

        self.device = device
        self.cuda = device.type == "cuda"
        if self.cuda:
            torch.cuda.synchronize(device)
        self.base_kib = None if self.cuda else (_proc_status_kib("VmRSS") or _max_rss_kib())
        self.how = "max_memory_allocated" if self.cuda else "RSS growth"

    def after_warmup(self) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not _reset_peak_rss():
            self.how = "RSS growth (ru_maxrss: may include setup)"

    def peak_mib(self) -> float | None:
        import torch

        if self.cuda:
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = _proc_status_kib("VmHWM") or _max_rss_kib()
        if peak is None or self.base_kib is None:
            return None
        return (peak - self.base_kib) / 1024


def _build_reference(cfg: dict, device):
    """The reference loop: the fast_neural_style example's structure on this project's networks and loss terms."""
    import torch

    from models.backbones import load_backbone
    from models.common.images import read_rgb, resize_max_side, rgb_to_tensor
    from models.style_net import StyleNet
    from training.losses import default_loss_config
    from models.losses import content_loss, gram, style_loss, tv_loss

    torch.manual_seed(cfg["seed"])  # seed, loss network, style network: the order of build_training
    style = rgb_to_tensor(resize_max_side(read_rgb(cfg["style"]), 2 * cfg["size"])).to(device)
    backbone = load_backbone(cfg["loss_net"], device=device)
    loss_cfg = default_loss_config(cfg["loss_net"])
    layers = [l for l in backbone.layer_names if l in loss_cfg.content_layers or l in loss_cfg.style_layers]
    with torch.no_grad():
        style_grams = {l: gram(f) for l, f in backbone.features(style, loss_cfg.style_layers).items()}
    net = StyleNet(cfg["arch"]).to(device).train()
    if cfg["variant"] == "twin":
        g = torch.Generator(device=device).manual_seed(cfg["seed"] + 1)
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(1 + TWIN_NOISE * torch.randn(p.shape, generator=g, device=device))
    opt = torch.optim.Adam(net.parameters(), lr=LR)

    def step(batch, style_index) -> dict[str, float]:
        x = batch.to(device)
        opt.zero_grad()
        y = net(x)
        features_y = backbone.features(y, layers)
        features_x = backbone.features(x, layers)
        c = content_loss(features_y, features_x, loss_cfg.content_layers).mean()
        s = style_loss(features_y, style_grams, loss_cfg.style_layers).mean()
        t = tv_loss(y).mean()
        total = loss_cfg.content_weight * c + loss_cfg.style_weight * s + loss_cfg.tv_weight * t
        total.backward()
        opt.step()
        return {"total": total.item(), "content": c.item(), "style": s.item(), "tv": t.item()}

    return step, net, "fp32"


def _build_ours(cfg: dict, device):
    """The project's own pieces and step function (``training.train``)."""
    import torch

    from training.train import TrainSettings, build_training, train_step

    settings = TrainSettings(style=[cfg["style"]], data=cfg["data"], out="", loss_net=cfg["loss_net"], arch=cfg["arch"],
                             size=cfg["size"], batch=cfg["batch"], steps=cfg["steps"], lr=LR, seed=cfg["seed"],
                             device=device.type, precision=cfg["precision"])
    parts = build_training(settings, device)
    model, criterion = parts.net, parts.criterion
    if cfg["variant"] == "compiled":
        model = torch.compile(parts.net, mode=cfg["compile_mode"])
        if cfg["compile"] == "all":
            criterion = torch.compile(parts.criterion, mode=cfg["compile_mode"])
    parts.net.train()

    def step(batch, style_index) -> dict[str, float]:
        return train_step(model, criterion, parts.opt, batch, style_index, parts.bf16)

    return step, parts.net, "bf16" if parts.bf16 else "fp32"


def _worker(cfg: dict) -> None:
    """Build one loop, then run the chunks of steps the parent asks for; answers are JSON lines."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the answers
    import torch

    from training.data import CropDataset, StepSampler

    device = torch.device(cfg["device"])
    t0 = time.perf_counter()
    build = _build_reference if cfg["variant"] in ("reference", "twin") else _build_ours
    step, net, precision = build(cfg, device)
    dataset = CropDataset(cfg["data"], cfg["size"])
    sampler = StepSampler(len(dataset), cfg["batch"], cfg["steps"], cfg["seed"])
    batches = [torch.stack([dataset[k] for k in keys]) for keys in sampler]
    if device.type == "cuda":
        batches = [b.pin_memory() for b in batches]  # as the training DataLoader does on CUDA
    style_index = torch.zeros(cfg["batch"], dtype=torch.long, device=device)
    checksum = float(sum(p.detach().double().sum() for p in net.parameters()))
    memory = _Memory(device)
    print(json.dumps({"ready": time.perf_counter() - t0, "init_checksum": checksum, "precision": precision,
                      "threads": torch.get_num_threads(), "compile": f"{cfg['compile']}, {cfg['compile_mode']}"}),
          file=proto)
    done = 0
    for line in sys.stdin:
        command = line.split()
        if command[0] == "run":
            times, cpu, losses = [], [], []
            for _ in range(int(command[1])):
                t, c = time.perf_counter(), time.process_time()
                values = step(batches[done], style_index)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
                losses.append(values)
                done += 1
            if done == cfg["warmup"]:
                memory.after_warmup()
            print(json.dumps({"times": times, "cpu": cpu, "losses": losses}), file=proto)
        elif command[0] == "end":
            print(json.dumps({"peak_mib": memory.peak_mib(), "memory": memory.how}), file=proto)
            return


# ---------------------------------------------------------------- parent side

class _Loop:
    """A worker process running one variant, answering one JSON line per command."""

    def __init__(self, variant: str, cfg: dict, env: dict):
        self.variant = variant
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker-config", json.dumps({**cfg, "variant": variant})],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.first_step = 0.0
        self.losses: list[dict[str, float]] = []
        self.info = self._answer()

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            sys.exit(f"error: the {self.variant} process ended unexpectedly (see its messages above)")
        return json.loads(line)

    def run(self, steps: int, timed: bool) -> float:
        self.proc.stdin.write(f"run {steps}\n")
        self.proc.stdin.flush()
        answer = self._answer()
        if not self.losses:
            self.first_step = answer["times"][0]
        self.losses += answer["losses"]
        if timed:
            self.times += answer["times"]
            self.cpu += answer["cpu"]
        return statistics.median(answer["times"])

    def end(self) -> dict:
        self.proc.stdin.write("end\n")
        self.proc.stdin.flush()
        answer = self._answer()
        self.proc.wait(timeout=60)
        return answer


def _machine(device: str) -> str:
    import torch

    from models.common.machine import cpu_name

    cpu = f"{cpu_name()}, {os.cpu_count()} logical cores"
    gpu = f"; GPU {torch.cuda.get_device_name(0)}" if device == "cuda" else ""
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}{gpu}; {system}; Python {platform.python_version()}; torch {torch.__version__}"


def _resolve_data(arg: str | None, tmp: str) -> tuple[str, str]:
    """(folder, description): --data, else the shared BSDS500 photos, else crops of the bundled photo."""
    from models.catalogue import SAMPLE_PHOTO
    from training.data import find_images

    if arg:
        return arg, f"{arg} ({len(find_images(arg))} images)"
    if DEFAULT_DATA.is_dir():
        return str(DEFAULT_DATA), f"{DEFAULT_DATA} ({len(find_images(DEFAULT_DATA))} images)"
    shutil.copy(SAMPLE_PHOTO, Path(tmp) / SAMPLE_PHOTO.name)
    return tmp, f"random crops of the bundled {SAMPLE_PHOTO.name} ({DEFAULT_DATA} not found; --data to choose)"


def _parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="where both loops train (auto: CUDA when available)")
    ap.add_argument("--arch", choices=("lite", "johnson"),
                    help="style network (default: lite on a CPU, johnson on CUDA)")
    ap.add_argument("--size", type=int, help="training crop size in pixels (default 256; --quick 128)")
    ap.add_argument("--batch", type=int, help="images per step (default 4; --quick 2)")
    ap.add_argument("--steps", type=int,
                    help="steps per loop, warm-up included (default: 40 on a CPU, 200 on CUDA; --quick 8)")
    ap.add_argument("--warmup", type=int, help="first steps left out of the timing (default: 3 on a CPU, 10 on CUDA)")
    ap.add_argument("--chunk", type=int, help="steps a loop runs before the other takes its turn (default 5)")
    ap.add_argument("--data", help=f"folder of training photos (default: {DEFAULT_DATA} when present, "
                                   "else crops of the bundled chicago.jpg)")
    ap.add_argument("--style", help="style image (default: the bundled starry_night.jpg)")
    ap.add_argument("--loss-net", default=LOSS_NET, choices=("efficientnet_lite0", "vgg16"),
                    help=f"loss network of every loop (default {LOSS_NET}; vgg16 needs its weights at hand, "
                         "see `stylelens info`)")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                    help="precision of ours, as `train --precision` (auto: bf16 on GPUs with native bf16 and on CPUs with AMX); "
                         "the reference is always fp32, so with bf16 the loss curve shows what bf16 changes")
    ap.add_argument("--seed", type=int, default=0, help="seed of the initial weights and of the batches")
    ap.add_argument("--compile", choices=("net", "all"),
                    help="also time ours with torch.compile on the style network (net) or on both networks (all)")
    ap.add_argument("--compile-mode", choices=("default", "reduce-overhead", "max-autotune"), default="default",
                    help="torch.compile mode for --compile (reduce-overhead: CUDA graphs)")
    ap.add_argument("--no-twin", action="store_true",
                    help="leave out the reference's twin that measures the noise floor of the loss curve")
    ap.add_argument("--quick", action="store_true", help="a smoke check in under a minute (small, few steps)")
    ap.add_argument("--worker-config", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def _fmt_mib(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} MiB"


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    if args.worker_config:
        _worker(json.loads(args.worker_config))
        return
    import torch

    from models.catalogue import SHIPPED_DIR

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda asked for, but no CUDA device is available")
    device = "cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()) else "cpu"
    cuda = device == "cuda"
    size = args.size or (128 if args.quick else 256)
    batch = args.batch or (2 if args.quick else 4)
    steps = args.steps or (8 if args.quick else (200 if cuda else 40))
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else (10 if cuda else 3))
    chunk = args.chunk or (2 if args.quick else 5)
    if not 0 < warmup < steps or min(size, batch, chunk) < 1 or size < 32:
        sys.exit("error: need 0 < --warmup < --steps, --size >= 32, --batch >= 1 and --chunk >= 1")
    style = args.style or str(SHIPPED_DIR / "starry_night.jpg")
    if not Path(style).is_file():
        sys.exit(f"error: {style}: no such file")
    if args.data and not Path(args.data).is_dir():
        sys.exit(f"error: {args.data}: data folder not found")
    env = {**os.environ}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    with tempfile.TemporaryDirectory() as tmp:
        data, data_note = _resolve_data(args.data, tmp)
        arch = args.arch or ("johnson" if cuda else "lite")
        cfg = {"device": device, "arch": arch, "size": size, "batch": batch, "steps": steps, "warmup": warmup,
               "data": data, "style": style, "seed": args.seed,
               "loss_net": args.loss_net, "precision": args.precision,
               "compile": args.compile, "compile_mode": args.compile_mode}
        print(f"machine: {_machine(device)}; device {device}; OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}")
        print(f"training: {arch} style network, {args.loss_net} loss network, {size}x{size} crops, batch {batch}, "
              f"{steps} steps ({warmup} warm-up, not timed), Adam lr {LR}, seed {args.seed}")
        print(f"data: {data_note}; style: {style}", flush=True)

        twin = not (args.quick or args.no_twin)
        variants = ["reference", "ours"] + (["twin"] if twin else []) + (["compiled"] if args.compile else [])
        loops = []
        for v in variants:  # one after the other: setup is not timed, but should not compete
            t0 = time.perf_counter()
            loops.append(_Loop(v, cfg, env))
            print(f"  {v}: ready in {time.perf_counter() - t0:.1f} s ({loops[-1].info['precision']}, "
                  f"{loops[-1].info['threads']} threads)", file=sys.stderr, flush=True)
        sums = {l.info["init_checksum"] for l in loops if l.variant != "twin"}
        if len(sums) != 1:
            sys.exit(f"error: the loops do not start from the same weights (checksums {sorted(sums)})")

        done = 0
        while done < steps:
            n = warmup if done == 0 else min(chunk, steps - done)
            medians = [l.run(n, timed=done > 0) for l in loops]
            done += n
            note = ", ".join(f"{l.variant} {m:.3f}" for l, m in zip(loops, medians))
            print(f"  step {done}/{steps}: s/step {note}", file=sys.stderr, flush=True)
        ends = [l.end() for l in loops]

    _report(loops, ends, batch, steps, cuda)


def _report(loops: list[_Loop], ends: list[dict], batch: int, steps: int, cuda: bool) -> None:
    labels = {"reference": "reference (fast_neural_style-like: fp32 eager, 2 loss passes)",
              "ours": "ours (training.train.train_step)",
              "twin": "reference twin (weights moved by 1e-6: noise floor)",
              "compiled": "ours + torch.compile"}
    if loops[-1].variant == "compiled":
        labels["compiled"] += f" ({loops[-1].info['compile']})"
    ref = loops[0]
    ref_ips = batch / statistics.median(ref.times)
    ref_peak = ends[0]["peak_mib"]
    print()
    cpu_col = "" if cuda else f" {'CPU s/step':>10s}"
    print(f"{'loop':64s} {'prec':>4s} {'images/s':>8s} {'s/step':>7s}{cpu_col} {'peak memory':>12s} "
          f"{'x ref speed':>11s} {'x ref memory':>12s}")
    for loop, end in zip(loops, ends):
        med = statistics.median(loop.times)
        ips = batch / med
        mem_ratio = "n/a" if not (end["peak_mib"] and ref_peak) else f"{end['peak_mib'] / ref_peak:.2f}"
        cpu_val = "" if cuda else f" {statistics.median(loop.cpu):10.3f}"
        print(f"{labels[loop.variant]:64s} {loop.info['precision']:>4s} {ips:8.2f} {med:7.3f}{cpu_val} "
              f"{_fmt_mib(end['peak_mib']):>12s} {ips / ref_ips:11.2f} {mem_ratio:>12s}")
    print(f"(medians over {len(ref.times)} timed steps each; peak memory: {ends[0]['memory']}"
          + ("" if cuda else "; CPU s/step: process CPU time, all threads") + ")")
    for loop in loops:
        if loop.variant == "compiled":
            print(f"torch.compile: first step {loop.first_step:.1f} s, so about "
                  f"{loop.first_step - statistics.median(loop.times):.1f} s of compiling before the speed above")

    print("\nloss curve (total loss at a step; all loops saw the same batches, reference and ours from the same "
          "initial weights):")
    marks = sorted({max(1, round(steps * k / 5)) for k in range(1, 6)} | {1})
    print(f"{'step':>6s} " + " ".join(f"{l.variant:>10s}" for l in loops))
    for m in marks:
        print(f"{m:6d} " + " ".join(f"{l.losses[m - 1]['total']:10.4f}" for l in loops))
    tail = min(5, steps)
    print(f"\nfinal losses (step {steps}), and the mean total of the last {tail} steps:")
    means = {}
    for loop in loops:
        last = loop.losses[-1]
        means[loop.variant] = statistics.fmean(v["total"] for v in loop.losses[-tail:])
        terms = ", ".join(f"{k} {last[k]:.4f}" for k in TERMS)
        print(f"  {loop.variant:10s} {terms}; mean of last {tail}: {means[loop.variant]:.4f}")
    diff = {v: abs(m - means["reference"]) / abs(means["reference"]) for v, m in means.items()}
    if "twin" in diff:
        allowed = max(2 * diff["twin"], AGREE_FLOOR)
        noise = f"the twin is {100 * diff['twin']:.2f}% from it"
    else:
        allowed = AGREE_FLOOR
        noise = "no twin run"
    for v in ("ours", "compiled"):
        if v in diff:
            verdict = "the same curve within noise" if diff[v] <= allowed else "ABOVE the noise: the curves differ"
            print(f"  {v}: {100 * diff[v]:.2f}% from the reference ({noise}; allowed {100 * allowed:.1f}%): {verdict}")

    ours = loops[1]
    speed = statistics.median(ref.times) / statistics.median(ours.times)
    mem = "n/a" if not (ends[1]["peak_mib"] and ref_peak) else f"{ends[1]['peak_mib'] / ref_peak:.2f}x"
    print(f"\nratio ours/reference: {speed:.2f}x images/s, {mem} peak memory")


if __name__ == "__main__":
    main()
