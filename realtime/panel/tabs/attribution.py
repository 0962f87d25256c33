"""The "Attribution" tab: occlusion, saliency (plain and SmoothGrad), guided backprop and Grad-CAM."""

from __future__ import annotations

import cv2
import gradio as gr
import numpy as np

from models.common.images import colorize, overlay_heat
from realtime.panel.inputs import errors_to_page, parse_class
from realtime.panel.tabs.base import MethodTab, chw_to_rgb, label, missing_extra_note, reporter
from realtime.panel.widgets import SLOW, LayerMenus, class_menu, examples, upload_image


class AttributionTab(MethodTab):
    """Occlusion, saliency, guided backprop and Grad-CAM."""

    def build(self, network: gr.Dropdown, layers: LayerMenus, sample: str, style_example: str) -> None:
        backbone_name = layers.backbone_name
        with gr.Tab("Attribution"), gr.Tabs():
            if missing_extra_note():
                return
            with gr.Tab("Occlusion"):
                gr.Markdown("A grey square slides over the image; the map shows how much the class probability drops.")
                with gr.Row():
                    o_img = upload_image("Image")
                    o_heat = gr.Image(label="Probability drop")
                with gr.Row():
                    o_class = class_menu("Class")
                    o_size = gr.Slider(16, 112, value=80, step=8, label="Square size (px of 224)")
                    o_stride = gr.Slider(8, 56, value=40, step=8, label="Stride")
                o_btn = gr.Button("Occlude", variant="primary")
                o_text = gr.Textbox(label="Result", interactive=False)
                examples(self.occlusion, [network, o_img, o_class, o_size, o_stride], [o_heat, o_text],
                         [backbone_name, sample, None, 80, 40])
                o_btn.click(self.occlusion, [network, o_img, o_class, o_size, o_stride], [o_heat, o_text],
                            api_name="occlusion", **SLOW)

            with gr.Tab("Saliency"):
                gr.Markdown("Gradient of the class score with respect to the pixels (Simonyan et al. 2014); "
                            "SmoothGrad averages it over noisy copies.")
                with gr.Row():
                    s_img = upload_image("Image", elem_id="saliency-input")
                    s_over = gr.Image(label="Saliency over the image")
                    s_map = gr.Image(label="Saliency map")
                with gr.Row():
                    s_class = class_menu("Class")
                    s_smooth = gr.Slider(0, 32, value=0, step=1, label="SmoothGrad samples (0: plain gradient)")
                s_btn = gr.Button("Explain", variant="primary", elem_id="saliency-run")
                s_text = gr.Textbox(label="Result", interactive=False)
                examples(self.saliency, [network, s_img, s_class, s_smooth], [s_over, s_map, s_text], [backbone_name, sample, None, 0])
                s_btn.click(self.saliency, [network, s_img, s_class, s_smooth], [s_over, s_map, s_text],
                            api_name="saliency")

            with gr.Tab("Guided backprop & Grad-CAM"):
                gr.Markdown("Guided backpropagation lets only positive gradients through ReLUs (Springenberg et al. "
                            "2015), beside plain backprop; Grad-CAM weighs the last feature maps by their gradients.")
                with gr.Row():
                    g_img = upload_image("Image")
                    g_class = class_menu("Class")
                with gr.Row():
                    g_layer = layers.menu("Unit layer (empty: explain the class)", None)
                    g_channel = gr.Number(value=None, precision=0, minimum=0, label="Unit channel (empty: strongest)")
                g_btn = gr.Button("Explain", variant="primary")
                with gr.Row():
                    g_guided = gr.Image(label="Guided backprop")
                    g_plain = gr.Image(label="Plain backprop")
                    g_cam = gr.Image(label="Grad-CAM")
                g_text = gr.Textbox(label="Result", interactive=False)
                examples(self.guided, [network, g_img, g_class, g_layer, g_channel], [g_guided, g_plain, g_cam, g_text],
                         [backbone_name, sample, None, None, None])
                g_btn.click(self.guided, [network, g_img, g_class, g_layer, g_channel],
                            [g_guided, g_plain, g_cam, g_text], api_name="guided")

    @errors_to_page
    def occlusion(self, backbone_name: str, image, target: str | None = None, size: int = 80, stride: int = 40,
                  progress: gr.Progress = gr.Progress()) -> tuple[np.ndarray, str]:
        """Heat map of the drop in the class probability when a grey square hides each region."""
        from visualize.occlusion import occlusion as occlude

        model = self.model(backbone_name)
        rgb, x = self.square_input(image)
        heat, cls = occlude(model, x, parse_class(target, model), size=int(size), stride=int(stride),
                            progress=reporter(progress, "occluding"))
        heat = heat.cpu().numpy()
        shown = np.clip(heat, 0, None) / max(float(heat.max()), 1e-6)
        return overlay_heat(rgb, shown), f"explaining {label(model, cls)}; largest drop {float(heat.max()):.3f}"

    @errors_to_page
    def saliency(self, backbone_name: str, image, target: str | None = None, smooth_samples: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
        """|d score / d pixel| as an overlay and as a map (SmoothGrad when samples > 0)."""
        from visualize.attribution import saliency as grad_saliency

        model = self.model(backbone_name)
        rgb, x = self.square_input(image)
        sal, cls = grad_saliency(model, x, parse_class(target, model), smooth_samples=int(smooth_samples))
        m = sal[0].cpu().numpy()
        return overlay_heat(rgb, m), colorize(m, cv2.COLORMAP_HOT), f"explaining {label(model, cls)}"

    @errors_to_page
    def guided(self, backbone_name: str, image, target: str | None = None, layer: str | None = None,
               channel: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """Guided backprop beside plain backprop (for a class, or for one unit of ``layer``), and Grad-CAM."""
        from visualize.attribution import grad_cam, guided_backprop

        model = self.model(backbone_name)
        rgb, x = self.square_input(image)
        cls = parse_class(target, model)
        unit = dict(layer=layer or None, channel=None if layer in (None, "") or channel in (None, "", -1) else int(channel))
        g, explained = guided_backprop(model, x, cls, guided=True, **unit)
        plain, _ = guided_backprop(model, x, cls, guided=False, **unit)
        cam, cam_cls = grad_cam(model, x, cls)
        what = (f"unit: {layer} channel {explained}" if unit["layer"] else f"class {label(model, explained)}")
        return (chw_to_rgb(g), chw_to_rgb(plain), overlay_heat(rgb, cam.cpu().numpy()),
                f"backprop of {what}; Grad-CAM of {label(model, cam_cls)} at {model.cam_layer}")
