"""Small pieces shared by the command lines (argparse types, one-line warnings)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from models.common.errors import UserError


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


def exit_code_of(task: Callable[[], int | None]) -> int:
    """Run one command's work the way every command line ends: a problem with the user's input
    is one ``error: ...`` line and exit code 2, Ctrl+C is ``interrupted`` and 130, else the
    task's own code (None: 0). Warnings print as one line."""
    warnings.formatwarning = one_line_warning
    try:
        code = task()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)
