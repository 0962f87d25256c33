"""The page's shared pieces of layout: uploads checked at the door, galleries, class menus,
examples that show their result, and layer menus that follow the network menu."""

from __future__ import annotations

import contextlib
import io

import gradio as gr

from models.common.errors import first_line
from models.layers import backbone_layers

# Slow methods share one queue slot, so a second user waits instead of halving everyone's speed.
SLOW = dict(concurrency_limit=1, concurrency_id="slow")
# Layers each method starts with, per backbone: where the method shows something worth seeing.
DEFAULT_LAYERS: dict[str, dict[str, str | list[str]]] = {
    "efficientnet_lite0": {"filters": "block3", "patches": "block7", "deepdream": "block10",
                           "inversion": ["block1", "block4", "block7", "block10"], "unit": "block7"},
    "vgg16": {"filters": "conv2_1", "patches": "relu4_3", "deepdream": "relu4_3",
              "inversion": ["relu1_2", "relu2_2", "relu3_3", "relu4_3"], "unit": "relu4_3"},
    "vgg19": {"filters": "conv2_1", "patches": "relu4_4", "deepdream": "relu4_4",
              "inversion": ["relu1_2", "relu2_2", "relu3_4", "relu4_4"], "unit": "relu4_4"},
}


def upload_image(label: str, **kwargs) -> gr.Image:
    """An image input that hands the handler the uploaded file's path, checked by ``load_image``.

    Gradio opens uploads with PIL before the event runs; a text file named .jpg or a
    decompression bomb would otherwise surface as a bare exception. The component's own
    ``preprocess`` is wrapped so those become one clear line in the page. (A subclass would
    do the same, but Gradio writes a .pyi stub beside the module of every Component subclass.)
    """
    image = gr.Image(label=label, type="filepath", sources=["upload", "clipboard"], **kwargs)
    preprocess = image.preprocess

    def checked_preprocess(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:  # PIL's UnidentifiedImageError, DecompressionBombError, OSError...
            name = getattr(payload, "orig_name", None) or "the upload"
            if type(e).__name__ == "DecompressionBombError":
                raise gr.Error(f"{name}: image is too large ({first_line(e).split(' exceeds')[0]})") from None
            detail = first_line(e).replace(f"'{getattr(payload, 'path', '')}'", "").strip()
            raise gr.Error(f"{name}: not a readable image ({type(e).__name__}: {detail})") from None

    image.preprocess = checked_preprocess
    return image


def gallery_input(label: str = "Gallery: images or a video (empty: the bundled samples)") -> gr.File:
    return gr.File(label=label, file_count="multiple", file_types=["image", "video"], type="filepath")


def class_menu(label: str, allow_empty: bool = True, value: str | None = None) -> gr.Dropdown:
    from realtime.panel.inputs import class_choices

    info = "empty: the top predicted class" if allow_empty else "type to search"
    return gr.Dropdown(class_choices(), value=value, label=label, info=info, allow_custom_value=True,
                       filterable=True)


def examples(fn, inputs: list, outputs: list, *rows: list, elem_id: str | None = None) -> gr.Examples:
    """Examples that show their result: Gradio's cache, filled at each example's first use
    (never at import or start-up: the slow methods take minutes on a CPU).

    Quiet: Gradio prints a line per example set at start-up."""
    with contextlib.redirect_stdout(io.StringIO()):
        return gr.Examples(list(rows), inputs, outputs, fn=fn, cache_examples=True, cache_mode="lazy",
                           api_name=False, elem_id=elem_id)


class LayerMenus:
    """Layer menus of the method tabs, which follow the network menu (:meth:`follow`)."""

    def __init__(self, backbone_name: str):
        self.backbone_name = backbone_name
        self.menus: list[tuple[gr.Dropdown, str | None]] = []

    def menu(self, label: str, key: str | None, **kwargs) -> gr.Dropdown:
        """A menu of the network's layers starting at the method's default (``DEFAULT_LAYERS[..][key]``).

        Custom values pass Gradio's check, so API callers may name another network's layers; the
        handler checks them against the chosen network."""
        default = DEFAULT_LAYERS[self.backbone_name].get(key) if key else None
        menu = gr.Dropdown(backbone_layers(self.backbone_name), value=default, label=label, allow_custom_value=True,
                           **kwargs)
        self.menus.append((menu, key))
        return menu

    def follow(self, network: gr.Dropdown) -> None:
        """When the network changes, every menu gets its layers and its method's default."""
        if not self.menus:
            return

        def update(name: str):
            names, d = backbone_layers(name), DEFAULT_LAYERS[name]
            return [gr.update(choices=names, value=d.get(key) if key else ([] if menu.multiselect else None))
                    for menu, key in self.menus]

        network.change(update, [network], [m for m, _ in self.menus], api_name=False)
