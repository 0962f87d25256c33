"""The "Fast style" tab: a picker of paintings, strength and colour, then a photo, the webcam or a
video through the trained style networks (ONNX Runtime / OpenVINO; no torch)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import gradio as gr
import numpy as np

from models.inference.finish import check_strength, finish_style
from realtime.panel.context import LiveCache, PanelContext
from realtime.panel.inputs import errors_to_page, load_image, video_path
from realtime.panel.styles import (blend_percentages, blend_text, model_file, parse_style_blend, style_model,
                                   tile_images, tiles, zoo_models)
from realtime.panel.widgets import SLOW, examples, upload_image

MAX_BLEND_SLIDERS = 8  # sliders the page holds for a model of several styles


class FastStyleTab:
    """The picker, the chosen style or blend, and the photo, webcam and video tabs."""

    def __init__(self, ctx: PanelContext | None = None):
        self.ctx = ctx or PanelContext()
        self.live = LiveCache(self._live_effect, size=self.ctx.live_entries)

    def build(self, sample: str) -> tuple[gr.Gallery, gr.Dropdown, gr.Image]:
        """The tab's layout and events; returns the picker, the model menu and the photo (for the
        other tabs: a trained style refreshes the picker; the photo is the default training photo)."""
        with gr.Tab("Fast style", id="fast-style"):
            gr.Markdown("Trained feed-forward style networks (Johnson et al. 2016) through ONNX Runtime. "
                        "Click a painting to paint your photo in its style.")
            picker = gr.Gallery(tile_images(tiles()), label="Style: click a painting", columns=8, height=330,
                                allow_preview=False, object_fit="cover", elem_id="style-picker")
            models = zoo_models()
            # The chosen model and style (or blend): set by the picker and the sliders, named in the API.
            model = gr.Dropdown(models, value=models[0], label="Style model", allow_custom_value=True, visible=False)
            blend = gr.Textbox(label="Style or blend", visible=False)
            info = gr.Markdown(f"**{tiles()[0].style}**", elem_id="style-chosen")
            with gr.Row(visible=True):
                sliders = [gr.Slider(0, 100, value=0, step=1, label="", visible=False, elem_id=f"blend-{i}")
                           for i in range(MAX_BLEND_SLIDERS)]
            with gr.Row():
                strength = gr.Slider(0, 1, value=1, step=0.05, label="Strength (0: the photo, 1: full style)",
                                     elem_id="style-strength")
                color = gr.Checkbox(label="Preserve colour (the photo's colours, the style's strokes)",
                                    elem_id="style-color")
            photo = self._media(sample, model, blend, strength, color)
            picker.select(self.pick_style, [photo, strength, color], [model, blend, info, self.output, *sliders],
                          api_name=False)
            for slider in sliders:
                slider.release(self.blend_sliders, [photo, model, strength, color, *sliders], [blend, info, self.output],
                               api_name=False)
        return picker, model, photo

    def _media(self, sample: str, model, blend, strength, color) -> gr.Image:
        """The photo, webcam and video tabs with their events; returns the photo input."""
        style_in = [model, blend, strength, color]
        with gr.Tabs():
            with gr.Tab("Photo"):
                with gr.Row():
                    photo = upload_image("Photo", value=sample, elem_id="style-photo")
                    self.output = gr.Image(label="Stylised", format="jpeg", elem_id="style-output")
                run = gr.Button("Stylise", variant="primary", elem_id="style-run")
                examples(self.fast_style, [photo, *style_in], [self.output],
                         [sample, "udnie_lite", "", 1.0, False],
                         [sample, "five_styles_lite", "starry_night=0.5, the_scream=0.5", 0.8, True],
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
                    video_in = gr.File(label="Video", file_types=["video"], elem_id="style-video-in")
                    video_out = gr.Video(label="Stylised video", format=None, elem_id="style-video-out")
                video_run = gr.Button("Stylise the video", variant="primary", elem_id="style-video-run")
        run.click(self.fast_style, [photo, *style_in], [self.output], api_name="fast_style")
        strength.release(self.fast_style, [photo, *style_in], [self.output], api_name=False)
        color.input(self.fast_style, [photo, *style_in], [self.output], api_name=False)
        photo.upload(self.fast_style, [photo, *style_in], [self.output], api_name=False)
        video_run.click(self.fast_style_video, [video_in, *style_in], [video_out], api_name="fast_style_video", **SLOW)
        cam.stream(self.stream_style, [cam, *style_in], [live], stream_every=0.05, time_limit=600,
                   concurrency_limit=2, api_name="stream_style")
        return photo

    # handlers -----------------------------------------------------------------------------------

    @errors_to_page
    def fast_style(self, image, model_name: str, blend: str = "", strength: float = 1.0,
                   preserve_color: bool = False) -> np.ndarray:
        """A trained feed-forward style network (ONNX) on the upload; blend like 'wave=0.5, udnie=0.5'.

        ``strength`` mixes the result with the photo (0: the photo); ``preserve_color`` keeps the
        photo's colours (the style's luminance only), as ``stylelens stylize`` and the live runner do.
        """
        rgb = load_image(image, limits=self.ctx.limits)
        styled = style_model(model_name).stylize(rgb, parse_style_blend(blend))
        return finish_style(styled, rgb, strength, bool(preserve_color))

    @errors_to_page
    def pick_style(self, image, strength: float, preserve_color: bool, evt: gr.SelectData) -> list:
        """A click on a picker tile: that style, at once, on the current photo; a blend tile opens one
        slider per style of its model, the first at 100 %."""
        items = tiles()
        if not 0 <= evt.index < len(items):
            raise gr.Error("that style is gone: reload the page")
        tile = items[evt.index]
        styles = style_model(tile.model).styles
        chosen = tile.style
        values = [100 if i < len(styles) and styles[i] == tile.style else 0 for i in range(MAX_BLEND_SLIDERS)]
        info = f"**{tile.style}**" + (f" from {tile.model}: move the sliders to blend its styles" if tile.blend else "")
        sliders = [gr.update(visible=tile.blend and i < len(styles), label=styles[i] if i < len(styles) else "",
                             value=values[i]) for i in range(MAX_BLEND_SLIDERS)]
        out = self.fast_style(image, tile.model, chosen, strength, preserve_color) if image else None
        return [tile.model, chosen, info, out, *sliders]

    @errors_to_page
    def blend_sliders(self, image, model_name: str, strength: float, preserve_color: bool, *weights: float) -> list:
        """The sliders of a model of several styles, normalised, as the blend; the photo re-stylised."""
        styles = style_model(model_name).styles
        if len(styles) < 2:
            return [gr.update(), gr.update(), gr.update()]
        weights = list(weights[:len(styles)])
        blend = blend_text(styles, weights)
        out = self.fast_style(image, model_name, blend, strength, preserve_color) if image else None
        return [blend, f"**{model_name}**: " + blend_percentages(styles, weights), out]

    @errors_to_page
    def fast_style_video(self, video, model_name: str, blend: str = "", strength: float = 1.0,
                         preserve_color: bool = False, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> str:
        """A whole clip through the style network, every frame at its time and with its sound, as an
        H.264 .mp4 the page plays; frames over the page's size cap are styled at the cap."""
        from realtime.effects import EffectOptions
        from realtime.runner import Runner
        from realtime.video_io import VideoFileSink, VideoFileSource

        path = video_path(video)
        source = VideoFileSource(path)
        try:
            choice = parse_style_blend(blend)
            cap = self.ctx.limits.max_side
            options = EffectOptions(model=str(model_file(model_name)), provider="auto",
                                    style=choice if isinstance(choice, str) else None,
                                    blend=choice if isinstance(choice, dict) else {},
                                    size=cap if max(source.size) > cap else None,
                                    strength=float(strength), preserve_color=bool(preserve_color))
            out = Path(tempfile.mkdtemp(dir=os.environ.get("GRADIO_TEMP_DIR"))) / f"{path.stem}_styled.mp4"
            sink = VideoFileSink(out, source.fps, audio_from=path if source.has_audio else None,
                                 time_base=source.time_base, log=lambda m: None)
        except BaseException:
            source.close()
            raise
        Runner(source, [sink], effect="style", options=options, drop=False, hud=False, progress=True,
               log=lambda m: None).run()
        return str(out)

    @staticmethod
    def _live_effect(key: tuple[str, str]):
        """The live runner's style effect for (model, blend), held to its frame rate by an adapter
        (processing size, network, backend)."""
        from realtime.adaptive import AdaptiveEffect
        from realtime.effects import EffectOptions
        from realtime.effects.style import StyleEffect

        model_name, blend = key
        parsed = parse_style_blend(blend)
        weights = {parsed: 1.0} if isinstance(parsed, str) else (parsed or {})
        # the model by name (not as a file), so that its smaller siblings are on the ladder
        return AdaptiveEffect(StyleEffect(EffectOptions(style=model_name or None, blend=weights)))

    @errors_to_page
    def stream_style(self, frame: np.ndarray | None, model_name: str, blend: str = "", strength: float = 1.0,
                     preserve_color: bool = False) -> np.ndarray | None:
        """One webcam frame, stylised, for the streaming tab: the live runner's adaptive path, one
        effect per (model, blend) kept in a small least-recently-used cache."""
        if frame is None:
            return None
        bgr = np.ascontiguousarray(frame[..., 2::-1])
        lock, live = self.live.get((model_name or "", (blend or "").strip()))
        with lock:
            live.effect.strength, live.effect.preserve_color = check_strength(strength), bool(preserve_color)
            out = live(bgr)
        return out[..., ::-1]
