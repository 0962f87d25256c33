"""The Gradio panel served as a user runs it (``python -m realtime.panel``) on 127.0.0.1,
driven by ``gradio_client`` (every tab's function) and by headless Chromium (the page)."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from models import catalogue
from tests.helpers.web import open_tab, wait
from tests.helpers.panel_server import panel_process
from tests.helpers.browser import chromium
from tests.helpers.panel_io import output_image, write_chelsea

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

MAX_UPLOAD_MB = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The panel in its own process, its temporary folder under this test's tmp."""
    tmp = tmp_path_factory.mktemp("panel")
    with panel_process(tmp, ["--max-upload-mb", str(MAX_UPLOAD_MB), "--max-side", "512"]) as panel:
        time.sleep(1)
        match = re.search(r"temporary folder (\S+)", panel.log())
        yield {"url": panel.url, "port": panel.port, "proc": panel.proc, "tmp": tmp, "log": panel.log_path,
               "upload_dir": Path(match.group(1)) if match else None}


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return Client(server["url"], verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))


@pytest.fixture(scope="module")
def cat(tmp_path_factory) -> Path:
    return write_chelsea(tmp_path_factory.mktemp("cat"))


def _gallery(result) -> list[np.ndarray]:
    return [output_image(item["image"]) for item in result]


