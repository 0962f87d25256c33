"""The page: fast style first (a picker of paintings, strength, colour, webcam, your own painting),
then one tab per method of "Visualizing and Understanding" CNNs.

Layout only; the work happens in ``realtime.panel.methods``. Every event has an API
name (``/saliency``, ``/deepdream``, ...) so ``gradio_client`` and scripts can call it.
Slow methods share one queue slot ("slow"), so a second user waits instead of
halving everyone's speed.
"""

from __future__ import annotations

import gradio as gr

from models import catalogue
from models.backbones import BACKBONES, backbone_layers
from realtime.panel import methods
from realtime.panel import inputs
from realtime.panel.inputs import class_choices, upload_image
from realtime.panel import train_tab
from realtime.panel.styles import tile_images, tiles, zoo_models

SLOW = dict(concurrency_limit=1, concurrency_id="slow")
INTRO = """# stylelens: paint your photos and webcam, and see what a CNN sees
Fast style transfer with the shipped paintings or your own, and every method of *Visualizing and
Understanding* (CS231n lecture 12) on your own images. For the lecture's methods pick the network above the tabs; `efficientnet_lite0` works offline,
`vgg16`/`vgg19` need their torchvision weights in the torch hub cache. Uploads: images up to
{mb:g} MB, shrunk to {side} px on the longer side."""


def _gallery_input(label: str = "Gallery: images or a video (empty: the bundled samples)") -> gr.File:
    return gr.File(label=label, file_count="multiple", file_types=["image", "video"], type="filepath")


def _class_menu(label: str, allow_empty: bool = True, value: str | None = None) -> gr.Dropdown:
    info = "empty: the top predicted class" if allow_empty else "type to search"
    return gr.Dropdown(class_choices(), value=value, label=label, info=info, allow_custom_value=True,
                       filterable=True)


def _examples(fn, inputs: list, outputs: list, *rows: list, elem_id: str | None = None) -> gr.Examples:
    """Examples that show their result: Gradio's cache, filled at each example's first use
    (never at import or start-up: the slow methods take minutes on a CPU)."""
    return gr.Examples(list(rows), inputs, outputs, fn=fn, cache_examples=True, cache_mode="lazy", api_name=False,
                       elem_id=elem_id)


def refresh_picker() -> tuple[list, dict]:
    """The picker and the model menu with every style at hand now (a trained one included)."""
    return tile_images(tiles()), gr.update(choices=zoo_models())


