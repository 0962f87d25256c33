"""What CPU this is, read in one place: its model name and feature flags (Linux ``/proc/cpuinfo``,
macOS ``sysctl``).

Speed figures belong to one machine, so the benchmarks, the backend probe's cache key, the
training's precision choice and ``stylelens info`` all ask here.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys


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


@functools.lru_cache(maxsize=None)
def _sysctl(key: str) -> str:
    """A macOS ``sysctl -n`` value ("" elsewhere or where unknown)."""
    if sys.platform != "darwin":
        return ""
    try:
        r = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout.strip() if r.returncode == 0 else ""


def cpu_name() -> str:
    """The CPU's model name, e.g. "AMD EPYC"; the platform's processor or machine where unknown."""
    return (_cpuinfo().get("model name") or _sysctl("machdep.cpu.brand_string") or platform.processor()
            or platform.machine())


def cpu_flags() -> frozenset[str]:
    """Every feature flag of the CPU, lower case (``avx2``, ``avx512f``, ``amx_bf16`` ...); empty where unknown.

    Linux x86 lists them as ``flags``, Linux ARM as ``Features``; macOS in two sysctl keys.
    """
    info = _cpuinfo()
    text = info.get("flags") or info.get("Features") or " ".join(
        (_sysctl("machdep.cpu.features"), _sysctl("machdep.cpu.leaf7_features")))
    return frozenset(text.lower().split())