def _listening_addresses(port: int) -> set[str]:
    """IPv4/IPv6 addresses listening on ``port``, from the kernel's socket tables (Linux)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state == "0A" and int(hexport, 16) == port:
                found.add(addr)
    return found


def test_binds_to_localhost_only(server):
    if not os.path.exists("/proc/net/tcp"):
        pytest.skip("reads Linux's socket tables")
    # 127.0.0.1 in the kernel's little-endian hex; 00000000 would be every interface.
    assert _listening_addresses(server["port"]) == {"0100007F"}


def test_page_offers_every_method(server):
    import json
    import urllib.request

    config = json.load(urllib.request.urlopen(server["url"] + "config"))
    tabs = [c["props"]["label"] for c in config["components"] if c["type"] == "tabitem"]
    for expected in ["Filters & features", "Attribution", "Optimising the image", "Synthesis", "Filters", "Nearest neighbours", "t-SNE", "Max patches", "Occlusion", "Saliency",
                     "Guided backprop & Grad-CAM", "Class visualisation", "Fooling images", "Feature inversion",
                     "DeepDream", "Texture synthesis", "Style transfer (Gatys)", "Fast style"]:
        assert expected in tabs
    assert config["analytics_enabled"] is False


def test_filters(client):
    first, grid = client.predict("efficientnet_lite0", "block3", api_name="/filters")
    first, grid = output_image(first), output_image(grid)
    assert first.std() > 10 and grid.std() > 10


def test_neighbours_tsne_and_patches_on_the_sample_gallery(client, cat):
    by_feature, by_pixel = client.predict("efficientnet_lite0", handle_file(str(catalogue.SAMPLE_PHOTO)), None, 3,
                                          api_name="/neighbours")
    assert len(by_feature) == 3 and len(by_pixel) == 3
    # The query is the first sample image: it is its own nearest neighbour both ways.
    assert by_feature[0]["caption"].startswith(catalogue.SAMPLE_PHOTO.stem + " (")
    tsne_map = output_image(client.predict("efficientnet_lite0", None, api_name="/tsne"))
    assert tsne_map.shape[0] > 200 and (tsne_map < 250).any()
    patches, info = client.predict("efficientnet_lite0", None, "block4", 3, 4, api_name="/patches")
    assert len(patches) == 4 and "receptive field" in info


def test_a_video_as_gallery(client, tmp_path):
    """Frames of a video file are gallery images: t-SNE lays out the sampled frames."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 72))
    rng = np.random.default_rng(0)
    for i in range(12):
        frame = np.full((72, 96, 3), 40 + 15 * i, np.uint8)
        cv2.circle(frame, (10 + 6 * i, 36), 12, tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
        writer.write(frame)
    writer.release()
    tsne_map = output_image(client.predict("efficientnet_lite0", [handle_file(str(video))], api_name="/tsne"))
    assert (tsne_map < 250).any()
    by_feature, _ = client.predict("efficientnet_lite0", handle_file(str(catalogue.SAMPLE_PHOTO)),
                                   [handle_file(str(video))], 3, api_name="/neighbours")
    assert all(item["caption"].startswith("clip.mp4 frame") for item in by_feature)


def test_fast_style_renders_a_whole_clip_with_its_sound(client, tmp_path):
    from tests.helpers.clips import make_clip, probe

    times = [i / 10 for i in range(5)] + [0.5 + i / 30 for i in range(9)]  # a variable frame rate
    clip = make_clip(tmp_path / "clip.mp4", times, size=(96, 72), sound=0.8)
    result = client.predict(handle_file(str(clip)), catalogue.default_model().name, "",
                            api_name="/fast_style_video")
    out = probe(Path(result["video"] if isinstance(result, dict) else result))
    assert out["codec"] == "h264" and out["size"] == (96, 72)
    assert np.abs(np.array(out["times"]) - times).max() < 1e-3
    assert abs(out["audio"]["seconds"] - probe(clip)["audio"]["seconds"]) < 0.03
    assert np.abs(out["images"][0].astype(int) - probe(clip)["images"][0]).mean() > 10  # stylised


def test_attribution_tabs(client, cat):
    heat, text = client.predict("efficientnet_lite0", handle_file(str(cat)), "", 56, 56, api_name="/occlusion")
    assert max(output_image(heat).shape[:2]) == 224
    assert "cat" in text
    over, sal, text = client.predict("efficientnet_lite0", handle_file(str(cat)), "", 0, api_name="/saliency")
    assert output_image(sal).std() > 5 and "cat" in text
    g, plain, cam, text = client.predict("efficientnet_lite0", handle_file(str(cat)), "285: Egyptian cat",
                                         None, None, api_name="/guided")
    assert not np.array_equal(output_image(g), output_image(plain)) and "Egyptian cat" in text


def test_optimisation_tabs(client, cat):
    img, text = client.predict("efficientnet_lite0", "130: flamingo", "pixel", 10, 64, 0,
                               api_name="/class_visualization")
    assert output_image(img).shape[:2] == (64, 64) and "flamingo" in text
    orig, fooled, diff, text = client.predict("efficientnet_lite0", handle_file(str(cat)), "949: strawberry", 10,
                                              api_name="/fooling")
    assert output_image(orig).shape == output_image(fooled).shape and "before" in text
    recon = client.predict("efficientnet_lite0", handle_file(str(cat)), ["block1", "block7"], 20,
                           api_name="/inversion")
    assert [r["caption"] for r in recon] == ["original", "block1", "block7"]


def test_synthesis_tabs(client, cat):
    dream = output_image(client.predict("efficientnet_lite0", handle_file(str(cat)), "block4", 2, 1.4, 2, 128,
                                api_name="/deepdream"))
    assert max(dream.shape[:2]) == 128
    style = str(catalogue.SHIPPED_DIR / "starry_night.jpg")
    tex, text = client.predict("efficientnet_lite0", handle_file(style), [], 64, 10, api_name="/texture")
    assert output_image(tex).std() > 5 and "->" in text
    out, text = client.predict("efficientnet_lite0", handle_file(str(cat)), [handle_file(style)], "", 128,
                               None, None, None, False, 1, "adam", 10, api_name="/gatys")
    assert max(output_image(out).shape[:2]) == 128 and "style" in text


def test_fast_style(client, cat):
    out = output_image(client.predict(handle_file(str(cat)), catalogue.default_model().name, "", api_name="/fast_style"))
    src = cv2.imread(str(cat))
    assert out.shape == src.shape  # under the 512 px cap: the upload's own size
    assert np.abs(cv2.resize(src, out.shape[1::-1]).astype(int) - out).mean() > 10


def test_bad_uploads_give_one_clear_message(client, server, tmp_path):
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not an image")
    with pytest.raises(AppError, match=r"holiday.jpg.*not a readable image"):
        client.predict("efficientnet_lite0", handle_file(str(fake)), "", 0, api_name="/saliency")
    with pytest.raises(AppError, match=r"holiday.jpg.*not a readable image"):
        client.predict("efficientnet_lite0", [handle_file(str(fake))], "block4", 0, 4, api_name="/patches")
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8))
    assert big.stat().st_size > MAX_UPLOAD_MB * 1e6
    with pytest.raises(Exception, match=r"(?i)size|large"):
        client.predict("efficientnet_lite0", handle_file(str(big)), "", 0, api_name="/saliency")
    with pytest.raises(AppError, match=r"Upload an image first"):
        client.predict("efficientnet_lite0", None, "", 0, api_name="/saliency")
    # VGG16 without torchvision's weights: none at all, or the offline conv layers, which cannot classify
    with pytest.raises(AppError, match=r"vgg16 weights are not in the torch hub cache|vgg16 here has conv layers only"):
        client.predict("vgg16", handle_file(str(catalogue.SAMPLE_PHOTO)), "", 0, api_name="/saliency")
    # The server lives on after every one of them.
    assert server["proc"].poll() is None


