"""Writing files so that a crash or a full disk never leaves a half-written one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from models.common.errors import InputFileError


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, but another user's
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporaries for ``path`` left by processes that died mid-write (kill -9, power loss)."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        pid = stale.name[len(path.name) + 2:-4]
        if pid.isdigit() and not _pid_alive(int(pid)):
            stale.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``.

    The previous file survives any failure before the rename. An OSError (full disk,
    permissions, ``path`` being a folder) becomes an InputFileError naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    _remove_stale_temporaries(path)
    try:
        if path.is_dir():
            raise InputFileError(path, "is a folder, expected a file name")
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:  # make the rename itself durable
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass
    except OSError as e:
        raise InputFileError(path, f"cannot write ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
