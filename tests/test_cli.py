"""The ``stylelens`` command, every verb run as a user runs it: a process, its exit code, its output.

The installed console script is used when it belongs to this Python (a fresh ``pip install``
puts it beside the interpreter); elsewhere ``python -m stylelens``, the same entry point.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import catalogue
from models.common.paths import STYLES_DIR_ENV, torch_hub_dir, user_styles_dir
from stylelens.cli import VERBS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = shutil.which("stylelens")
if SCRIPT and Path(os.path.abspath(SCRIPT)).parent != Path(os.path.abspath(sys.executable)).parent:
    SCRIPT = None  # another environment's script would test another installation
COMMAND = [SCRIPT] if SCRIPT else [sys.executable, "-m", "stylelens"]


def stylelens(*args, cwd: Path | None = None, env: dict | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the command; the checkout's packages come first on the path, as in a source checkout."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                **(env or {})}
    return subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
                          env=full_env, timeout=timeout)


def _json(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _write_clip(path: Path, frames: int = 5, size: tuple[int, int] = (64, 48)) -> Path:
    """A tiny clip written with OpenCV: a ball moving over a gradient."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(frames):
        frame = np.repeat(np.linspace(40, 200, w, dtype=np.uint8)[None, :, None], h, 0).repeat(3, 2)
        cv2.circle(frame, (8 + 10 * i, h // 2), 8, (0, 200, 255), -1)
        writer.write(frame)
    writer.release()
    return path


# the command itself ------------------------------------------------------------------------------

def test_the_console_script_is_declared_and_one_form_runs():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["stylelens"] == "stylelens.cli:main"
    assert "stylelens" in project["tool"]["setuptools"]["packages"]
    r = stylelens("--version")
    assert r.returncode == 0 and r.stdout.startswith("stylelens "), (COMMAND, r.stderr)
    if SCRIPT:  # the installed script and the module are one entry point
        module = subprocess.run([sys.executable, "-m", "stylelens", "--help"], capture_output=True, text=True,
                                cwd=ROOT)
        assert stylelens("--help").stdout == module.stdout


def test_help_lists_every_verb_with_an_example():
    r = stylelens("--help")
    assert r.returncode == 0, r.stderr
    for verb in ("live", "render", "stylize", "train", "export", "panel", "styles", "info"):
        assert f"\n  {verb} " in r.stdout, verb
        assert f"stylelens {verb}" in r.stdout, verb
    assert set(VERBS) == {"live", "render", "stylize", "train", "export", "panel", "styles", "info"}
    bare = stylelens()
    assert bare.returncode == 2 and "commands:" in bare.stdout
    typo = stylelens("styels")
    assert typo.returncode == 2 and "did you mean 'styles'" in typo.stderr and "Traceback" not in typo.stderr


@pytest.mark.parametrize("verb, module, sub", [("live", "realtime", None), ("train", "training", "train"),
                                               ("export", "training", "export"), ("stylize", "training", "stylize"),
                                               ("panel", "realtime.panel", None)])
def test_each_verb_offers_every_option_of_its_module(verb, module, sub):
    """One definition of each flag: the verb's help shows every option of the module's parser."""
    import importlib

    parser = importlib.import_module(f"{module}.__main__").build_parser()
    assert parser.prog == f"python -m {module}"  # the python -m form is unchanged
    if sub:  # the sub-command's parser (argparse offers no public accessor)
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[sub]
    r = stylelens(verb, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: stylelens {verb}")
    options = {s for a in parser._actions for s in a.option_strings}
    assert options and all(o in r.stdout for o in options), options - set(r.stdout.split())


def test_python_m_panel_still_parses_its_options():
    r = subprocess.run([sys.executable, "-m", "realtime.panel", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m realtime.panel"), r.stderr
    assert "--max-upload-mb" in r.stdout


# the verbs that do work --------------------------------------------------------------------------

def test_stylize_a_photo_with_json(tmp_path):
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), cv2.resize(cv2.imread(str(catalogue.SAMPLE_PHOTO)), (64, 48), interpolation=cv2.INTER_AREA))
    out = tmp_path / "out.png"
    result = _json(stylelens("stylize", photo, "--out", out, "--provider", "cpu", "--json"))
    assert result["output"] == str(out) and out.is_file()
    assert result["output_bytes"] == out.stat().st_size
    assert (result["width"], result["height"]) == (64, 48) == cv2.imread(str(out)).shape[1::-1]
    assert result["model"] == str(catalogue.model_path()) and result["model_is_default"] is True
    assert result["providers"] == ["CPUExecutionProvider"] and result["seconds"] > 0
    styled = cv2.imread(str(out)).astype(float)
    assert np.abs(styled - cv2.imread(str(photo))).mean() > 10  # the style changed the picture

    five = catalogue.model_path("five_styles_lite")
    blended = _json(stylelens("stylize", photo, "--out", tmp_path / "b.jpg", "--model", five, "--blend", "wave=3",
                              "udnie=1", "--max-size", "32", "--json"))
    assert blended["blend"] == {"wave": 3.0, "udnie": 1.0} and blended["width"] == 32
    assert blended["model_is_default"] is False

    plain = stylelens("stylize", photo, "--out", tmp_path / "p.png")
    assert plain.returncode == 0 and plain.stdout.strip() == f"wrote {tmp_path / 'p.png'}"
    missing = stylelens("stylize", tmp_path / "nope.jpg", "--json")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.jpg'}: no such file (expected an image file)"


def test_render_every_frame_of_a_clip_with_json(tmp_path):
    clip = _write_clip(tmp_path / "clip.mp4")
    out = tmp_path / "styled.mp4"
    result = _json(stylelens("render", clip, "--out", out, "--provider", "cpu", "--json"))
    assert (result["frames_in"], result["frames_out"], result["dropped"]) == (5, 5, 0)
    assert result["output"] == str(out) and result["output_bytes"] == out.stat().st_size > 0
    assert result["model"] == str(catalogue.model_path()) and result["effect"] == "style"
    assert result["seconds"] > 0
    cap = cv2.VideoCapture(str(out))
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)

    text = stylelens("render", clip, "--out", tmp_path / "again.mp4", "--effect", "none")
    assert text.returncode == 0 and "frames in 5, out 5, dropped 0" in text.stdout, text.stderr
    missing = stylelens("render", tmp_path / "nope.mp4", "--out", tmp_path / "x.mp4")
    assert missing.returncode == 2 and "nope.mp4: no such file or folder" in missing.stderr
    no_out = stylelens("render", clip)
    assert no_out.returncode == 2 and "--out" in no_out.stderr


def test_live_on_the_demo_clip(tmp_path):
    r = stylelens("live", "--source", "demo", "--capture-size", "64x48", "--no-window", "--max-frames", "3",
                  "--provider", "cpu", "--out", tmp_path / "live.mp4")
    assert r.returncode == 0, r.stderr
    assert ", out 3," in r.stdout and (tmp_path / "live.mp4").stat().st_size > 0


def test_train_export_and_list_a_user_style(photos_dir, style_images, tmp_path):
    run = tmp_path / "run"
    trained = stylelens("train", "--style", style_images[0], "--name", "stripes", "--data", photos_dir, "--out", run,
                        "--arch", "tiny", "--size", "32", "--steps", "2", "--batch", "2", "--precision", "fp32",
                        "--no-progress")
    assert trained.returncode == 0, trained.stderr
    assert (run / "checkpoint.pt").is_file()

    user_dir = tmp_path / "my styles"
    exported = stylelens("export", run, "--out", user_dir / "stripes_tiny.onnx")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(f"wrote {user_dir / 'stripes_tiny.onnx'}")
    (user_dir / "broken.onnx").write_bytes(b"not a model")

    listing = _json(stylelens("styles", "--json", env={STYLES_DIR_ENV: str(user_dir)}))
    assert listing["user_dir"] == str(user_dir) and listing["user_dir_exists"] is True
    mine = {m["name"]: m for m in listing["models"] if m["origin"] == "user"}
    assert set(mine) == {"broken", "stripes_tiny"}
    assert mine["stripes_tiny"]["styles"] == ["stripes"] and mine["stripes_tiny"]["arch"] == "tiny"
    from models.backbones import default_loss_network  # what --loss-net auto took here

    assert mine["stripes_tiny"]["loss_net"] == default_loss_network() and mine["stripes_tiny"]["error"] is None
    assert mine["stripes_tiny"]["bytes"] == (user_dir / "stripes_tiny.onnx").stat().st_size
    assert "broken.onnx" in mine["broken"]["error"]
    text = stylelens("styles", env={STYLES_DIR_ENV: str(user_dir)})
    assert text.returncode == 0 and str(user_dir) in text.stdout
    assert "stripes_tiny" in text.stdout and "unusable" in text.stdout


def test_styles_lists_the_shipped_models_and_renders_a_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    result = _json(stylelens("styles", "--json", "--sheet", sheet, "--tile", "48",
                             env={STYLES_DIR_ENV: str(tmp_path / "none")}))
    entries = catalogue.shipped()
    shipped = [m for m in result["models"] if m["origin"] == "shipped"]
    assert [m["name"] for m in shipped] == [e.name for e in entries] and result["default"] == entries[0].name
    for m, e in zip(shipped, entries):
        assert Path(m["path"]) == e.path and m["bytes"] == Path(m["path"]).stat().st_size
        assert m["styles"] == e.style_names
        assert (m["arch"], m["loss_net"], m["error"]) == (e.arch, e.loss_net, None)
    assert result["user_dir"] == str(tmp_path / "none") and result["user_dir_exists"] is False

    image = cv2.imread(str(sheet))
    assert image.shape[1::-1] == (result["sheet"]["width"], result["sheet"]["height"])
    assert len(result["sheet"]["tiles"]) == sum(len(e.styles) for e in entries)
    # the first tile is the photo, the second its first style: they differ
    w, h = result["sheet"]["tile_width"], result["sheet"]["tile_height"]
    photo, styled = image[4:4 + h, 4:4 + w].astype(float), image[4:4 + h, 8 + w:8 + 2 * w].astype(float)
    assert np.abs(photo - styled).mean() > 10

    text = stylelens("styles", env={STYLES_DIR_ENV: str(tmp_path / "none")})
    assert text.returncode == 0
    assert all(e.name in text.stdout for e in entries) and str(catalogue.SHIPPED_DIR) in text.stdout
    bad = stylelens("styles", "--sheet", tmp_path / "sheet.txt")
    assert bad.returncode == 2 and "sheet.txt" in bad.stderr and "Traceback" not in bad.stderr


def test_info_reports_versions_cpu_gpu_and_folders(tmp_path):
    import importlib.metadata

    import onnxruntime as ort
    import torch

    env = {STYLES_DIR_ENV: str(tmp_path / "styles")}
    info = _json(stylelens("info", "--json", env=env))
    assert info["python"]["version"] == platform.python_version()
    p = info["packages"]
    assert p["torch"] == torch.__version__ and p["onnxruntime"] == ort.__version__
    assert p["opencv"] == cv2.__version__ and p["gradio"] == importlib.metadata.version("gradio")
    assert info["backends"]["onnxruntime_providers"] == ort.get_available_providers()
    assert info["backends"]["torch_cuda"] == torch.version.cuda
    assert info["backends"]["opencv_video_files"]
    cpu = info["cpu"]
    assert cpu["cores"] == os.cpu_count() and 1 <= cpu["usable_cores"] <= cpu["cores"]
    if sys.platform.startswith("linux"):
        assert set(cpu["flags"]) == {"avx2", "avx512", "vnni", "amx"}
        assert all(isinstance(v, bool) for v in cpu["flags"].values())
    assert isinstance(info["gpu"]["devices"], list) and info["gpu"]["cuda_provider"]
    f = info["folders"]
    assert f["user_styles"] == env[STYLES_DIR_ENV] and f["user_styles_exists"] is False
    assert f["torch_hub_cache"] == torch.hub.get_dir() and f["shipped_styles"] == str(catalogue.SHIPPED_DIR)

    text = stylelens("info", env=env)
    assert text.returncode == 0
    for label in ("python", "torch", "onnxruntime", "opencv", "gradio", "cpu", "AVX2", "AVX-512", "VNNI", "AMX",
                  "gpu", "cuda provider", "your styles", "torch hub cache", env[STYLES_DIR_ENV]):
        assert label in text.stdout, label


def test_info_does_not_load_torch():
    code = "import sys; from stylelens.info import collect; collect(); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_panel_serves_the_page_and_stops_on_sigterm(tmp_path):
    from tests.helpers.panel_server import free_port

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    log = tmp_path / "panel.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*COMMAND, "panel", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        page = None
        while page is None and proc.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode(errors="replace")
            except OSError:
                time.sleep(0.5)
        assert page is not None, log.read_text()
        assert "gradio" in page.lower()
        # Gradio serves the page while launch() still checks its own address; the line follows launch()
        banner = f"stylelens panel on http://127.0.0.1:{port}"
        while banner not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert banner in log.read_text(), log.read_text()
        time.sleep(2)  # Gradio checks its own address after the page is up; a stop before that is an interrupt
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()
    assert not list(tmp_path.glob("stylelens-panel-*")), "the upload folder outlived the server"
    # two lines: where it serves, and that it stopped (no start-up chatter, no traceback or interrupt notice)
    lines = [l for l in log.read_text().splitlines() if l.strip()]
    assert len(lines) == 2 and lines[0].startswith("stylelens panel on") and lines[1] == "stopped", lines


# the folders -------------------------------------------------------------------------------------

def test_folders_follow_the_environment(monkeypatch, tmp_path):
    import torch

    monkeypatch.setenv(STYLES_DIR_ENV, str(tmp_path / "mine"))
    assert user_styles_dir() == tmp_path / "mine"
    monkeypatch.delenv(STYLES_DIR_ENV)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert user_styles_dir() == tmp_path / "data" / "stylelens" / "styles"
    for env in ({"TORCH_HOME": str(tmp_path / "th")}, {"XDG_CACHE_HOME": str(tmp_path / "cache")}):
        monkeypatch.delenv("TORCH_HOME", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        assert str(torch_hub_dir()) == torch.hub.get_dir()


# what the verbs print ----------------------------------------------------------------------------

def test_render_names_the_file_it_wrote_and_no_latency(tmp_path):
    clip, out = tmp_path / "clip.mp4", tmp_path / "styled.mp4"
    assert stylelens("live", "--source", "demo", "--no-window", "--max-frames", "6", "--out", clip).returncode == 0
    r = stylelens("render", clip, "--out", out, "--size", "160")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == f"wrote {out}"
    assert "latency" not in r.stdout and "frames/s" in r.stdout


def test_the_first_frame_counts_from_the_program_not_the_shell_line(tmp_path):
    code = ("import sys, time; time.sleep(6); from stylelens.cli import main; "
            "sys.exit(main(['live', '--source', 'demo', '--no-window', '--max-frames', '3']))")
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    wall = time.perf_counter() - started
    assert r.returncode == 0, r.stderr
    first = float(re.search(r"first frame ([\d.]+) s after the program started", r.stdout).group(1))
    assert first < wall - 6, (first, wall)  # the six seconds before the program began are not counted
