"""The fast-style page and "Your painting", served as a user runs it: the picker, strength,
preserve colour, a multi-style blend, the webcam, and a training from the page (a preset of
3 steps on 32 px crops, the real loop) whose style then works everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import catalogue
from models.common.images import read_rgb, resize_max_side
from tests.helpers import web
from tests.helpers.panel_server import PROJECT_ROOT, panel_process
from tests.helpers.browser import chromium
from tests.helpers.panel_io import output_image, write_chelsea

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402


@pytest.fixture(scope="module")
def styles_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("user_styles")


@pytest.fixture(scope="module")
def server(tmp_path_factory, styles_dir):
    tmp = tmp_path_factory.mktemp("panel_style")
    args = ["--max-side", "512", "--styles-dir", str(styles_dir), "--train-steps", "40", "--train-size", "32"]  # long enough to be seen training
    with panel_process(tmp, args) as panel:
        yield panel


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    return write_chelsea(tmp_path_factory.mktemp("photo"))


def test_the_page_opens_on_fast_style(server):
    config = json.load(urllib.request.urlopen(server.url + "config"))
    tabs = [c["props"]["label"] for c in config["components"] if c["type"] == "tabitem"]
    assert tabs[:2] == ["Fast style", "Photo"]
    assert "Your painting" in tabs and "Saliency" in tabs


def test_strength_and_preserve_colour(client, photo):
    src = cv2.imread(str(photo))
    styled = output_image(client.predict(handle_file(str(photo)), "udnie_lite", "", 1.0, False, api_name="/fast_style"))
    same = output_image(client.predict(handle_file(str(photo)), "udnie_lite", "", 0.0, False, api_name="/fast_style"))
    kept = output_image(client.predict(handle_file(str(photo)), "udnie_lite", "", 1.0, True, api_name="/fast_style"))
    assert np.abs(same.astype(int) - src).mean() < 3 < np.abs(styled.astype(int) - src).mean()

    def chroma(bgr):
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)[..., 1:].astype(int)
    assert np.abs(chroma(kept) - chroma(src)).mean() < 0.5 * np.abs(chroma(styled) - chroma(src)).mean()


def test_training_from_the_page_adds_a_style_that_works_everywhere(client, server, styles_dir, tmp_path):
    painting = tmp_path / "my painting.png"
    cv2.imwrite(str(painting), cv2.imread(str(catalogue.SHIPPED_DIR / "wave.jpg"))[::4, ::4])
    job = client.submit(handle_file(str(painting)), "my_wave", None, None, api_name="/train_style")
    job.result(timeout=900)
    updates = job.outputs()
    bars = [u[0] for u in updates]
    assert any('data-state="training"' in b and "<progress" in b for b in bars), bars
    assert 'data-state="done"' in bars[-1] and "my_wave added" in bars[-1]
    previews = [u[1] for u in updates if u[1]]
    assert previews and output_image(previews[-1]).std() > 5
    assert {"my_wave.onnx", "my_wave.jpg", "manifest.json"} <= {p.name for p in styles_dir.iterdir()}

    gallery, menu = client.predict(api_name="/styles")
    assert "my_wave" in [item["caption"] for item in gallery]
    out = output_image(client.predict(handle_file(str(painting)), "my_wave", "", 1.0, False, api_name="/fast_style"))
    assert out.std() > 5

    env = {**os.environ, "STYLELENS_STYLES_DIR": str(styles_dir), "PYTHONPATH": str(PROJECT_ROOT)}
    live = subprocess.run([sys.executable, "-m", "realtime", "--source", "demo", "--style", "my_wave",
                           "--no-window", "--max-frames", "5"], env=env, capture_output=True, text=True, timeout=300)
    assert live.returncode == 0 and "out 5" in live.stdout, live.stderr
    still = subprocess.run([sys.executable, "-m", "training", "stylize", "--model", "my_wave", "--strength", "0.5",
                            "--out", str(tmp_path / "out.png")], env=env, capture_output=True, text=True, timeout=300)
    assert still.returncode == 0, still.stderr
    assert read_rgb(tmp_path / "out.png").shape == read_rgb(catalogue.SAMPLE_PHOTO).shape


def test_a_painting_that_is_not_an_image_is_refused_in_one_line(client, tmp_path):
    from gradio_client.exceptions import AppError

    fake = tmp_path / "sunflowers.jpg"
    fake.write_text("not a painting")
    with pytest.raises(AppError) as e:
        client.predict(handle_file(str(fake)), "sunflowers", None, None, api_name="/train_style")
    assert "sunflowers.jpg" in str(e.value) and "Traceback" not in str(e.value)


# The page in a real browser ---------------------------------------------------------------

@pytest.fixture(scope="module")
def drv(tmp_path_factory):
    yield from chromium(tmp_path_factory)


def test_picker_strength_and_blend_in_the_browser(drv, server):
    from selenium.webdriver.common.by import By

    drv.get(server.url)
    assert "Fast style" in web.wait(drv, lambda d: web.selected_tabs(d) or None)
    web.click_picker_tile(drv, "udnie")
    first = web.wait(drv, lambda d: web.image_src(d, "style-output"), 120)
    styled = web.fetch_image(first)
    photo = cv2.cvtColor(resize_max_side(read_rgb(catalogue.SAMPLE_PHOTO), 512), cv2.COLOR_RGB2BGR)
    assert styled.shape == photo.shape and np.abs(styled.astype(int) - photo).mean() > 10

    web.set_slider(drv, "style-strength", 0.0)
    back = web.wait(drv, lambda d: (s := web.image_src(d, "style-output")) != first and s, 120)
    assert np.abs(web.fetch_image(back).astype(int) - photo).mean() < 3
    web.set_slider(drv, "style-strength", 1.0)

    web.click_picker_tile(drv, "blend of")
    web.wait(drv, lambda d: d.find_element(By.CSS_SELECTOR, "#blend-1 input[type=range]").is_displayed())
    before = web.wait(drv, lambda d: "five_styles_lite" in d.find_element(By.ID, "style-chosen").text
                      and web.image_src(d, "style-output"), 120)
    web.set_slider(drv, "blend-1", 0.5)
    web.wait(drv, lambda d: d.find_element(By.ID, "style-chosen").text.count("%") == 2, 120)
    web.wait(drv, lambda d: web.image_src(d, "style-output") != before, 120)


def test_an_example_shows_its_result(drv, server):
    from selenium.webdriver.common.by import By

    drv.get(server.url)
    assert web.image_src(drv, "style-output") is None
    row = web.wait(drv, lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "#style-examples tr.tr-body")), None))
    row.click()
    out = web.fetch_image(web.wait(drv, lambda d: web.image_src(d, "style-output"), 180))
    photo = cv2.cvtColor(resize_max_side(read_rgb(catalogue.SAMPLE_PHOTO), 512), cv2.COLOR_RGB2BGR)
    assert out.shape == photo.shape and np.abs(out.astype(int) - photo).mean() > 10


def test_webcam_tab_streams_stylised_frames(drv, server):
    drv.get(server.url)
    web.open_tab(drv, "Fast style", "Webcam")
    web.start_webcam(drv)
    rate = web.measure_stream(drv, seconds=5)
    assert rate["frames"] >= 2
    frame = web.fetch_image(web.image_src(drv, "live-output"))
    assert min(frame.shape[:2]) >= 100 and frame.std() > 5


def test_fifty_slider_blends_keep_at_most_the_cache_bound_of_live_effects(tmp_path, monkeypatch):
    """The webcam stream keeps one live style effect per style or blend, least recently used first out."""
    import gc

    from realtime.effects.style import StyleEffect
    from realtime.panel.context import PanelContext
    from realtime.panel.tabs.fast_style import FastStyleTab

    monkeypatch.setenv("STYLELENS_CACHE_DIR", str(tmp_path))
    gc.collect()
    before = sum(isinstance(o, StyleEffect) for o in gc.get_objects())
    tab = FastStyleTab(PanelContext(live_entries=4))
    frame = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    for i in range(50):
        w = (i + 1) / 51
        out = tab.stream_style(frame, "five_styles_lite", f"starry_night={w:.4f}, the_scream={1 - w:.4f}")
        assert out.shape == frame.shape
    gc.collect()
    alive = sum(isinstance(o, StyleEffect) for o in gc.get_objects()) - before
    assert len(tab.live) == 4 and alive <= 4, alive
