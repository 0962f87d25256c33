"""Messages the panel's handlers put in the page (called directly, as Gradio calls them):
uploads named as the user named them, and occlusion settings that would leave gaps refused."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from realtime.panel.tabs.attribution import AttributionTab
from realtime.panel.tabs.fast_style import FastStyleTab
from realtime.panel.tabs.features import FeaturesTab
from realtime.panel.inputs import as_user_sees
from tests.conftest import write_bgr
from tests.helpers.bad_files import png_bomb


@pytest.fixture
def uploads(tmp_path, monkeypatch):
    """Gradio's upload folder, as the panel sets it; files land in UPLOADS/<hash>/<their name>."""
    root = tmp_path / "stylelens-panel-x"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(root))
    return root


def _upload(root, name: str):
    folder = root / "3f9c0a1b2e4d5f6a7b8c9d0e1f2a3b4c5d6e7f80"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_a_70_megapixel_upload_is_named_by_its_own_name(uploads):
    path = png_bomb(_upload(uploads, "holiday 2024.png"), w=10240, h=6836)  # 70 MP in its header, 70 kB
    with pytest.raises(gr.Error) as err:
        AttributionTab().saliency("efficientnet_lite0", str(path))
    message = str(err.value.message)
    assert message.startswith("holiday 2024.png: image is too large (70 megapixels"), message
    assert str(uploads) not in message and "3f9c0a1b" not in message


def test_every_handler_message_about_an_upload_names_the_file_only(uploads):
    fake = _upload(uploads, "notes.jpg")
    fake.write_text("this is not an image")
    for call in (lambda: AttributionTab().occlusion("efficientnet_lite0", str(fake)),
                 lambda: FastStyleTab().fast_style(str(fake), _style()),
                 lambda: FeaturesTab().tsne("efficientnet_lite0", [str(fake)] * 3, progress=None)):
        with pytest.raises(gr.Error) as err:
            call()
        assert str(err.value.message).startswith("notes.jpg: "), err.value.message
        assert str(uploads) not in str(err.value.message)


def _style() -> str:
    from models import catalogue

    return catalogue.default_model().name


def test_paths_outside_the_upload_folder_are_left_whole(uploads, tmp_path):
    other = tmp_path / "weights" / "vgg16.pth"
    assert as_user_sees(f"{other}: not a loadable state dict") == f"{other}: not a loadable state dict"
    inside = _upload(uploads, "a.png")
    assert as_user_sees(f"cannot read '{inside}' or {inside}") == "cannot read 'a.png' or a.png"


@pytest.mark.parametrize("size, stride", [(16, 56), (16, 48), (80, 88)])
def test_occlusion_tab_refuses_a_stride_larger_than_the_square(tmp_path, size, stride):
    img = write_bgr(tmp_path / "cat.png", (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8))
    with pytest.raises(gr.Error, match=f"stride {stride} is larger than the square size {size}") as err:
        AttributionTab().occlusion("efficientnet_lite0", str(img), size=size, stride=stride, progress=None)
    assert "\n" not in err.value.message
