"""Small pieces shared by the command lines (argparse types, one-line warnings)."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable

from models.common.errors import UserError

# When this program started, on the time.perf_counter clock: the first import of this module, which
# every command line of the project imports before anything heavy (so a summary's start-up time
# counts the program's own imports and set-up, not the shell command that launched it).
PROGRAM_START = time.perf_counter()


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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows a default only where there is one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = not (action.default is None or action.default is False or action.default == []
                     or action.default == argparse.SUPPRESS)
        if "default" not in text and shown:
            text += " (default: %(default)s)"
        return text
