"""Executing a routing decision: the work the policy sends to the metered API moves to its own queue
and is done there by API workers, which the controller starts and stops.

Moving, not bouncing: a message an agent of the wrong kind received and handed back would burn a
delivery each time and end poisoned. So the router *moves* messages (receive from the fleet's queue,
send to ``<queue>-api``, delete) and only API workers read the API queue; a job needs no resubmission
to change path. The move is at least once: a controller killed between send and delete leaves the
message in both queues — the second copy finds the first's result (results are written if absent,
by segment) and is counted as a cache hit, not as work.

API workers are plain agents with the metered providers (``SPOTKIT_TRANSCRIBER=openai``) on the API
queue — on the controller VM in Azure, as local processes beside the local fleet. They finish their
queue when routing returns to self-host, then stop.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.queue.base import WorkQueue

LEASE_SECONDS = 60
MESSAGES_PER_WORKER = 64  # backlog one API worker is started for, up to the maximum


def move(source: WorkQueue, target: WorkQueue, count: int) -> int:
    """Move up to *count* messages from *source* to *target*; returns how many moved."""
    moved = 0
    while moved < count:
        batch = source.receive(min(32, count - moved), LEASE_SECONDS)
        if not batch:
            break
        for message in batch:
            target.send(message.body)
            source.delete(message)
            moved += 1
    return moved


class ApiWorkers(ABC):
    """Processes that do the API queue's work."""

    @abstractmethod
    def running(self) -> int: ...

    @abstractmethod
    def scale(self, count: int) -> list[dict[str, Any]]:
        """Run exactly *count* workers; returns the actions taken."""


class LocalApiWorkers(ApiWorkers):
    """``spotkit agent`` processes on this machine, one pid file each under ``<home>/api-workers``."""

    def __init__(self, home: Path, env: Mapping[str, str], queue_url: str) -> None:
        self.dir = home / "api-workers"
        self.env = {**env, "SPOTKIT_QUEUE": queue_url, "SPOTKIT_TRANSCRIBER": "openai",
                    "SPOTKIT_SCHEDULED_EVENTS": "off"}
        self.home = home

    def _alive(self) -> dict[str, int]:
        alive: dict[str, int] = {}
        for pid_file in sorted(self.dir.glob("*.pid")) if self.dir.exists() else []:
            pid = int(pid_file.read_text() or 0)
            try:
                os.kill(pid, 0)
                waited, _ = os.waitpid(pid, os.WNOHANG)  # reap a child that exited (ours, in tests and local)
                if waited == 0:
                    alive[pid_file.stem] = pid
                    continue
            except ChildProcessError:
                alive[pid_file.stem] = pid  # alive, not our child
                continue
            except (ProcessLookupError, PermissionError):
                pass
            pid_file.unlink(missing_ok=True)
        return alive

    def running(self) -> int:
        return len(self._alive())

    def scale(self, count: int) -> list[dict[str, Any]]:
        alive, actions = self._alive(), []
        self.dir.mkdir(parents=True, exist_ok=True)
        for index in range(1, count + 1):
            name = f"api-{index}"
            if name in alive:
                continue
            logs = self.home / "logs"
            with open(logs / f"{name}.log" if logs.is_dir() else os.devnull, "ab") as log:  # the child keeps its copy
                process = subprocess.Popen(
                    [sys.executable, "-m", "spotkit", "--home", str(self.home), "agent"],
                    env={**self.env, "SPOTKIT_NODE_NAME": name}, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            (self.dir / f"{name}.pid").write_text(str(process.pid))
            actions.append({"action": "start-api-worker", "worker": name, "pid": process.pid})
        for name, pid in sorted(alive.items())[count:] if count < len(alive) else []:
            os.kill(pid, signal.SIGTERM)  # drains: finishes or requeues what it holds
            actions.append({"action": "stop-api-worker", "worker": name, "pid": pid})
        return actions


@dataclass
class ApiPath:
    """Where routed work goes: the API queue and the workers that do it."""

    queue: WorkQueue
    workers: ApiWorkers
    max_workers: int = 2

    def workers_for(self, backlog: int, routing: str) -> int:
        """Workers while there is API work; none once it is done and routing is self-host again."""
        if backlog == 0 and routing == "self-host":
            return 0
        if backlog == 0:
            return min(self.max_workers, self.workers.running())  # keep those running: work may arrive
        return min(self.max_workers, max(1, math.ceil(backlog / MESSAGES_PER_WORKER)))
