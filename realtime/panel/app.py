"""The page: fast style first (a picker of paintings, strength, colour, webcam, video, your own
painting), then one tab per group of methods of "Visualizing and Understanding" CNNs.

``build_app`` only puts the tabs together (``realtime.panel.tabs``: each holds its layout and its
handlers). Every event has an API name (``/saliency``, ``/deepdream``, ...) so ``gradio_client``
and scripts can call it. The tabs of the lecture's methods need the ``visualize`` extra (PyTorch)
and "Your painting" the ``train`` extra; without them each says so in one line.
"""

from __future__ import annotations

import gradio as gr

from models import catalogue
from models.layers import BACKBONES
from realtime.panel.context import PanelContext
from realtime.panel.styles import tile_images, tiles, zoo_models
from realtime.panel.tabs.attribution import AttributionTab
from realtime.panel.tabs.fast_style import FastStyleTab
from realtime.panel.tabs.features import FeaturesTab
from realtime.panel.tabs.optimisation import OptimisationTab
from realtime.panel.tabs.synthesis import SynthesisTab
from realtime.panel.tabs.your_painting import YourPaintingTab
from realtime.panel.widgets import LayerMenus

INTRO = """# stylelens: paint your photos and webcam, and see what a CNN sees
Fast style transfer with the shipped paintings or your own, and every method of *Visualizing and
Understanding* (CS231n lecture 12) on your own images. For the lecture's methods pick the network above the
tabs; `efficientnet_lite0` works offline, `vgg16`/`vgg19` need their weights (torchvision's, in the torch hub
cache, or for `vgg16` the offline conversion, which has no classifier). Uploads: images up to {mb:g} MB,
shrunk to {side} px on the longer side."""


def refresh_picker() -> tuple[list, dict]:
    """The picker and the model menu with every style at hand now (a trained one included)."""
    return tile_images(tiles()), gr.update(choices=zoo_models())


def build_app(backbone_name: str = "efficientnet_lite0", ctx: PanelContext | None = None) -> gr.Blocks:
    """The Gradio page; ``backbone_name`` is the network selected when it opens; ``ctx`` holds the
    page's limits (upload size, resolution, gallery length), style folder and training preset."""
    ctx = ctx or PanelContext()
    sample, style_example = str(catalogue.SAMPLE_PHOTO), str(catalogue.SHIPPED_DIR / "starry_night.jpg")
    layers = LayerMenus(backbone_name)
    with gr.Blocks(title="stylelens", analytics_enabled=False, delete_cache=(1800, 3600)) as app:
        gr.Markdown(INTRO.format(mb=ctx.limits.max_upload_mb, side=ctx.limits.max_side))
        network = gr.Dropdown(list(BACKBONES), value=backbone_name, label="Network")
        picker, model, photo = FastStyleTab(ctx).build(sample)
        trained = YourPaintingTab(ctx).build(photo)
        if trained is not None:
            trained.then(refresh_picker, None, [picker, model], api_name=False, show_progress="hidden")
        app.load(refresh_picker, None, [picker, model], api_name="styles", show_progress="hidden")
        for tab in (FeaturesTab(ctx), AttributionTab(ctx), OptimisationTab(ctx), SynthesisTab(ctx)):
            tab.build(network, layers, sample, style_example)
        layers.follow(network)
    return app
