"""The panel in a child process on a free local port, for the soak script and the tests.

Both need the real server (its own memory, its own crashes) rather than the app in-process,
and both need the same start-up wait and a clean Ctrl-C at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Where `python -m realtime.panel` finds the packages in a source checkout without an install.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class PanelStartError(RuntimeError):
    """The panel exited or did not listen during start-up; the message holds its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PanelProcess:
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def panel_process(work: Path, args: Sequence[str] = (), start_timeout: float = 180.0,
                  root: Path | None = None) -> Iterator[PanelProcess]:
    """Start ``python -m realtime.panel`` with its temporary files and log under ``work``.

    Yields once the port accepts connections; raises PanelStartError, with the server's log,
    if it exits or does not listen within ``start_timeout`` seconds. ``root``: serve another checkout
    of the project (a comparison against it); default this one. Stopped with SIGINT
    (killed after 30 s) on the way out.
    """
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TMPDIR": str(work), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    env.pop("GRADIO_TEMP_DIR", None)
    log_path = work / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "realtime.panel", "--port", str(port), *args],
                                cwd=root or PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    panel = PanelProcess(proc, port, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if not panel.alive():
                raise PanelStartError(f"the panel exited during start-up:\n{panel.log()}")
            if time.monotonic() > deadline:
                raise PanelStartError(f"the panel did not listen within {start_timeout:.0f} s:\n{panel.log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.5)
        yield panel
    finally:
        if panel.alive():
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
