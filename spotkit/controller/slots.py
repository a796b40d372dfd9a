"""Node slots the controller starts and deallocates: the interface and its errors. Providers:
`spotkit.controller.azure_slots` (Azure VMs, azure-mgmt-compute; SDK errors become `SlotError` /
`AllocationFailed` there, at the boundary) and `spotkit.controller.local_slots` (the local fleet)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from runtime.errors import SpotkitError


class SlotError(SpotkitError):
    """A slot operation failed for a reason other than capacity."""


class SlotForbidden(SlotError):
    """The identity may not do this (HTTP 403): a matter of roles, not of the slot or the cloud."""


class AllocationFailed(SlotError):
    """No capacity or quota for this slot now (the provider's code says which): try the next one."""

    def __init__(self, slot: str, code: str, message: str) -> None:
        super().__init__(f"{slot}: {code}: {message}")
        self.slot, self.code = slot, code


@dataclass(frozen=True)
class SlotState:
    name: str
    power: str  # running | starting | deallocated | deallocating | stopped | unknown
    size: str = ""  # the VM size ("" when all slots are alike, as in the local fleet)
    address: str = ""  # its private IP where the backend knows it ("" when it does not: Azure's instance view)


class SlotBackend(ABC):
    @abstractmethod
    def list_slots(self) -> list[SlotState]:
        """Every slot and its power state."""

    @abstractmethod
    def start(self, name: str) -> None:
        """Start (allocate) a slot; `AllocationFailed` when Azure has no capacity or quota."""

    @abstractmethod
    def deallocate(self, name: str) -> None:
        """Deallocate a slot (compute stops billing; its disk stays)."""
