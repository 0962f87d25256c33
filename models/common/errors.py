"""Errors that reach the user as one clear line (the CLIs print them and exit 2)."""

from __future__ import annotations

import os
from collections.abc import Mapping


class UserError(Exception):
    """A problem with what the user gave us: printed as one line, no traceback."""


class InputFileError(UserError):
    """A file the user gave (image, video, model, checkpoint) is missing or unusable."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class NotEnoughMemoryError(UserError):
    """A computation the user sized (an image, a tile) does not fit in memory; callers that know
    the file add its name and what to shrink."""


class WeightsUnavailableError(UserError):
    """Pretrained weights could neither be downloaded nor found locally."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name if it has none)."""
    lines = [l.strip() for l in str(error).splitlines() if l.strip()]
    return (lines[0] if lines else type(error).__name__)[:limit]


def state_dict_mismatch(expected: Mapping[str, object], given: Mapping[str, object], shown: int = 3) -> str:
    """Which keys of a state dict ``given`` do not fit a network's own ``expected`` one: missing,
    unexpected, and of another shape; the first ``shown`` of each and a count. Empty if it fits.

    Why: torch's own message puts the reasons on lines after its first, and every one-line
    error printed only that first line ("Error(s) in loading state_dict for StyleNet:")."""
    def some(keys: list[str], what: str) -> str:
        more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
        return f"{len(keys)} {what} ({', '.join(keys[:shown])}{more})"

    def shape(t: object) -> tuple | None:
        return tuple(t.shape) if hasattr(t, "shape") else None

    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [f"{k} {'x'.join(map(str, shape(given[k])))} in the file, {'x'.join(map(str, shape(expected[k])))} here"
                for k in expected if k in given and shape(given[k]) != shape(expected[k])]
    parts = [some(missing, "missing"), some(unexpected, "unexpected"), some(reshaped, "of another shape")]
    return "; ".join(p for p, keys in zip(parts, (missing, unexpected, reshaped)) if keys)


def load_strictly(net, state_dict: Mapping[str, object], path: str | os.PathLike, problem: str) -> None:
    """``net.load_state_dict(state_dict, strict=True)``, or :class:`InputFileError` naming ``path``,
    the ``problem`` and the keys that do not fit (:func:`state_dict_mismatch`)."""
    try:
        net.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError, ValueError) as e:
        detail = state_dict_mismatch(net.state_dict(), state_dict) or first_line(e)
        raise InputFileError(path, f"{problem}: {detail}") from None
