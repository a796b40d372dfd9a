"""Start and stop agent processes on this machine (the demo, tests and benchmarks use them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from runtime.config import Settings, settings_env


def agent_command(home: Path, node: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "spotkit", "-v", "--home", str(home), "agent", "--node-name", node,
            *extra]


def start_agent(settings: Settings, node: str, *extra: str, log_dir: Path | None = None,
                env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """One agent process with *settings*, its own name and its own cache directory (a node's disk)."""
    home = settings.home
    child_env = {**os.environ, **(env or {}), **settings_env(settings)}
    child_env["SPOTKIT_NODE_NAME"] = node
    child_env["SPOTKIT_CACHE_DIR"] = str(home / "nodes" / node / "cache")
    child_env.pop("SPOTKIT_CONFIG", None)
    log_dir = log_dir or home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(log_dir / f"{node}.log", "ab")
    try:
        return subprocess.Popen(agent_command(home, node, *extra), env=child_env,
                                stdout=log_file, stderr=subprocess.STDOUT)
    finally:
        log_file.close()


def stop_agent(process: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, wait, and SIGKILL only if it does not exit in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)
