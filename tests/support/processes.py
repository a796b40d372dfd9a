"""Clean-up of processes a test started through the product (API workers write pid files)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def kill_pid_files(folder: Path) -> None:
    """SIGKILL every process named by a ``*.pid`` file in *folder* (gone already is fine)."""
    for pid_file in folder.glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