def build_app(backbone_name: str = "efficientnet_lite0", limits: inputs.Limits | None = None) -> gr.Blocks:
    """The Gradio page; ``backbone_name`` is the network selected when it opens.

    ``limits`` (upload size, resolution, gallery length) apply to every handler of the process.
    """
    if limits is not None:
        inputs.LIMITS = limits
    layers = backbone_layers(backbone_name)
    defaults = methods.DEFAULT_LAYERS[backbone_name]
    sample, style_example = str(catalogue.SAMPLE_PHOTO), str(catalogue.SHIPPED_DIR / "starry_night.jpg")
    layer_menus: list[tuple[gr.components.Component, str | None]] = []  # follow the network menu

    def layer_menu(label: str, key: str | None, **kwargs) -> gr.Dropdown:
        # Custom values pass Gradio's check, so API callers may name another network's layers;
        # the handler checks them against the chosen network.
        menu = gr.Dropdown(layers, value=defaults.get(key) if key else None, label=label, allow_custom_value=True,
                           **kwargs)
        layer_menus.append((menu, key))
        return menu

    with gr.Blocks(title="stylelens", analytics_enabled=False, delete_cache=(1800, 3600)) as app:
        gr.Markdown(INTRO.format(mb=inputs.LIMITS.max_upload_mb, side=inputs.LIMITS.max_side))
        network = gr.Dropdown(list(BACKBONES), value=backbone_name, label="Network")

        with gr.Tab("Fast style", id="fast-style"):
            gr.Markdown("Trained feed-forward style networks (Johnson et al. 2016) through ONNX Runtime. "
                        "Click a painting to paint your photo in its style.")
            picker = gr.Gallery(tile_images(tiles()), label="Style: click a painting", columns=8, height=330,
                                allow_preview=False, object_fit="cover", elem_id="style-picker")
            models = zoo_models()
            # The chosen model and style (or blend): set by the picker and the sliders, named in the API.
            z_model = gr.Dropdown(models, value=models[0], label="Style model", allow_custom_value=True,
                                  visible=False)
            z_blend = gr.Textbox(label="Style or blend", visible=False)
            z_info = gr.Markdown(f"**{tiles()[0].style}**", elem_id="style-chosen")
            with gr.Row(visible=True):
                z_sliders = [gr.Slider(0, 100, value=0, step=1, label="", visible=False, elem_id=f"blend-{i}")
                             for i in range(methods.MAX_BLEND_SLIDERS)]
            with gr.Row():
                z_strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength (0: the photo, 1: full style)",
                                       elem_id="style-strength")
                z_color = gr.Checkbox(label="Preserve colour (the photo's colours, the style's strokes)",
                                      elem_id="style-color")
            finish = [z_strength, z_color]
            with gr.Tabs():
                with gr.Tab("Photo"):
                    with gr.Row():
                        z_img = upload_image("Photo", value=sample, elem_id="style-photo")
                        z_out = gr.Image(label="Stylised", format="jpeg", elem_id="style-output")
                    z_btn = gr.Button("Stylise", variant="primary", elem_id="style-run")
                    _examples(methods.fast_style, [z_img, z_model, z_blend, z_strength, z_color], [z_out],
                              [sample, "udnie_lite", "", 1.0, False], [sample, "five_styles_lite",
                                                                        "starry_night=0.5, the_scream=0.5", 0.8, True],
                              elem_id="style-examples")
                with gr.Tab("Webcam"):
                    gr.Markdown("Frames are stylised as they arrive; one frame is in flight at a time.")
                    with gr.Row():
                        cam = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Webcam",
                                       elem_id="webcam", webcam_options=gr.WebcamOptions(
                                           constraints={"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}))
                        live = gr.Image(streaming=True, format="jpeg", label="Live stylised", elem_id="live-output")
                with gr.Tab("Video"):
                    gr.Markdown("Every frame at its own time, with the clip's sound, as H.264 in .mp4.")
                    with gr.Row():
                        v_in = gr.File(label="Video", file_types=["video"], elem_id="style-video-in")
                        v_out = gr.Video(label="Stylised video", format=None, elem_id="style-video-out")
                    v_btn = gr.Button("Stylise the video", variant="primary", elem_id="style-video-run")
            style_in = [z_img, z_model, z_blend, *finish]
            z_btn.click(methods.fast_style, style_in, [z_out], api_name="fast_style")
            picker.select(methods.pick_style, [z_img, *finish], [z_model, z_blend, z_info, z_out, *z_sliders],
                          api_name=False)
            for slider in z_sliders:
                slider.release(methods.blend_sliders, [z_img, z_model, *finish, *z_sliders], [z_blend, z_info, z_out],
                               api_name=False)
            z_strength.release(methods.fast_style, style_in, [z_out], api_name=False)
            z_color.input(methods.fast_style, style_in, [z_out], api_name=False)
            z_img.upload(methods.fast_style, style_in, [z_out], api_name=False)
            v_btn.click(methods.fast_style_video, [v_in, z_model, z_blend, *finish], [v_out],
                        api_name="fast_style_video", **SLOW)
            cam.stream(methods.stream_style, [cam, z_model, z_blend, *finish], [live], stream_every=0.05,
                       time_limit=600, concurrency_limit=2, api_name="stream_style")

        with gr.Tab("Your painting", id="your-painting"):
            _, trained = train_tab.build_tab(z_img)
            trained.then(refresh_picker, None, [picker, z_model], api_name=False, show_progress="hidden")
        app.load(refresh_picker, None, [picker, z_model], api_name="styles", show_progress="hidden")  # styles trained since start-up

        with gr.Tab("Filters & features"), gr.Tabs():
            with gr.Tab("Filters"):
                gr.Markdown("The first layer's kernels in colour (they look like Gabor filters and colour blobs), "
                            "and a deeper layer's kernels, one grey tile per input channel.")
                f_layer = layer_menu("Layer", "filters")
                f_btn = gr.Button("Show filters", variant="primary", elem_id="filters-run")
                with gr.Row():
                    f_first = gr.Image(label="First layer", format="png", elem_id="filters-first")
                    f_grid = gr.Image(label="Chosen layer (rows: filters, columns: input channels)", format="png")
                f_btn.click(methods.filters, [network, f_layer], [f_first, f_grid], api_name="filters")

            with gr.Tab("Nearest neighbours"):
                gr.Markdown("The gallery images nearest to the query by the network's penultimate features, "
                            "beside the nearest by raw pixels.")
                with gr.Row():
                    n_query = upload_image("Query")
                    n_files = _gallery_input()
                n_k = gr.Slider(1, 16, value=5, step=1, label="k")
                n_btn = gr.Button("Find neighbours", variant="primary")
                n_feat = gr.Gallery(label="Nearest by features", columns=8, height="auto")
                n_pix = gr.Gallery(label="Nearest by pixels", columns=8, height="auto")
                _examples(methods.neighbours, [network, n_query, n_files, n_k], [n_feat, n_pix], [backbone_name, sample, None, 5])
                n_btn.click(methods.neighbours, [network, n_query, n_files, n_k], [n_feat, n_pix], api_name="neighbours")

            with gr.Tab("t-SNE"):
                gr.Markdown("The gallery's features embedded in 2-D by t-SNE: similar images land together.")
                t_files = _gallery_input()
                t_btn = gr.Button("Embed", variant="primary")
                t_map = gr.Image(label="t-SNE map", format="jpeg")
                t_btn.click(methods.tsne, [network, t_files], [t_map], api_name="tsne", **SLOW)

            with gr.Tab("Max patches"):
                gr.Markdown("The gallery patches that excite one channel most, cropped to the unit's receptive field.")
                p_files = _gallery_input()
                with gr.Row():
                    p_layer = layer_menu("Layer", "patches")
                    p_channel = gr.Number(value=0, precision=0, minimum=0, label="Channel")
                    p_k = gr.Slider(1, 25, value=9, step=1, label="Patches")
                p_btn = gr.Button("Find patches", variant="primary")
                p_out = gr.Gallery(label="Patches, strongest first", columns=9, height="auto")
                p_info = gr.Textbox(label="Unit", interactive=False)
                p_btn.click(methods.patches, [network, p_files, p_layer, p_channel, p_k], [p_out, p_info],
                            api_name="patches", **SLOW)

        with gr.Tab("Attribution"), gr.Tabs():
            with gr.Tab("Occlusion"):
                gr.Markdown("A grey square slides over the image; the map shows how much the class probability drops.")
                with gr.Row():
                    o_img = upload_image("Image")
                    o_heat = gr.Image(label="Probability drop")
                with gr.Row():
                    o_class = _class_menu("Class")
                    o_size = gr.Slider(16, 112, value=80, step=8, label="Square size (px of 224)")
                    o_stride = gr.Slider(8, 56, value=40, step=8, label="Stride")
                o_btn = gr.Button("Occlude", variant="primary")
                o_text = gr.Textbox(label="Result", interactive=False)
                _examples(methods.occlusion, [network, o_img, o_class, o_size, o_stride], [o_heat, o_text],
                          [backbone_name, sample, None, 80, 40])
                o_btn.click(methods.occlusion, [network, o_img, o_class, o_size, o_stride], [o_heat, o_text],
                            api_name="occlusion", **SLOW)

            with gr.Tab("Saliency"):
                gr.Markdown("Gradient of the class score with respect to the pixels (Simonyan et al. 2014); "
                            "SmoothGrad averages it over noisy copies.")
                with gr.Row():
                    s_img = upload_image("Image", elem_id="saliency-input")
                    s_over = gr.Image(label="Saliency over the image")
                    s_map = gr.Image(label="Saliency map")
                with gr.Row():
                    s_class = _class_menu("Class")
                    s_smooth = gr.Slider(0, 32, value=0, step=1, label="SmoothGrad samples (0: plain gradient)")
                s_btn = gr.Button("Explain", variant="primary", elem_id="saliency-run")
                s_text = gr.Textbox(label="Result", interactive=False)
                _examples(methods.saliency, [network, s_img, s_class, s_smooth], [s_over, s_map, s_text], [backbone_name, sample, None, 0])
                s_btn.click(methods.saliency, [network, s_img, s_class, s_smooth], [s_over, s_map, s_text],
                            api_name="saliency")

            with gr.Tab("Guided backprop & Grad-CAM"):
                gr.Markdown("Guided backpropagation lets only positive gradients through ReLUs (Springenberg et al. "
                            "2015), beside plain backprop; Grad-CAM weighs the last feature maps by their gradients.")
                with gr.Row():
                    g_img = upload_image("Image")
                    g_class = _class_menu("Class")
                with gr.Row():
                    g_layer = layer_menu("Unit layer (empty: explain the class)", None)
                    g_channel = gr.Number(value=None, precision=0, minimum=0, label="Unit channel (empty: strongest)")
                g_btn = gr.Button("Explain", variant="primary")
                with gr.Row():
                    g_guided = gr.Image(label="Guided backprop")
                    g_plain = gr.Image(label="Plain backprop")
                    g_cam = gr.Image(label="Grad-CAM")
                g_text = gr.Textbox(label="Result", interactive=False)
                _examples(methods.guided, [network, g_img, g_class, g_layer, g_channel], [g_guided, g_plain, g_cam, g_text],
                          [backbone_name, sample, None, None, None])
                g_btn.click(methods.guided, [network, g_img, g_class, g_layer, g_channel],
                            [g_guided, g_plain, g_cam, g_text], api_name="guided")

        with gr.Tab("Optimising the image"), gr.Tabs():
            with gr.Tab("Class visualisation"):
                gr.Markdown("An image grown from noise to maximise one class score. `pixel`: the lecture's "
                            "regularisers (L2 decay, blur, clipping, jitter). `fourier`: a decorrelated Fourier "
                            "parametrisation with random jitter, scale and rotation (Lucid).")
                with gr.Row():
                    c_class = _class_menu("Class", allow_empty=False, value="130: flamingo")
                    c_param = gr.Radio(["fourier", "pixel"], value="fourier", label="Parametrisation")
                with gr.Row():
                    c_steps = gr.Slider(10, 1000, value=200, step=10, label="Steps")
                    c_size = gr.Slider(64, 384, value=224, step=32, label="Size")
                    c_seed = gr.Number(value=0, precision=0, label="Seed")
                c_btn = gr.Button("Visualise", variant="primary")
                c_out = gr.Image(label="Class visualisation")
                c_text = gr.Textbox(label="Result", interactive=False)
                c_btn.click(methods.class_visualization, [network, c_class, c_param, c_steps, c_size, c_seed],
                            [c_out, c_text], api_name="class_visualization", **SLOW)

            with gr.Tab("Fooling images"):
                gr.Markdown("The smallest change that makes the network see another class.")
                with gr.Row():
                    x_img = upload_image("Image")
                    x_class = _class_menu("Target class", allow_empty=False, value="949: strawberry")
                    x_steps = gr.Slider(10, 500, value=100, step=10, label="Most steps")
                x_btn = gr.Button("Fool the network", variant="primary")
                with gr.Row():
                    x_orig = gr.Image(label="Original")
                    x_fooled = gr.Image(label="Fooled")
                    x_diff = gr.Image(label="Difference x10")
                x_text = gr.Textbox(label="Predictions", interactive=False, lines=3)
                _examples(methods.fooling, [network, x_img, x_class, x_steps], [x_orig, x_fooled, x_diff, x_text],
                          [backbone_name, sample, "949: strawberry", 100])
                x_btn.click(methods.fooling, [network, x_img, x_class, x_steps], [x_orig, x_fooled, x_diff, x_text],
                            api_name="fooling", **SLOW)

            with gr.Tab("Feature inversion"):
                gr.Markdown("Images reconstructed from what each layer keeps (Mahendran & Vedaldi 2015): "
                            "early layers keep the pixels, deep layers keep what matters for the class.")
                with gr.Row():
                    i_img = upload_image("Image")
                    i_layers = layer_menu("Layers", "inversion", multiselect=True)
                i_steps = gr.Slider(20, 1000, value=200, step=20, label="Steps per layer")
                i_btn = gr.Button("Invert", variant="primary")
                i_out = gr.Gallery(label="Reconstructions, shallow to deep", columns=5, height="auto")
                _examples(methods.inversion, [network, i_img, i_layers, i_steps], [i_out], [backbone_name, sample, defaults["inversion"], 200])
                i_btn.click(methods.inversion, [network, i_img, i_layers, i_steps], [i_out], api_name="inversion", **SLOW)

        with gr.Tab("Synthesis"), gr.Tabs():
            with gr.Tab("DeepDream"):
                gr.Markdown("Amplify what a layer sees, from coarse to fine octaves, with jitter.")
                with gr.Row():
                    d_img = upload_image("Image")
                    d_out = gr.Image(label="Dream")
                with gr.Row():
                    d_layer = layer_menu("Layer", "deepdream")
                    d_oct = gr.Slider(1, 6, value=4, step=1, label="Octaves")
                    d_scale = gr.Slider(1.1, 2.0, value=1.4, step=0.1, label="Octave scale")
                    d_steps = gr.Slider(1, 40, value=10, step=1, label="Steps per octave")
                    d_side = gr.Slider(128, 1024, value=512, step=64, label="Longer side")
                d_btn = gr.Button("Dream", variant="primary")
                _examples(methods.deepdream, [network, d_img, d_layer, d_oct, d_scale, d_steps, d_side], [d_out],
                          [backbone_name, sample, defaults["deepdream"], 4, 1.4, 10, 512])
                d_btn.click(methods.deepdream, [network, d_img, d_layer, d_oct, d_scale, d_steps, d_side], [d_out],
                            api_name="deepdream", **SLOW)

            with gr.Tab("Texture synthesis"):
                gr.Markdown("A new image from noise whose Gram matrices match the example's: shallow layers keep "
                            "colour and fine grain, deeper ones larger structures.")
                with gr.Row():
                    y_img = upload_image("Texture")
                    y_out = gr.Image(label="Synthesised")
                y_layers = layer_menu("Layers (none: the network's style layers)", None, multiselect=True)
                with gr.Row():
                    y_size = gr.Slider(64, 512, value=192, step=32, label="Size")
                    y_steps = gr.Slider(10, 1000, value=200, step=10, label="Steps")
                y_btn = gr.Button("Synthesise", variant="primary")
                y_text = gr.Textbox(label="Loss", interactive=False)
                _examples(methods.texture, [network, y_img, y_layers, y_size, y_steps], [y_out, y_text],
                          [backbone_name, style_example, [], 192, 200])
                y_btn.click(methods.texture, [network, y_img, y_layers, y_size, y_steps], [y_out, y_text],
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
                _examples(methods.gatys, [network, a_content, a_styles, a_blend, a_size, a_cw, a_sw, a_tv, a_color, a_scales,
                                           a_opt, a_steps], [a_out, a_text],
                          [backbone_name, sample, [style_example], "", 384, None, None, None, False, 1, "lbfgs", 200])
                a_btn.click(methods.gatys, [network, a_content, a_styles, a_blend, a_size, a_cw, a_sw, a_tv, a_color,
                                            a_scales, a_opt, a_steps], [a_out, a_text], api_name="gatys", **SLOW)

        def follow_network(name: str):
            names = backbone_layers(name)
            d = methods.DEFAULT_LAYERS[name]
            return [gr.update(choices=names, value=d.get(key) if key else ([] if menu.multiselect else None))
                    for menu, key in layer_menus]

        network.change(follow_network, [network], [m for m, _ in layer_menus], api_name=False)
    return app
