"""The `spotkit local` fleet as slots: a slot is a local agent; "deallocated" means its process is stopped.
Every slot is a process on this machine, so its address is the loopback one."""

from __future__ import annotations

from pathlib import Path

from runtime.fleet import supervisor
from spotkit.controller.slots import SlotBackend, SlotState

LOOPBACK = "127.0.0.1"


class LocalSlots(SlotBackend):
    def __init__(self, home: Path) -> None:
        self.home = home

    def list_slots(self) -> list[SlotState]:
        nodes = supervisor.request(self.home, "GET", "/admin/fleet/status")["nodes"]
        return [SlotState(n["name"], "running" if n["state"] == "running" else "deallocated", address=LOOPBACK)
                for n in nodes]

    def start(self, name: str) -> None:
        supervisor.request(self.home, "POST", f"/admin/fleet/start/{name}")

    def deallocate(self, name: str) -> None:
        supervisor.request(self.home, "POST", f"/admin/fleet/stop/{name}")
