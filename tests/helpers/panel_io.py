"""What the panel tests send and get back: the cat photo they upload, the images the page returns."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write_chelsea(folder: Path) -> Path:
    """scikit-image's cat photo (300x451) as ``folder/chelsea.png``."""
    from skimage import data

    path = Path(folder) / "chelsea.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR))
    return path


def output_image(result) -> np.ndarray:
    """An image output of the page (a file path, or Gradio's file dict) as a BGR array."""
    path = result if isinstance(result, str) else result["path"]
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    assert img is not None, f"output {path} is not an image"
    return img
