"""Train a style from the user's painting in a worker process, for the panel's "Your painting" tab.

The worker runs ``training.train.train`` itself (no copy of the loop) in a ``spawn``ed process,
so the page stays responsive and a crash or a kill cannot take the server with it. It reports
each step through a queue, writes sample sheets to its run folder (the previews), and at the
end exports ONNX (with the numeric parity check) into the user style folder with a manifest
entry like the shipped zoo's. Files reach that folder by rename only, the manifest last: a
worker killed at any point leaves the folder as it was (or with a complete new style).
No Gradio here.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from models.common.errors import InputFileError, UserError, first_line
from models.common.files import atomic_path
from models.common.images import read_rgb, resize_max_side, write_rgb

THUMBNAIL_SIDE = 256
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass
class Preset:
    """The quick training from the page: ``lite`` at 192 px with the tuned defaults (the style
    calibration included) on the offline EfficientNet-Lite0 loss; about 10 minutes on a 2-core CPU
    (1000 steps at ~1.8 steps/s). The command line's default loss, VGG16, paints the paintings'
    marks better at about 6x the time a step: an hour for the same steps."""

    arch: str = "lite"
    loss_net: str = "efficientnet_lite0"
    size: int = 192
    steps: int = 1000
    batch: int = 4
    sample_every: int = 100
    style_size: int | None = None  # default: 2 x size


@dataclass
class Status:
    """What the page shows of the current (or last) training."""

    state: str = "idle"  # idle | starting | training | exporting | done | failed | cancelled
    name: str = ""
    step: int = 0
    total: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    preview: str | None = None  # the newest sample sheet: the photo, then the style on it
    message: str = ""
    started: float = 0.0

    @property
    def running(self) -> bool:
        return self.state in ("starting", "training", "exporting")


class Cancelled(Exception):
    """Raised inside the worker's step callback when the page asked to stop."""


def check_name(name: str, styles_dir: Path) -> str:
    """A new style's name: letters, digits, ``_`` and ``-``, not taken by a shipped or user model."""
    from models import catalogue

    name = (name or "").strip()
    if not NAME_PATTERN.match(name):
        raise UserError(f"style name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit")
    if name in catalogue.taken_names(styles_dir):
        raise UserError(f"a style named {name!r} exists already: choose another name")
    return name


def prepare_run(painting: str | os.PathLike, photos: list[str | os.PathLike], work: Path) -> tuple[Path, Path]:
    """Check the painting and photos at the door and copy them into ``work``: (painting, data folder).

    The first photo is the one the previews show (the sample sheet uses the folder's first image).
    """
    try:
        art = read_rgb(painting)
    except InputFileError as e:
        raise UserError(f"painting {Path(painting).name}: {str(e).split(': ', 1)[-1]}") from None
    style_path = work / "painting.png"
    write_rgb(style_path, resize_max_side(art, 1024))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(photos):
        try:
            rgb = read_rgb(p)
        except InputFileError:
            continue
        write_rgb(data / f"{i:04d}.png", resize_max_side(rgb, 1024))
    if not any(data.iterdir()):
        raise UserError("no readable training photo")
    return style_path, data


def install_style(checkpoint: Path, name: str, painting: Path, styles_dir: Path, machine: str = "") -> dict:
    """Export ``checkpoint`` to ONNX (numeric check included) and add it to ``styles_dir`` with
    a thumbnail and a manifest entry; returns the entry. Renames only; the manifest last."""
    from models import catalogue
    from training.export import export_checkpoint, manifest_entry

    styles_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=checkpoint.parent))
    onnx_staged, err = export_checkpoint(checkpoint, staging / f"{name}.onnx")
    thumb_staged = staging / f"{name}.jpg"
    write_rgb(thumb_staged, resize_max_side(read_rgb(painting), THUMBNAIL_SIDE))
    entry = manifest_entry(checkpoint, name, onnx_staged, [{"name": name, "image": thumb_staged.name}], err,
                           command="python -m realtime.panel: Your painting (quick preset)",
                           machine=machine or f"{os.cpu_count()} CPU cores")
    for staged in (onnx_staged, thumb_staged):
        with atomic_path(styles_dir / staged.name) as tmp:
            shutil.copyfile(staged, tmp)
    catalogue.add_to_manifest(styles_dir, catalogue.new_entry(entry, styles_dir))
    shutil.rmtree(staging, ignore_errors=True)
    return entry


