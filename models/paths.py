"""Folders on the user's machine: where their own styles live, where torch caches weights.

Defined once here so that every command (the runner, the panel, ``stylelens styles`` and
``stylelens info``) looks in, and reports, the same place. No torch import.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

STYLES_DIR_ENV = "STYLELENS_STYLES_DIR"
CACHE_DIR_ENV = "STYLELENS_CACHE_DIR"


def user_data_dir() -> Path:
    """This project's folder for the user's data, by each platform's convention.

    Linux and other Unix: ``$XDG_DATA_HOME/stylelens`` (``~/.local/share/stylelens``);
    macOS: ``~/Library/Application Support/stylelens``; Windows: ``%APPDATA%\\stylelens``.
    """
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    return base / "stylelens"


def user_cache_dir() -> Path:
    """This project's cache folder: ``$STYLELENS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/stylelens``
    (``~/.cache``), ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    return base / "stylelens"


def user_styles_dir() -> Path:
    """The folder of the user's own style models (``.onnx``): ``$STYLELENS_STYLES_DIR`` if set,
    else ``styles`` in :func:`user_data_dir`. It may not exist yet."""
    override = os.environ.get(STYLES_DIR_ENV)
    return Path(override).expanduser().absolute() if override else user_data_dir() / "styles"


def torch_hub_dir() -> Path:
    """Where torch keeps downloaded weights (``checkpoints/`` inside), as ``torch.hub.get_dir()``
    computes it by default, without importing torch: ``$TORCH_HOME/hub``, with ``TORCH_HOME``
    defaulting to ``$XDG_CACHE_HOME/torch`` (``~/.cache/torch``)."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        torch_home = Path(cache) / "torch"
    return Path(torch_home).expanduser() / "hub"
