"""Errors that reach the user as one clear line (the CLIs print them and exit 2)."""

from __future__ import annotations

import os


class UserError(Exception):
    """A problem with what the user gave us: printed as one line, no traceback."""


class InputFileError(UserError):
    """A file the user gave (image, video, model, checkpoint) is missing or unusable."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class WeightsUnavailableError(UserError):
    """Pretrained weights could neither be downloaded nor found locally."""
