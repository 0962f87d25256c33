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


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    lines = [l.strip() for l in str(error).splitlines() if l.strip()]
    return (lines[0] if lines else type(error).__name__)[:limit]
