"""The "Filters & features" tab: the first layers' filters, nearest neighbours, t-SNE and the
patches that excite one unit most."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr
import numpy as np

from models.common.images import center_square
from realtime.panel.inputs import device, errors_to_page, load_gallery, to_tensor
from realtime.panel.tabs.base import MethodTab, chw_to_rgb, grey, missing_extra_note, reporter
from realtime.panel.widgets import SLOW, LayerMenus, examples, gallery_input, upload_image


class FeaturesTab(MethodTab):
    """Filters, nearest neighbours, t-SNE, max patches."""

    def build(self, network: gr.Dropdown, layers: LayerMenus, sample: str, style_example: str) -> None:
        backbone_name = layers.backbone_name
        with gr.Tab("Filters & features"), gr.Tabs():
            if missing_extra_note():
                return
            with gr.Tab("Filters"):
                gr.Markdown("The first layer's kernels in colour (they look like Gabor filters and colour blobs), "
                            "and a deeper layer's kernels, one grey tile per input channel.")
                f_layer = layers.menu("Layer", "filters")
                f_btn = gr.Button("Show filters", variant="primary", elem_id="filters-run")
                with gr.Row():
                    f_first = gr.Image(label="First layer", format="png", elem_id="filters-first")
                    f_grid = gr.Image(label="Chosen layer (rows: filters, columns: input channels)", format="png")
                f_btn.click(self.filters, [network, f_layer], [f_first, f_grid], api_name="filters")

            with gr.Tab("Nearest neighbours"):
                gr.Markdown("The gallery images nearest to the query by the network's penultimate features, "
                            "beside the nearest by raw pixels.")
                with gr.Row():
                    n_query = upload_image("Query")
                    n_files = gallery_input()
                n_k = gr.Slider(1, 16, value=5, step=1, label="k")
                n_btn = gr.Button("Find neighbours", variant="primary")
                n_feat = gr.Gallery(label="Nearest by features", columns=8, height="auto")
                n_pix = gr.Gallery(label="Nearest by pixels", columns=8, height="auto")
                examples(self.neighbours, [network, n_query, n_files, n_k], [n_feat, n_pix], [backbone_name, sample, None, 5])
                n_btn.click(self.neighbours, [network, n_query, n_files, n_k], [n_feat, n_pix], api_name="neighbours")

            with gr.Tab("t-SNE"):
                gr.Markdown("The gallery's features embedded in 2-D by t-SNE: similar images land together.")
                t_files = gallery_input()
                t_btn = gr.Button("Embed", variant="primary")
                t_map = gr.Image(label="t-SNE map", format="jpeg")
                t_btn.click(self.tsne, [network, t_files], [t_map], api_name="tsne", **SLOW)

            with gr.Tab("Max patches"):
                gr.Markdown("The gallery patches that excite one channel most, cropped to the unit's receptive field.")
                p_files = gallery_input()
                with gr.Row():
                    p_layer = layers.menu("Layer", "patches")
                    p_channel = gr.Number(value=0, precision=0, minimum=0, label="Channel")
                    p_k = gr.Slider(1, 25, value=9, step=1, label="Patches")
                p_btn = gr.Button("Find patches", variant="primary")
                p_out = gr.Gallery(label="Patches, strongest first", columns=9, height="auto")
                p_info = gr.Textbox(label="Unit", interactive=False)
                p_btn.click(self.patches, [network, p_files, p_layer, p_channel, p_k], [p_out, p_info],
                            api_name="patches", **SLOW)

    @errors_to_page
    def filters(self, backbone_name: str, layer: str) -> tuple[np.ndarray, np.ndarray | None]:
        """First-layer kernels in colour, and the kernels of ``layer`` as grey grids."""
        from visualize.filters import first_layer_filters, layer_filters

        model = self.model(backbone_name)
        first = chw_to_rgb(first_layer_filters(model))
        grid = grey(layer_filters(model, layer)) if layer else None
        return first, grid

    @errors_to_page
    def neighbours(self, backbone_name: str, query, gallery_files: Sequence | None, k: int = 5,
                   progress: gr.Progress = gr.Progress()) -> tuple[list, list]:
        """The k nearest gallery images to the query by penultimate features, and by pixels."""
        from visualize.neighbours import embed, nearest_neighbours

        model = self.model(backbone_name)
        batch, squares, captions = load_gallery(gallery_files, size=160, limits=self.ctx.limits)
        q = self.image(query, "a query image")
        qt = to_tensor(center_square(q, 160))
        gallery = batch.to(qt.device)
        feats = embed(model, gallery, progress=reporter(progress, "features"))
        nb = nearest_neighbours(model, qt, gallery, k=int(k), gallery_features=feats)
        by_feature = [(squares[i], f"{captions[i]} (d = {d:.3f})")
                      for i, d in zip(nb.feature_index, nb.feature_distance.tolist())]
        by_pixel = [(squares[i], f"{captions[i]} (d = {d:.1f})")
                    for i, d in zip(nb.pixel_index, nb.pixel_distance.tolist())]
        return by_feature, by_pixel

    @errors_to_page
    def tsne(self, backbone_name: str, gallery_files: Sequence | None, progress: gr.Progress = gr.Progress()) -> np.ndarray:
        """The gallery laid out by t-SNE of its features, thumbnails at their points."""
        from visualize.neighbours import embed, tsne_map

        model = self.model(backbone_name)
        batch, _, _ = load_gallery(gallery_files, size=160, limits=self.ctx.limits)
        if len(batch) < 3:
            raise gr.Error("t-SNE needs at least 3 images")
        feats = embed(model, batch.to(device()), progress=reporter(progress, "features"))
        canvas, _ = tsne_map(feats.cpu(), batch)
        return chw_to_rgb(canvas)

    @errors_to_page
    def patches(self, backbone_name: str, gallery_files: Sequence | None, layer: str, channel: int = 0, k: int = 9,
                progress: gr.Progress = gr.Progress()) -> tuple[list, str]:
        """The k gallery patches that excite one channel of a layer most, cropped to its receptive field."""
        from visualize.patches import max_activating_patches

        model = self.model(backbone_name)
        batch, _, captions = load_gallery(gallery_files, size=224, limits=self.ctx.limits)
        # An unknown layer or a channel out of range is a ValueError there: one line in the page.
        res = max_activating_patches(model, batch.to(device()), layer, int(channel), k=int(k),
                                     progress=reporter(progress, "activations"))
        items = [(chw_to_rgb(img), f"{a:.2f} · {captions[src[0]]}")
                 for img, a, src in zip(res.images, res.activations.tolist(), res.sources)]
        return items, f"{layer} channel {int(channel)}: receptive field {res.receptive_field} px"
