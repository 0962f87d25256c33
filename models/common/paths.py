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
    return _platform_dir(("APPDATA", "AppData/Roaming"), "Library/Application Support",
                         ("XDG_DATA_HOME", ".local/share"))


def user_cache_dir() -> Path:
    """This project's cache folder: ``$STYLELENS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/stylelens``
    (``~/.cache``), ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return _platform_dir(("LOCALAPPDATA", "AppData/Local"), "Library/Caches", ("XDG_CACHE_HOME", ".cache"))


def _platform_dir(windows: tuple[str, str], macos: str, unix: tuple[str, str]) -> Path:
    """``stylelens`` in a platform's folder: on Windows and other Unix an environment variable
    (name, default under the home folder); on macOS a folder under the home folder."""
    home = Path.home()
    if sys.platform == "darwin":
        return home / macos / "stylelens"
    env, default = windows if sys.platform == "win32" else unix
    return Path(os.environ.get(env) or home / default) / "stylelens"


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
