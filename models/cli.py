"""Small pieces shared by the command lines (argparse types, one-line warnings)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def min_int(low: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``low``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """For ``warnings.formatwarning``: users see ``warning: ...``, not our source lines."""
    return f"warning: {message}\n"
