"""Training never loses more than the steps since its last checkpoint (issue 6).

kill -9 at random moments, a loss that turns to NaN, and a disk that refuses the write
while saving: each leaves a loadable checkpoint, and --resume goes on from it.
"""

from __future__ import annotations

import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path


from training.checkpoint import load_checkpoint

CHECKPOINT_EVERY = 3


def _train_cmd(photos_dir: Path, style: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "training", "train", "--style", str(style), "--data", str(photos_dir),
            "--out", str(out), "--arch", "lite", "--size", "32", "--style-size", "64", "--batch", "1",
            "--steps", str(steps), "--checkpoint-every", str(CHECKPOINT_EVERY), "--sample-every", "1000",
            "--device", "cpu", "--precision", "fp32", "--no-progress", *extra]


def _leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in run.glob(".*.tmp"))


def test_kill_9_at_random_moments_then_resume(photos_dir, style_images, tmp_path):
    run, steps = tmp_path / "run", 120
    rng = random.Random(6)
    kills = []
    for attempt in range(3):
        proc = subprocess.Popen(_train_cmd(photos_dir, style_images[0], run, steps, *(["--resume"] if attempt else [])),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        before = load_checkpoint(run)["step"] if (run / "checkpoint.pt").exists() else 0
        deadline = time.time() + 120
        while time.time() < deadline:  # wait until this process has written a checkpoint of its own
            if (run / "checkpoint.pt").exists() and load_checkpoint(run)["step"] > before:
                break
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))  # then kill it at a random moment, often mid-save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        ckpt = load_checkpoint(run)  # always loadable: never a half-written file in its place
        assert ckpt["step"] % CHECKPOINT_EVERY == 0 and ckpt["step"] > before
        kills.append(ckpt["step"])
    r = subprocess.run(_train_cmd(photos_dir, style_images[0], run, steps, "--resume"), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"resuming {run / 'checkpoint.pt'} at step {kills[-1]} of {steps}" in r.stderr
    final = load_checkpoint(run)
    assert final["step"] == steps and final["config"]["wall_seconds"] > 0
    assert _leftovers(run) == []  # temporaries of the killed processes were cleaned up


def test_a_loss_that_becomes_nan_stops_the_run_and_keeps_the_last_good_checkpoint(photos_dir, style_images,
                                                                                   tmp_path):
    run = tmp_path / "run"
    subprocess.run(_train_cmd(photos_dir, style_images[0], run, CHECKPOINT_EVERY), check=True, capture_output=True)
    good = (run / "checkpoint.pt").read_bytes()
    # A learning rate of 1e30 throws the weights to infinity on the first step.
    r = subprocess.run(_train_cmd(photos_dir, style_images[0], run, 4 * CHECKPOINT_EVERY, "--resume", "--lr", "1e30"),
                       capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: loss became") and "the last good checkpoint" in last.lower(), r.stderr
    assert (run / "checkpoint.pt").read_bytes() == good
    assert load_checkpoint(run)["step"] == CHECKPOINT_EVERY


def _refuse_large_files(limit: int):
    def apply() -> None:  # in the child: writes past `limit` bytes fail with EFBIG, like a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_disk_that_refuses_the_checkpoint_is_reported_and_the_previous_one_survives(photos_dir, style_images,
                                                                                    tmp_path):
    run = tmp_path / "run"
    subprocess.run(_train_cmd(photos_dir, style_images[0], run, CHECKPOINT_EVERY), check=True, capture_output=True)
    good = (run / "checkpoint.pt").read_bytes()
    assert len(good) > 50_000
    r = subprocess.run(_train_cmd(photos_dir, style_images[0], run, 3 * CHECKPOINT_EVERY, "--resume"),
                       capture_output=True, text=True, preexec_fn=_refuse_large_files(50_000))
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"error: {run / 'checkpoint.pt'}: cannot write (File too large); the previous checkpoint there is kept")
    assert (run / "checkpoint.pt").read_bytes() == good and _leftovers(run) == []
    # With room again, the same command goes on from the surviving checkpoint.
    r = subprocess.run(_train_cmd(photos_dir, style_images[0], run, 3 * CHECKPOINT_EVERY, "--resume"),
                       capture_output=True, text=True)
    assert r.returncode == 0 and f"at step {CHECKPOINT_EVERY} of" in r.stderr, r.stderr
    assert load_checkpoint(run)["step"] == 3 * CHECKPOINT_EVERY
