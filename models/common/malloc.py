"""Tuning glibc's allocator for the two kinds of process this project runs.

Both settings go through ``mallopt`` and do nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def _mallopt():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None


def keep_freed_memory() -> bool:
    """Keep freed memory for reuse instead of handing it back to the OS (training).

    A CPU training step frees and allocates the same large activations every step; by
    default glibc maps each one afresh and the kernel zero-fills its pages again: a fifth
    of the CPU time of a step on 2 cores went to page faults. The peak is unchanged; it
    is only not returned between steps.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, (1 << 31) - 1))


def share_arenas(arenas: int = 1) -> bool:
    """Let all threads share ``arenas`` malloc arenas (servers); call before threads start.

    glibc gives new threads arenas of their own (up to 8 per core), and an arena keeps the
    working set of the largest request it served. The panel's methods need about 65 MB, so
    its memory rose in 65 MB steps whenever another worker thread took a request
    (``scripts/soak.py panel``: +68 MB at request 30-40 of 80, with 2 arenas too). With one
    arena it stayed flat (+1.7 MB over 80 requests, twice) at unchanged request times.
    """
    mallopt = _mallopt()
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, arenas))
