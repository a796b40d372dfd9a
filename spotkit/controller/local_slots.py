"""The `spotkit local` fleet as slots: a slot is a local agent; "deallocated" means its process is stopped.
Every slot is a process on this machine, so its address is the loopback one. A slot's "disk" is its
folder under ``<home>/nodes/`` (its result cache): it outlives the fleet, as a data disk outlives a VM,
so with no fleet running every slot that has one is deallocated — not unknown."""

from __future__ import annotations

from pathlib import Path

from runtime.fleet import supervisor
from spotkit.controller.slots import SlotBackend, SlotState

LOOPBACK = "127.0.0.1"


class LocalSlots(SlotBackend):
    def __init__(self, home: Path) -> None:
        self.home = home

    def list_slots(self) -> list[SlotState]:
        if not supervisor.state_path(self.home).exists():  # no fleet: every slot's process is stopped
            disks = self.home / "nodes"
            names = sorted(p.name for p in disks.iterdir() if p.is_dir()) if disks.is_dir() else []
            return [SlotState(name, "deallocated", address=LOOPBACK) for name in names]
        nodes = supervisor.request(self.home, "GET", "/admin/fleet/status")["nodes"]
        return [SlotState(n["name"], "running" if n["state"] == "running" else "deallocated", address=LOOPBACK)
                for n in nodes]

    def start(self, name: str) -> None:
        supervisor.request(self.home, "POST", f"/admin/fleet/start/{name}")

    def deallocate(self, name: str) -> None:
        supervisor.request(self.home, "POST", f"/admin/fleet/stop/{name}")
