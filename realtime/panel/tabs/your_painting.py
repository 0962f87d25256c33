"""The "Your painting" tab: train a style from an uploaded painting, watch it, cancel it.

The work happens in ``realtime.panel.trainer`` (a worker process running ``training``'s own
loop); here are the tab's layout and handlers: start, follow (a generator the page streams), cancel.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator

import gradio as gr
import numpy as np

from models import catalogue
from models.common.errors import UserError
from models.common.extras import has, install_command
from models.common.images import read_rgb
from realtime.panel.context import PanelContext
from realtime.panel.inputs import upload_path, user_errors
from realtime.panel.trainer import Status

POLL_SECONDS = 1.0


def progress_html(s: Status) -> str:
    """The progress bar with the step count and the running losses."""
    fraction = s.step / s.total if s.total else 0.0
    losses = " · ".join(f"{k} {v:.3g}" for k, v in s.losses.items())
    elapsed = f", {time.time() - s.started:.0f} s" if s.started else ""
    return (f'<div id="train-progress" data-state="{s.state}" data-step="{s.step}" data-total="{s.total}">'
            f'<progress value="{s.step}" max="{max(s.total, 1)}" style="width:100%"></progress>'
            f"<div><b>{html.escape(s.state)}</b>: step {s.step} / {s.total} ({100 * fraction:.0f}%{elapsed})"
            f"{' · ' + html.escape(losses) if losses else ''}</div>"
            f"<div>{html.escape(s.message)}</div></div>")


def _preview(s: Status) -> np.ndarray | None:
    if not s.preview:
        return None
    try:
        return read_rgb(s.preview)
    except UserError:  # being written right now: the next poll shows it
        return None


class YourPaintingTab:
    """Train a style from the user's painting; the page's trainer runs one training at a time."""

    def __init__(self, ctx: PanelContext | None = None):
        self.ctx = ctx or PanelContext()

    def build(self, photo: gr.components.Component) -> gr.EventListener | None:
        """The tab's layout and events; ``photo`` is the fast-style photo (the default training photo).

        Returns the Train button's finished event, for the picker to refresh after it (None when
        training is not installed)."""
        with gr.Tab("Your painting", id="your-painting"):
            if not has("train"):
                gr.Markdown(f"Training a style needs PyTorch: `{install_command('train')}`, then restart the page.")
                return None
            trainer = self.ctx.trainer()
            p = trainer.preset
            gr.Markdown(f"Upload a painting, name it, press **Train**: `training`'s own loop runs in a worker "
                        f"process (`{p.arch}` network, {p.size} px crops, {p.steps} steps, the tuned defaults; about "
                        f"10 minutes on a 2-core CPU for the default preset). When it ends the style is exported to "
                        f"ONNX, checked against torch, and added to `{trainer.styles_dir}`: it is then in the picker, "
                        f"the webcam, `stylelens live --style NAME` and `stylelens stylize --model NAME`.")
            with gr.Row():
                painting = gr.File(label="Your painting", file_types=["image"], type="filepath",
                                   elem_id="train-painting")
                photos = gr.File(label="Training photos (empty: your photo on the Fast style tab, and the bundled one)",
                                 file_count="multiple", file_types=["image"], type="filepath")
            name = gr.Textbox(label="Style name", placeholder="letters, digits, _ and -", elem_id="train-name")
            with gr.Row():
                start = gr.Button("Train", variant="primary", elem_id="train-run")
                stop = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
            bar = gr.HTML(progress_html(trainer.poll()), elem_id="train-status")
            preview = gr.Image(label="Preview: your photo, then the style on it", format="jpeg",
                               elem_id="train-preview")
            done = start.click(self.train_style, [painting, name, photos, photo], [bar, preview],
                               api_name="train_style", concurrency_limit=1, concurrency_id="train")
            stop.click(self.cancel_training, None, [bar], api_name="cancel_training", concurrency_limit=None)
        return done

    def train_style(self, painting, name: str, photos, photo) -> Iterator[tuple[str, np.ndarray | None]]:
        """Start a training and stream its progress (bar, losses, preview) until it ends."""
        trainer = self.ctx.trainer()
        with user_errors():
            path = upload_path(painting)
            if path is None:
                raise gr.Error("Upload a painting first.")
            files = [p for p in (upload_path(f) for f in (photos or [])) if p is not None]
            if not files:  # the user's photo, then the bundled one
                files = [p for p in (upload_path(photo), catalogue.SAMPLE_PHOTO) if p is not None]
            status = trainer.start(path, name, files)
        yield progress_html(status), None
        while True:
            time.sleep(POLL_SECONDS)
            status = trainer.poll()
            yield progress_html(status), _preview(status)
            if not status.running:
                break
        if status.state == "failed":
            raise gr.Error(status.message)

    def cancel_training(self) -> str:
        """Stop the running training after its current step; the style folder stays as it was."""
        return progress_html(self.ctx.trainer().cancel())
