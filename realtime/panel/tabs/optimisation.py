"""The "Optimising the image" tab: class visualisation, fooling images and feature inversion."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr
import numpy as np

from models.common.images import tensor_to_rgb
from realtime.panel.inputs import errors_to_page, parse_class
from realtime.panel.tabs.base import MethodTab, label, missing_extra_note, reporter
from realtime.panel.widgets import DEFAULT_LAYERS, SLOW, LayerMenus, class_menu, examples, upload_image


class OptimisationTab(MethodTab):
    """Class visualisation, fooling images, feature inversion."""

    def build(self, network: gr.Dropdown, layers: LayerMenus, sample: str, style_example: str) -> None:
        backbone_name = layers.backbone_name
        defaults = DEFAULT_LAYERS[backbone_name]
        with gr.Tab("Optimising the image"), gr.Tabs():
            if missing_extra_note():
                return
            with gr.Tab("Class visualisation"):
                gr.Markdown("An image grown from noise to maximise one class score. `pixel`: the lecture's "
                            "regularisers (L2 decay, blur, clipping, jitter). `fourier`: a decorrelated Fourier "
                            "parametrisation with random jitter, scale and rotation (Lucid).")
                with gr.Row():
                    c_class = class_menu("Class", allow_empty=False, value="130: flamingo")
                    c_param = gr.Radio(["fourier", "pixel"], value="fourier", label="Parametrisation")
                with gr.Row():
                    c_steps = gr.Slider(10, 1000, value=200, step=10, label="Steps")
                    c_size = gr.Slider(64, 384, value=224, step=32, label="Size")
                    c_seed = gr.Number(value=0, precision=0, label="Seed")
                c_btn = gr.Button("Visualise", variant="primary")
                c_out = gr.Image(label="Class visualisation")
                c_text = gr.Textbox(label="Result", interactive=False)
                c_btn.click(self.class_visualization, [network, c_class, c_param, c_steps, c_size, c_seed],
                            [c_out, c_text], api_name="class_visualization", **SLOW)

            with gr.Tab("Fooling images"):
                gr.Markdown("The smallest change that makes the network see another class.")
                with gr.Row():
                    x_img = upload_image("Image")
                    x_class = class_menu("Target class", allow_empty=False, value="949: strawberry")
                    x_steps = gr.Slider(10, 500, value=100, step=10, label="Most steps")
                x_btn = gr.Button("Fool the network", variant="primary")
                with gr.Row():
                    x_orig = gr.Image(label="Original")
                    x_fooled = gr.Image(label="Fooled")
                    x_diff = gr.Image(label="Difference x10")
                x_text = gr.Textbox(label="Predictions", interactive=False, lines=3)
                examples(self.fooling, [network, x_img, x_class, x_steps], [x_orig, x_fooled, x_diff, x_text],
                         [backbone_name, sample, "949: strawberry", 100])
                x_btn.click(self.fooling, [network, x_img, x_class, x_steps], [x_orig, x_fooled, x_diff, x_text],
                            api_name="fooling", **SLOW)

            with gr.Tab("Feature inversion"):
                gr.Markdown("Images reconstructed from what each layer keeps (Mahendran & Vedaldi 2015): "
                            "early layers keep the pixels, deep layers keep what matters for the class.")
                with gr.Row():
                    i_img = upload_image("Image")
                    i_layers = layers.menu("Layers", "inversion", multiselect=True)
                i_steps = gr.Slider(20, 1000, value=200, step=20, label="Steps per layer")
                i_btn = gr.Button("Invert", variant="primary")
                i_out = gr.Gallery(label="Reconstructions, shallow to deep", columns=5, height="auto")
                examples(self.inversion, [network, i_img, i_layers, i_steps], [i_out], [backbone_name, sample, defaults["inversion"], 200])
                i_btn.click(self.inversion, [network, i_img, i_layers, i_steps], [i_out], api_name="inversion", **SLOW)

    @errors_to_page
    def class_visualization(self, backbone_name: str, target: str, param: str = "fourier", steps: int = 200,
                            size: int = 224, seed: int = 0, progress: gr.Progress = gr.Progress()) -> tuple[np.ndarray, str]:
        """An image made from noise to maximise one class score."""
        from visualize.class_vis import class_visualization as visualize_class

        model = self.model(backbone_name)
        cls = parse_class(target, model)
        if cls is None:
            raise gr.Error("Choose a class to visualise.")
        img, prob = visualize_class(model, cls, size=int(size), steps=int(steps), param=param, seed=int(seed),
                                    progress=reporter(progress, "ascent"))
        return tensor_to_rgb(img), f"{label(model, cls, prob)}"

    @errors_to_page
    def fooling(self, backbone_name: str, image, target: str, max_steps: int = 100,
                progress: gr.Progress = gr.Progress()) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """The image changed minimally until the network calls it ``target``."""
        from visualize.fooling import fooling_image

        model = self.model(backbone_name)
        cls = parse_class(target, model)
        if cls is None:
            raise gr.Error("Choose the class the network should be fooled into.")
        _, x = self.square_input(image)
        res = fooling_image(model, x, cls, max_steps=int(max_steps), progress=reporter(progress, "fooling"))
        text = (f"before: {label(model, res.original_class, res.original_prob)}\n"
                f"after: {label(model, res.fooled_class, res.fooled_prob)}\n"
                f"largest pixel change {res.linf * 255:.1f} / 255 after {res.steps} steps")
        return tensor_to_rgb(x), tensor_to_rgb(res.image), tensor_to_rgb(res.difference(10.0)), text

    @errors_to_page
    def inversion(self, backbone_name: str, image, layers: Sequence[str], steps: int = 200,
                  progress: gr.Progress = gr.Progress()) -> list:
        """Images reconstructed from the features of each chosen layer, shallow to deep."""
        from visualize.inversion import invert_layers

        model = self.model(backbone_name)
        if not layers:
            raise gr.Error("Choose at least one layer.")
        model.check_layers(layers)
        layers = sorted(layers, key=model.layer_names.index)
        rgb, x = self.square_input(image, side=160)
        out = invert_layers(model, x, layers, steps=int(steps), progress=reporter(progress, "inverting"))
        return [(rgb, "original")] + [(tensor_to_rgb(out[l]), l) for l in layers]
