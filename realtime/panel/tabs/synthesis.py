"""The "Synthesis" tab: DeepDream, texture synthesis and Gatys style transfer."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr
import numpy as np

from models.common.images import tensor_to_rgb
from realtime.panel.inputs import errors_to_page, to_tensor
from realtime.panel.tabs.base import MethodTab, missing_extra_note, reporter
from realtime.panel.widgets import DEFAULT_LAYERS, SLOW, LayerMenus, examples, upload_image


class SynthesisTab(MethodTab):
    """DeepDream, texture synthesis, Gatys style transfer."""

    def build(self, network: gr.Dropdown, layers: LayerMenus, sample: str, style_example: str) -> None:
        backbone_name = layers.backbone_name
        defaults = DEFAULT_LAYERS[backbone_name]
        with gr.Tab("Synthesis"), gr.Tabs():
            if missing_extra_note():
                return
            with gr.Tab("DeepDream"):
                gr.Markdown("Amplify what a layer sees, from coarse to fine octaves, with jitter.")
                with gr.Row():
                    d_img = upload_image("Image")
                    d_out = gr.Image(label="Dream")
                with gr.Row():
                    d_layer = layers.menu("Layer", "deepdream")
                    d_oct = gr.Slider(1, 6, value=4, step=1, label="Octaves")
                    d_scale = gr.Slider(1.1, 2.0, value=1.4, step=0.1, label="Octave scale")
                    d_steps = gr.Slider(1, 40, value=10, step=1, label="Steps per octave")
                    d_side = gr.Slider(128, 1024, value=512, step=64, label="Longer side")
                d_btn = gr.Button("Dream", variant="primary")
                examples(self.deepdream, [network, d_img, d_layer, d_oct, d_scale, d_steps, d_side], [d_out],
                         [backbone_name, sample, defaults["deepdream"], 4, 1.4, 10, 512])
                d_btn.click(self.deepdream, [network, d_img, d_layer, d_oct, d_scale, d_steps, d_side], [d_out],
                            api_name="deepdream", **SLOW)

            with gr.Tab("Texture synthesis"):
                gr.Markdown("A new image from noise whose Gram matrices match the example's: shallow layers keep "
                            "colour and fine grain, deeper ones larger structures.")
                with gr.Row():
                    y_img = upload_image("Texture")
                    y_out = gr.Image(label="Synthesised")
                y_layers = layers.menu("Layers (none: the network's style layers)", None, multiselect=True)
                with gr.Row():
                    y_size = gr.Slider(64, 512, value=192, step=32, label="Size")
                    y_steps = gr.Slider(10, 1000, value=200, step=10, label="Steps")
                y_btn = gr.Button("Synthesise", variant="primary")
                y_text = gr.Textbox(label="Loss", interactive=False)
                examples(self.texture, [network, y_img, y_layers, y_size, y_steps], [y_out, y_text],
                         [backbone_name, style_example, [], 192, 200])
                y_btn.click(self.texture, [network, y_img, y_layers, y_size, y_steps], [y_out, y_text],
                            api_name="texture", **SLOW)

            with gr.Tab("Style transfer (Gatys)"):
                gr.Markdown("Style transfer by optimisation: content from one image, Gram-matrix style from one or "
                            "more paintings, blended by weight. Colour preservation transfers luminance only; "
                            "scales > 1 work coarse to fine for large images.")
                with gr.Row():
                    a_content = upload_image("Content")
                    a_styles = gr.File(label="Style images", file_count="multiple", file_types=["image"], type="filepath")
                    a_out = gr.Image(label="Result")
                with gr.Row():
                    a_blend = gr.Textbox(label="Blend weights", placeholder="e.g. 0.7, 0.3 (empty: equal)")
                    a_size = gr.Slider(128, 1024, value=384, step=64, label="Longer side")
                    a_steps = gr.Slider(10, 1000, value=200, step=10, label="Steps")
                    a_opt = gr.Radio(["lbfgs", "adam"], value="lbfgs", label="Optimiser")
                with gr.Row():
                    a_cw = gr.Number(value=None, label="Content weight (empty: default)")
                    a_sw = gr.Number(value=None, label="Style weight (empty: default)")
                    a_tv = gr.Number(value=None, label="TV weight (empty: default)")
                    a_color = gr.Checkbox(label="Preserve colour")
                    a_scales = gr.Slider(1, 4, value=1, step=1, label="Scales")
                a_btn = gr.Button("Transfer", variant="primary")
                a_text = gr.Textbox(label="Losses", interactive=False)
                examples(self.gatys, [network, a_content, a_styles, a_blend, a_size, a_cw, a_sw, a_tv, a_color, a_scales,
                                          a_opt, a_steps], [a_out, a_text],
                         [backbone_name, sample, [style_example], "", 384, None, None, None, False, 1, "lbfgs", 200])
                a_btn.click(self.gatys, [network, a_content, a_styles, a_blend, a_size, a_cw, a_sw, a_tv, a_color,
                                            a_scales, a_opt, a_steps], [a_out, a_text], api_name="gatys", **SLOW)

    @errors_to_page
    def deepdream(self, backbone_name: str, image, layer: str, octaves: int = 4, octave_scale: float = 1.4, steps: int = 10,
                  max_side: int = 512, progress: gr.Progress = gr.Progress()) -> np.ndarray:
        """DeepDream with octaves and jitter at one layer."""
        from visualize.deepdream import deepdream as dream

        model = self.model(backbone_name)
        x = to_tensor(self.image(image, max_side=int(max_side)))
        return tensor_to_rgb(dream(model, x, layer, octaves=int(octaves), octave_scale=float(octave_scale),
                                   steps=int(steps), progress=reporter(progress, "dreaming")))

    @errors_to_page
    def texture(self, backbone_name: str, image, layers: Sequence[str], size: int = 192, steps: int = 200,
                progress: gr.Progress = gr.Progress()) -> tuple[np.ndarray, str]:
        """A new texture from noise whose Gram matrices at ``layers`` match the example's."""
        from visualize.synthesis import texture_synthesis

        model = self.model(backbone_name)
        x = to_tensor(self.image(image, "a texture", max_side=int(size)))
        res = texture_synthesis(model, x, layers=list(layers) or None, steps=int(steps),
                                progress=reporter(progress, "synthesising"))
        return tensor_to_rgb(res.image), f"Gram loss {res.initial_loss:.3g} -> {res.final_loss:.3g}"

    @errors_to_page
    def gatys(self, backbone_name: str, content, style_files: Sequence | None, blend: str = "", size: int = 384,
              content_weight: float | None = None, style_weight: float | None = None, tv_weight: float | None = None,
              preserve_color: bool = False, scales: int = 1, optimizer: str = "lbfgs", steps: int = 200,
              progress: gr.Progress = gr.Progress()) -> tuple[np.ndarray, str]:
        """Style transfer by optimisation (Gatys et al.), several styles with blend weights."""
        from visualize.style_transfer import style_transfer

        model = self.model(backbone_name)
        if not style_files:
            raise gr.Error("Upload at least one style image.")
        c = to_tensor(self.image(content, "a content image", max_side=int(size)))
        styles = [to_tensor(self.image(f, "a style image", max_side=int(size))) for f in style_files]
        res = style_transfer(model, c, styles, style_blend=parse_weights(blend, len(styles)),
                             content_weight=content_weight or None, style_weight=style_weight or None,
                             tv_weight=tv_weight if tv_weight not in (None, "") else None,
                             preserve_color=bool(preserve_color), scales=int(scales), optimizer=optimizer,
                             steps=int(steps), progress=reporter(progress, "optimising"))
        start, end = res.initial, res.final
        text = " · ".join(f"{k} {getattr(start, k):.3g} -> {getattr(end, k):.3g}" for k in ("content", "style", "tv", "total"))
        return tensor_to_rgb(res.image), text


def parse_weights(text: str | None, count: int) -> list[float] | None:
    """'0.7, 0.3' -> [0.7, 0.3]; empty -> None (equal weights)."""
    if not text or not text.strip():
        return None
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise gr.Error(f"blend weights {text!r}: give numbers separated by commas") from None
    if len(values) != count:
        raise gr.Error(f"{len(values)} blend weights for {count} style images")
    return values
