"""What enters the panel: uploads checked at the door, galleries, classes, backbones.

Every user file goes through ``models.common.images.read_rgb`` (or OpenCV for videos), and
every problem becomes a ``gr.Error`` with one line naming the file: the page shows the
message, never a stack trace.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

from models import catalogue
from models.common.errors import InputFileError, UserError, first_line
from models.common.images import IMAGE_SUFFIXES, center_square, read_rgb, resize_max_side, rgb_to_tensor
from realtime.panel.context import Limits

if TYPE_CHECKING:
    import torch

    from models.backbones import Backbone

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# Frames taken from one video given as a gallery.
VIDEO_FRAMES = 24


def _upload_folders() -> list[str]:
    """Where Gradio keeps uploads (as given and resolved), each ending in a separator."""
    root = Path(gr.utils.get_upload_folder())
    return sorted({str(root) + os.sep, str(root.resolve()) + os.sep}, key=len, reverse=True)


def as_user_sees(message: str) -> str:
    """``message`` with each uploaded file's server path (``UPLOADS/<hash>/photo.jpg``) cut to the
    file's own name (``photo.jpg``), which Gradio keeps: the user knows the file by that name,
    and the server's temporary folder is none of their business."""
    for folder in _upload_folders():
        message = re.sub(re.escape(folder) + r"[^" + re.escape(os.sep) + r"\s'\"]+" + re.escape(os.sep), "", message)
    return message


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the project's user-facing errors into a message in the page, naming uploads as the
    user named them (:func:`as_user_sees`)."""
    try:
        yield
    except gr.Error as e:
        shown = as_user_sees(str(e.message))
        if shown == e.message:
            raise
        raise gr.Error(shown) from None
    except (UserError, ValueError) as e:
        raise gr.Error(as_user_sees(first_line(e, limit=1000))[:300]) from None  # the path is cut first
    except MemoryError:
        raise gr.Error("out of memory: try a smaller size or fewer steps") from None
    except Exception as e:  # torch.OutOfMemoryError, without importing torch for pages that do not use it
        if type(e).__name__ == "OutOfMemoryError":
            raise gr.Error("out of memory: try a smaller size or fewer steps") from None
        raise


def errors_to_page(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with user_errors():
            return fn(*args, **kwargs)
    return wrapper


def upload_path(file) -> Path | None:
    if file is None:
        return None
    if isinstance(file, (str, os.PathLike)):
        return Path(file)
    return Path(getattr(file, "name", None) or getattr(file, "path"))


def load_image(file, what: str = "an image", max_side: int | None = None, limits: Limits = Limits()) -> np.ndarray:
    """An uploaded image as RGB uint8, shrunk to the page's resolution cap (``limits``)."""
    path = upload_path(file)
    if path is None:
        raise gr.Error(f"Upload {what} first.")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise gr.Error(f"{path.name}: a video; this input takes an image ({', '.join(IMAGE_SUFFIXES)})")
    side = min(max_side or limits.max_side, limits.max_side)
    return resize_max_side(read_rgb(path, max_side=side), side)  # a huge JPEG is decoded at reduced size


def video_path(file) -> Path:
    """An uploaded video's path, checked for a video suffix (its content is checked when it is opened)."""
    path = upload_path(file)
    if path is None:
        raise gr.Error("Upload a video first.")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise gr.Error(f"{path.name}: not a video; this input takes {', '.join(VIDEO_SUFFIXES)}")
    return path


def _video_frames(path: Path, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputFileError(path, "not a readable video")
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
        wanted = set(np.linspace(0, max(0, total - 1), min(count, total)).round().astype(int).tolist())
        frames, i = [], 0
        while len(frames) < len(wanted):
            ok, frame = cap.read()
            if not ok:
                break
            if i in wanted:
                frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            i += 1
    finally:
        cap.release()
    if not frames:
        raise InputFileError(path, "no frames could be read")
    return frames


@functools.lru_cache(maxsize=1)
def sample_gallery() -> list[tuple[np.ndarray, str]]:
    """The bundled images and four corner crops of each: a gallery when the user gives none.

    Read once per process (the bundled files do not change); callers must not modify the arrays.
    """
    out = []
    paths = [catalogue.SAMPLE_PHOTO, *sorted(p for p in catalogue.SHIPPED_DIR.glob("*.jpg") if p != catalogue.SAMPLE_PHOTO)]
    for p in paths:
        rgb = read_rgb(p)
        h, w = rgb.shape[:2]
        out.append((rgb, p.stem))
        for name, (y, x) in {"top left": (0, 0), "top right": (0, w // 2), "bottom left": (h // 2, 0),
                             "bottom right": (h // 2, w // 2)}.items():
            out.append((rgb[y:y + h // 2, x:x + w // 2], f"{p.stem} {name}"))
    return out


def load_gallery(files: Sequence | None, size: int, limits: Limits = Limits()
                 ) -> tuple["torch.Tensor", list[np.ndarray], list[str]]:
    """Images and video frames as one (N, 3, size, size) batch of centred squares.

    Returns the batch, the squares as RGB uint8 (for display) and a caption for each.
    With no files, the bundled sample gallery.
    """
    items: list[tuple[np.ndarray, str]] = []
    if not files:
        items = sample_gallery()
    for f in files or []:
        path = upload_path(f)
        if path.suffix.lower() in VIDEO_SUFFIXES:
            frames = _video_frames(path, VIDEO_FRAMES)
            items += [(fr, f"{path.name} frame {i}") for i, fr in enumerate(frames)]
        else:
            items.append((read_rgb(path), path.name))
    if len(items) > limits.max_gallery:
        raise gr.Error(f"{len(items)} gallery images; the panel takes at most {limits.max_gallery}")
    import torch

    squares = [center_square(rgb, size) for rgb, _ in items]
    batch = torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2).float() / 255.0
    return batch, squares, [c for _, c in items]


def device() -> "torch.device":
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=2)
def backbone(name: str, weights: str | None = None) -> "Backbone":
    """The frozen backbone, loaded once per name; missing VGG weights become a page message."""
    from models.backbones import load_backbone

    with user_errors():
        return load_backbone(name, weights=weights, device=device())


def class_choices() -> list[str]:
    """Menu entries 'index: name' for the 1000 ImageNet classes (the same for every backbone)."""
    from models.backbones import imagenet_categories

    return [f"{i}: {c}" for i, c in enumerate(imagenet_categories())]


def parse_class(choice: str | int | None, model: "Backbone") -> int | None:
    """'281: tabby cat' (a menu entry), '281', or a class name -> index; empty -> None (top class)."""
    if choice is None or (isinstance(choice, str) and not choice.strip()):
        return None
    if isinstance(choice, int):
        index = choice
    else:
        head = choice.split(":", 1)[0].strip()
        if head.isdigit():
            index = int(head)
        else:
            from visualize.class_vis import class_index

            with user_errors():
                index = class_index(model, choice.strip())
    if not 0 <= index < len(model.categories):
        raise gr.Error(f"class {index} is out of range 0..{len(model.categories) - 1}")
    return index


def to_tensor(rgb: np.ndarray) -> "torch.Tensor":
    """RGB uint8 -> (1, 3, H, W) float on the panel's device."""
    return rgb_to_tensor(rgb).to(device())
