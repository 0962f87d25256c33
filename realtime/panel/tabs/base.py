"""What the tabs of the lecture's methods share: the page's context, the chosen network, uploads
at the classifier's size, and the conversion of their tensors to pictures."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import gradio as gr
import numpy as np

from models.common.extras import has, install_command
from models.common.images import resize_max_side, tensor_to_rgb
from realtime.panel.context import PanelContext
from realtime.panel.inputs import backbone, load_image, to_tensor

if TYPE_CHECKING:
    import torch

# Input size of the classification methods.
CLASSIFY_SIDE = 224
EXTRA = "visualize"


def missing_extra_note(extra: str = EXTRA) -> bool:
    """Show one line naming the extra the tab needs when it is not installed; True when it is missing."""
    if has(extra):
        return False
    gr.Markdown(f"These methods need PyTorch: `{install_command(extra)}`, then restart the page.")
    return True


class MethodTab:
    """Base of the tabs that run a method of the lecture on a backbone."""

    def __init__(self, ctx: PanelContext | None = None):
        self.ctx = ctx or PanelContext()

    def image(self, file, what: str = "an image", max_side: int | None = None) -> np.ndarray:
        return load_image(file, what, max_side, self.ctx.limits)

    def square_input(self, file, side: int | None = None) -> tuple[np.ndarray, "torch.Tensor"]:
        """The upload at the classifier's working size: longer side ``side`` (default
        ``CLASSIFY_SIDE``), as RGB and tensor."""
        rgb = resize_max_side(self.image(file), side or CLASSIFY_SIDE, enlarge=True)
        return rgb, to_tensor(rgb)

    @staticmethod
    def model(name: str):
        return backbone(name)


def reporter(progress: gr.Progress | None, desc: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress((done, total), desc=desc)


def label(model, index: int, prob: float | None = None) -> str:
    index = int(index)
    name = model.categories[index]
    return f"{name} ({index})" + (f", p = {prob:.3f}" if prob is not None else "")


def grey(t: "torch.Tensor") -> np.ndarray:
    return (255 * t.detach().float().clamp(0, 1).cpu().numpy() + 0.5).astype(np.uint8)


def chw_to_rgb(t: "torch.Tensor") -> np.ndarray:
    return tensor_to_rgb(t[None] if t.dim() == 3 else t)