def _worker(settings: dict, name: str, painting: str, styles_dir: str, events, cancel) -> None:
    """The worker process: train, then install; every outcome is one message on ``events``."""
    try:
        os.nice(5)  # the page's own requests come first
    except (AttributeError, OSError):
        pass
    try:
        from training.train import TrainSettings, train

        def on_step(done: int, total: int, losses: dict[str, float]) -> None:
            events.put(("step", done, total, losses))
            if cancel.is_set():
                raise Cancelled

        ckpt = train(TrainSettings(**settings), progress=False, on_step=on_step)
        if cancel.is_set():
            raise Cancelled
        events.put(("exporting",))
        entry = install_style(Path(ckpt), name, Path(painting), Path(styles_dir))
        events.put(("done", f"{name} added to {styles_dir} (parity {entry['parity_max_abs_diff']:.1e}, "
                            f"{entry['training']['wall_seconds']} s)"))
    except Cancelled:
        events.put(("cancelled", "cancelled; the style folder is unchanged"))
    except UserError as e:
        events.put(("failed", str(e)))
    except BaseException as e:  # anything else, in one line: the page shows it
        events.put(("failed", f"training failed: {first_line(e)}"))


class Trainer:
    """One training at a time; ``start`` refuses a second with a message."""

    def __init__(self, styles_dir: Path, preset: Preset | None = None):
        self.styles_dir = Path(styles_dir)
        self.preset = preset or Preset()
        self.status = Status()
        self._proc: mp.process.BaseProcess | None = None
        self._events = None
        self._cancel = None
        self._work: Path | None = None

    def start(self, painting: str | os.PathLike, name: str, photos: list[str | os.PathLike]) -> Status:
        """Check the inputs and start the worker; a UserError names what is wrong."""
        self.poll()
        if self.status.running:
            raise UserError(f"a training ({self.status.name}) is running: wait for it or cancel it")
        name = check_name(name, self.styles_dir)
        work = Path(tempfile.mkdtemp(prefix=f"stylelens-train-{name}-"))
        try:
            painting_path, data = prepare_run(painting, photos, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        p = self.preset
        settings = dict(style=[str(painting_path)], names=[name], data=str(data), out=str(work / "run"),
                        arch=p.arch, loss_net=p.loss_net, size=p.size, style_size=p.style_size, batch=p.batch, steps=p.steps,
                        sample_every=p.sample_every, checkpoint_every=max(p.steps // 4, 1), device="cpu",
                        workers=0)
        ctx = mp.get_context("spawn")
        self._events, self._cancel = ctx.Queue(), ctx.Event()
        self._proc = ctx.Process(target=_worker, name=f"stylelens-train-{name}", daemon=True,
                                 args=(settings, name, str(painting_path), str(self.styles_dir), self._events,
                                       self._cancel))
        self._work = work
        self.status = Status("starting", name, 0, p.steps, message="starting the worker", started=time.time())
        self._proc.start()
        return self.status

    def poll(self) -> Status:
        """Read the worker's messages and the newest preview; notice a worker that died."""
        s = self.status
        if self._events is None:
            return s
        while True:
            try:
                event = self._events.get_nowait()
            except (queue_module.Empty, OSError, ValueError):
                break
            kind = event[0]
            if kind == "step":
                s.state, s.step, s.total, s.losses = "training", event[1], event[2], event[3]
                s.message = f"step {s.step} of {s.total}"
            elif kind == "exporting":
                s.state, s.message = "exporting", "exporting ONNX and checking it against torch"
            else:
                s.state, s.message = kind, event[1]
        if self._work is not None:
            samples = sorted((self._work / "run" / "samples").glob("step_*.png"))
            if samples:
                s.preview = str(samples[-1])
        if s.running and self._proc is not None and not self._proc.is_alive():
            time.sleep(0.2)  # its last message may still be in the pipe
            if self._events is not None and not self._events.empty():
                return self.poll()
            s.state = "failed"
            s.message = f"the training worker stopped (exit code {self._proc.exitcode}); the style folder is unchanged"
        if not s.running:
            self._finish()
        return s

    def cancel(self, timeout: float = 30.0) -> Status:
        """Ask the worker to stop after its current step; kill it if it does not within ``timeout``."""
        if self._proc is None or not self.status.running:
            return self.status
        self._cancel.set()
        self._proc.join(timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        self.poll()
        if self.status.running or self.status.state == "failed":  # killed: it could not say so itself
            self.status.state, self.status.message = "cancelled", "cancelled; the style folder is unchanged"
            self._finish()
        return self.status

    def _finish(self) -> None:
        """After the worker is done: keep the last preview (copied out), remove the run folder."""
        if self._proc is not None:
            self._proc.join(5)
            self._proc = None
        if self._work is not None:
            if self.status.preview and Path(self.status.preview).is_file():
                keep = Path(tempfile.gettempdir()) / f"stylelens-preview-{self.status.name}-{os.getpid()}.png"
                shutil.copyfile(self.status.preview, keep)
                self.status.preview = str(keep)
            shutil.rmtree(self._work, ignore_errors=True)
            self._work = None

    def as_dict(self) -> dict:
        return asdict(self.status)