def test_a_70_megapixel_upload_is_named_as_the_user_named_it(client, server, tmp_path):
    from tests.helpers.bad_files import png_bomb

    path = png_bomb(tmp_path / "photo_70mp.png", w=10240, h=6836)  # 70 MP in its header, 70 kB on disk
    with pytest.raises(AppError) as err:
        client.predict("efficientnet_lite0", handle_file(str(path)), "", 0, api_name="/saliency")
    message = str(err.value)
    assert "photo_70mp.png: image is too large (70 megapixels" in message, message
    assert str(server["tmp"]) not in message, message


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    from tests.helpers.bad_files import IMAGE_CASES, VIDEO_CASES

    folder = tmp_path_factory.mktemp("bad")
    return {**{f"image:{k}": build(folder) for k, (build, _) in IMAGE_CASES.items()},
            **{f"video:{k}": build(folder) for k, (build, _) in VIDEO_CASES.items()}}


def test_every_image_case_of_the_table_as_an_upload(client, server, bad_files):
    """Issue 6's table at the panel's door: a message naming the file, or a stylised image of its size."""
    from tests.helpers.bad_files import IMAGE_CASES

    style = catalogue.default_model().name
    for case, (_, problem) in IMAGE_CASES.items():
        path = bad_files[f"image:{case}"]
        if problem:
            with pytest.raises(AppError) as err:
                client.predict(handle_file(str(path)), style, "", api_name="/fast_style")
            message = str(err.value)
            assert path.name in message and (problem in message or "not a readable image" in message), (case, message)
            assert message.count("\n") == 0, message
            assert str(server["tmp"]) not in message, message  # the upload's name, not the server's path
        else:
            out = output_image(client.predict(handle_file(str(path)), style, "", api_name="/fast_style"))
            h, w = cv2.imread(str(path), cv2.IMREAD_UNCHANGED).shape[:2]
            assert out.shape[:2] == (h, w), case
    # Bad videos in a gallery: named in one line; the server lives on.
    for case in ("empty", "truncated", "text_as_mp4"):
        path = bad_files[f"video:{case}"]
        with pytest.raises(AppError, match=re.escape(path.name)):
            client.predict("efficientnet_lite0", [handle_file(str(path))], api_name="/tsne")
    assert server["proc"].poll() is None


# The page in a real browser ---------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    yield from chromium(tmp_path_factory)


def _image_src(drv, elem_id: str) -> str | None:
    from selenium.webdriver.common.by import By

    imgs = drv.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return next((i.get_attribute("src") for i in imgs if i.get_attribute("src")), None)


def test_page_runs_a_method_in_the_browser(browser, server):
    from selenium.webdriver.common.by import By

    browser.get(server["url"])
    open_tab(browser, "Filters & features", "Filters")
    browser.find_element(By.ID, "filters-run").click()
    assert wait(browser, lambda d: _image_src(d, "filters-first"))


def test_page_shows_a_clear_message_for_a_file_that_is_not_an_image(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image at all")
    browser.get(server["url"])
    open_tab(browser, "Attribution", "Saliency")
    field = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#saliency-input input[type=file]"))
    field.send_keys(str(fake))
    time.sleep(1)
    browser.find_element(By.ID, "saliency-run").click()
    wait(browser, lambda d: "notes.jpg: not a readable image" in d.find_element(By.TAG_NAME, "body").text, 60)
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text


def test_a_video_upload_is_stylised_and_plays_in_the_page(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.helpers.clips import make_clip

    clip = make_clip(tmp_path / "walk.mp4", [i / 15 for i in range(15)], size=(96, 72), sound=1.0)
    browser.get(server["url"])
    open_tab(browser, "Fast style", "Video")
    field = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#style-video-in input[type=file]"))
    field.send_keys(str(clip))
    time.sleep(1)
    browser.find_element(By.ID, "style-video-run").click()
    video = wait(browser, lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, "#style-video-out video")), None), 120)
    state = wait(browser, lambda d: d.execute_script(
        "const v = arguments[0]; v.muted = true; v.play();"
        "return v.readyState >= 2 && v.currentTime > 0 ? [v.duration, v.videoWidth, v.webkitAudioDecodedByteCount]"
        " : null;", video), 60)
    duration, width, audio_bytes = state
    assert abs(duration - 1.0) < 0.1 and width == 96 and audio_bytes > 0


# Last: stopping the server -----------------------------------------------------------------

def test_uploads_stay_in_the_private_folder_and_go_at_exit(server, client, cat):
    upload_dir = server["upload_dir"]
    assert upload_dir is not None, server["log"].read_text()
    assert upload_dir.is_relative_to(server["tmp"])
    client.predict("efficientnet_lite0", handle_file(str(cat)), "", 0, api_name="/saliency")
    assert any(p.name == "chelsea.png" for p in upload_dir.rglob("*"))


def test_stopping_the_server_removes_its_temporary_folder(server):
    upload_dir = server["upload_dir"]
    assert upload_dir is not None and upload_dir.exists()
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(30) == 0
    assert not upload_dir.exists()
