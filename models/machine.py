"""What CPU this is, read in one place: its model name and feature flags (Linux ``/proc/cpuinfo``).

Speed figures belong to one machine, so the benchmarks, the backend probe's cache key and the
training's precision choice all ask here. ``stylelens info`` has its own fuller reader (macOS too).
"""

from __future__ import annotations

import functools
import platform


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    """The first value of each key of ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_name() -> str:
    """The CPU's model name, e.g. "AMD EPYC"; the platform's processor or machine where unknown."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """Every feature flag of the CPU (``avx2``, ``avx512f``, ``amx_bf16`` ...); empty where unknown."""
    return frozenset(_cpuinfo().get("flags", "").split())
