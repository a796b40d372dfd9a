"""A fleet of local agents, each playing a spot VM against one local metadata service.

The supervisor does what Azure does to a spot VM: when a ``Preempt``/``Terminate`` event starts
(its ``NotBefore`` passed or the node acknowledged it) the VM is deallocated — here, the agent
process gets ``SIGKILL`` — and, if ``restart_after`` is set, capacity comes back later as a fresh
VM with the same name and the same disk (the node's cache directory). ``Reboot``/``Redeploy`` kill
and restart at once. Timeline and numbers: docs/eviction.md.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from subprocess import Popen
from typing import Any

from runtime.config import Settings
from runtime.fleet.metadata_server import MetadataServer
from runtime.local_agents import start_agent, stop_agent

log = logging.getLogger("spotkit.fleet")

DEALLOCATING = ("Preempt", "Terminate")
RESTARTING = ("Reboot", "Redeploy")


@dataclass
class FleetNode:
    name: str
    process: Popen[bytes] | None = None
    state: str = "stopped"  # running | evicted | killed | exited | stopped
    restart_at: float | None = None
    started_at: float = 0.0
    starts: int = 0
    evictions: int = 0
    kills: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "pid": self.process.pid if self.process else None,
                "starts": self.starts, "evictions": self.evictions, "kills": self.kills}


class Fleet:
    def __init__(self, settings: Settings, names: list[str], agent_args: tuple[str, ...] = (),
                 restart_after: float | None = None, clock: Callable[[], float] = time.time,
                 admin_port: int = 0, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.env = env or {}
        self.agent_args = agent_args
        self.restart_after = restart_after
        self.clock = clock
        self.nodes = {name: FleetNode(name) for name in names}
        self.server = MetadataServer(port=admin_port, extra=self._admin)
        self.kill_log: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def node_settings(self, name: str) -> Settings:
        return replace(self.settings, node_name=name, vm_name=name, scheduled_events="on",
                       imds_endpoint=self.server.vm_endpoint(name))

    def up(self) -> Fleet:
        self.server.start()
        for name in self.nodes:
            self.start(name)
        self._thread = threading.Thread(target=self._supervise, name="fleet", daemon=True)
        self._thread.start()
        return self

    def start(self, name: str) -> None:
        with self._lock:
            node = self.nodes[name]
            node.process = start_agent(self.node_settings(name), name, *self.agent_args, env=self.env)
            node.state, node.restart_at, node.started_at = "running", None, self.clock()
            node.starts += 1

    def add(self, name: str) -> None:
        """Capacity arrives: a new VM joins the fleet."""
        with self._lock:
            self.nodes.setdefault(name, FleetNode(name))
        self.start(name)

    def down(self, timeout: float = 30.0) -> dict[str, int]:
        """SIGTERM every agent (they drain and exit), then stop the metadata service."""
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        codes = {}
        with self._lock:
            for node in self.nodes.values():
                if node.process is not None and node.process.poll() is None:
                    codes[node.name] = stop_agent(node.process, timeout)
                    node.state = "stopped"
        self.server.stop()
        return codes

    # -- chaos ------------------------------------------------------------------------------
    def evict(self, name: str, event_type: str = "Preempt", notice_seconds: float = 30.0) -> str:
        if name not in self.nodes:
            raise KeyError(f"no node {name!r} in this fleet; nodes: {', '.join(self.nodes)}")
        return self.server.state.add_event(event_type, [name], notice_seconds).event_id

    def kill(self, name: str, why: str = "kill -9 (no notice)") -> None:
        with self._lock:
            node = self.nodes[name]
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGKILL)
                node.process.wait(10)
            node.state = "killed" if why.startswith("kill") else "evicted"
            node.kills += why.startswith("kill")
            self.kill_log.append({"node": name, "at": self.clock(), "why": why})
            if self.restart_after is not None:
                node.restart_at = self.clock() + self.restart_after

    def supervise_once(self) -> None:
        state = self.server.state
        state.start_due()
        now = self.clock()
        with state.lock:
            started = [e for e in state.events.values() if e.started_at is not None and e.ended_at is None]
        for event in started:
            if event.event_type not in DEALLOCATING + RESTARTING:
                continue
            for name in event.resources:
                node = self.nodes.get(name)
                if node is None or node.state != "running":
                    continue
                node.evictions += 1
                self.kill(name, f"{event.event_type} {event.event_id} started")
                if event.event_type in RESTARTING:
                    node.restart_at = now
            state.end_event(event.event_id, "completed")
        with self._lock:
            for node in self.nodes.values():
                if node.state == "running" and node.process is not None and node.process.poll() is not None:
                    node.state = "exited"
                if node.restart_at is not None and now >= node.restart_at and node.state in ("evicted",
                                                                                               "killed"):
                    self.start(node.name)

    def _supervise(self) -> None:
        while not self._stop.wait(0.05):
            try:
                self.supervise_once()
            except Exception:  # the supervisor must outlive one bad step
                log.exception("event=supervise-failed")

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"url": self.server.url, "nodes": [n.as_dict() for n in self.nodes.values()],
                    "kills": list(self.kill_log)}

    def _admin(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any] | None:
        parts = path.split("/")
        if parts[:1] != ["fleet"]:
            return None
        if parts[1:] == ["status"] and method == "GET":
            return 200, self.status()
        if len(parts) == 3 and parts[1] == "kill" and method == "POST":
            if parts[2] not in self.nodes:
                return 404, {"error": f"no node {parts[2]!r}"}
            self.kill(parts[2])
            return 200, {"killed": parts[2]}
        if len(parts) == 3 and parts[1] == "evict" and method == "POST":
            try:
                event_id = self.evict(parts[2], str(body.get("type", "Preempt")),
                                      float(body.get("notice_seconds", 30)))
            except KeyError as err:
                return 404, {"error": str(err.args[0])}
            return 201, {"event_id": event_id}
        if len(parts) == 3 and parts[1] in ("start", "stop") and method == "POST":
            node = self.nodes.get(parts[2])
            if node is None:
                return 404, {"error": f"no node {parts[2]!r}"}
            if parts[1] == "start" and node.state != "running":
                self.start(node.name)
            elif parts[1] == "stop" and node.process is not None and node.state == "running":
                stop_agent(node.process, timeout=30)
                node.state = "stopped"
            return 200, node.as_dict()
        if parts[1:] == ["down"] and method == "POST":
            threading.Thread(target=self.down, daemon=True).start()
            return 202, {"stopping": True}
        return None
