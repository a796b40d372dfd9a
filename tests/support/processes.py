"""Clean-up of processes a test started: through the product (API workers write pid files), or directly (servers)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path


def kill_pid_files(folder: Path) -> None:
    """SIGKILL every process named by a ``*.pid`` file in *folder* (gone already is fine)."""
    for pid_file in folder.glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def stop_process(process: subprocess.Popen[bytes] | subprocess.Popen[str], grace: float = 10.0) -> None:
    """Terminate a server the tests started, then kill it if it has not gone within *grace* seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
