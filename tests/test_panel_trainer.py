"""Training a painting from the page's worker (realtime.panel.trainer): one at a time, cancel,
a killed worker, a painting that is not an image. Real training loop, a preset of a few steps
on 32 px crops."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from models import catalogue
from models.common.errors import UserError
from realtime.panel.trainer import Preset, Trainer

TINY = Preset(size=32, steps=3, batch=1, sample_every=1, style_size=64)


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def _wait(trainer: Trainer, until, seconds: float = 600):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = trainer.poll()
        if until(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting; last status {trainer.poll()}")


@pytest.fixture
def styles_dir(tmp_path) -> Path:
    """A user style folder that already holds a style, which must survive every failure."""
    folder = tmp_path / "styles"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"models": []}\n')
    return folder


def test_a_painting_that_is_not_an_image_is_refused_in_one_line(styles_dir, tmp_path):
    fake = tmp_path / "sunflowers.jpg"
    fake.write_text("not a painting")
    with pytest.raises(UserError) as e:
        Trainer(styles_dir, TINY).start(fake, "sunflowers", [catalogue.SAMPLE_PHOTO])
    assert "sunflowers.jpg" in str(e.value) and "\n" not in str(e.value)


def test_a_taken_or_bad_name_is_refused(styles_dir):
    t = Trainer(styles_dir, TINY)
    for name in ("udnie", "../evil", ""):
        with pytest.raises(UserError, match="style name|exists already"):
            t.start(catalogue.SHIPPED_DIR / "wave.jpg", name, [catalogue.SAMPLE_PHOTO])


def test_one_training_at_a_time_and_a_killed_worker_leaves_the_folder_as_it_was(styles_dir):
    before = _listing(styles_dir)
    t = Trainer(styles_dir, Preset(size=32, steps=10_000, batch=1, sample_every=1, style_size=64))
    t.start(catalogue.SHIPPED_DIR / "wave.jpg", "first", [catalogue.SAMPLE_PHOTO])
    with pytest.raises(UserError, match="a training \\(first\\) is running"):
        t.start(catalogue.SHIPPED_DIR / "udnie.jpg", "second", [catalogue.SAMPLE_PHOTO])
    _wait(t, lambda s: s.step >= 2)
    os.kill(t._proc.pid, signal.SIGKILL)
    status = _wait(t, lambda s: not s.running, 60)
    assert status.state == "failed" and "style folder is unchanged" in status.message
    assert _listing(styles_dir) == before


def test_cancel_stops_cleanly(styles_dir):
    before = _listing(styles_dir)
    t = Trainer(styles_dir, Preset(size=32, steps=10_000, batch=1, sample_every=1, style_size=64))
    t.start(catalogue.SHIPPED_DIR / "wave.jpg", "stopped", [catalogue.SAMPLE_PHOTO])
    _wait(t, lambda s: s.step >= 1)
    status = t.cancel()
    assert status.state == "cancelled" and not status.running
    assert _listing(styles_dir) == before
    assert t._proc is None  # the worker is gone
