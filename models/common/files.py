"""Writing files so that a crash or a full disk never leaves a half-written one."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from models.common.errors import InputFileError, UserError


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


# Doors: every verb checks the paths it was given with these, before any heavy import or work, so
# that a wrong path is one line saying what the path is and what was expected.

def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file on disk (``./a.mp4``, an absolute path, a symlink or a hard
    link to it); False when either does not exist."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Digest of a file's bytes (``hashlib`` name, SHA-256 by default), as hex, read in 1 MiB blocks:
    tells whether two paths hold the same content."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def refuse_overwriting_inputs(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Raise :class:`InputFileError` naming ``out`` when it is the same file as one of ``inputs``
    (None and paths that do not exist are skipped): writing it would destroy the input, often while
    it is still being read."""
    for given in inputs:
        if given is not None and str(given) and same_file(out, given):
            same = "" if str(given) == str(out) else f" ({given})"
            raise InputFileError(out, f"is the input{same} itself: writing there would destroy it; "
                                      f"choose another output")


def describe(path: str | os.PathLike) -> str:
    """What is at ``path``, in words: 'a folder', 'a file', or 'nothing (no such file or folder)'."""
    p = Path(path)
    if p.is_dir():
        return "a folder"
    if p.exists():
        return "a file"
    if p.is_symlink():
        return "a broken link"
    return "nothing (no such file or folder)"


def _check_input(p: Path, exists: bool, noun: str, expected: str) -> Path:
    """``p`` if ``exists``; else :class:`InputFileError` saying what ``p`` is and that ``expected`` was."""
    if not exists:
        what = describe(p)
        if what.startswith("nothing"):
            raise InputFileError(p, f"no such {noun} (expected {expected})")
        raise InputFileError(p, f"is {what}, expected {expected}")
    return p


def check_input_file(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path, if it is a file; else :class:`InputFileError` saying what it is and that
    ``expected`` (e.g. 'an image file') was expected."""
    p = Path(path)
    return _check_input(p, p.is_file(), "file", expected)


def check_input_folder(path: str | os.PathLike, expected: str) -> Path:
    """``path`` as a Path, if it is a folder; else :class:`InputFileError` saying what it is."""
    p = Path(path)
    return _check_input(p, p.is_dir(), "folder", expected)


def check_output_file(path: str | os.PathLike, expected: str) -> Path:
    """The door of an output file: ``path`` must not be a folder, and its folder must exist or be
    creatable (the nearest existing folder above it writable). Missing folders are created by the
    writers (one rule for every verb), not here: a run refused later leaves no empty folder."""
    p = Path(path)
    if p.is_dir():
        raise InputFileError(p, f"is a folder, expected {expected}")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        if parent.is_symlink():
            raise InputFileError(p, f"cannot be written: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise InputFileError(p, f"cannot be written: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputFileError(p, f"cannot be written: the folder {parent} is not writable")
    return p


def make_parent(path: str | os.PathLike) -> None:
    """Create the folders above ``path`` (as ``stylize``, ``render``, ``train`` and ``export`` all do),
    or raise :class:`InputFileError` naming it."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputFileError(path, f"cannot create its folder ({e.strerror or e})") from None


class DiskFull(UserError):
    """The disk (or the file-size limit) leaves no room for what is about to be written."""


def room_for(path: str | os.PathLike, current: int) -> int:
    """Bytes that a file at ``path``, now ``current`` bytes long, may still grow by: the free space
    of its file system, and the process's file-size limit (``ulimit -f``), whichever is smaller."""
    p = Path(path)
    room = 1 << 62
    try:
        st = os.statvfs(p.parent if not p.exists() else p)
        room = st.f_bavail * st.f_frsize
    except (OSError, AttributeError):
        pass
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY:
            room = min(room, soft - current)
    except (ImportError, OSError, ValueError):
        pass
    return room
