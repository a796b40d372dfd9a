"""Azure VMs as slots, through azure-mgmt-compute: instance view, start, deallocate. SDK errors are
mapped here, at the boundary: capacity and quota answers become `AllocationFailed` (try the next slot,
size or region), everything else `SlotError`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.retry import AZURE_SDK_RETRY
from spotkit.controller.slots import AllocationFailed, SlotBackend, SlotError, SlotForbidden, SlotState

# Azure's answers when a spot VM cannot be allocated now: try another slot, size or region.
ALLOCATION_CODES = ("SkuNotAvailable", "OverconstrainedAllocationRequest", "AllocationFailed",
                    "ZonalAllocationFailed", "OperationNotAllowed", "QuotaExceeded")


@dataclass(frozen=True)
class SpotQuota:
    region: str
    used_vcpus: int
    limit_vcpus: int
    needed_vcpus: int  # every slot at its size
    sizes: dict[str, str]


class AzureSlots(SlotBackend):
    def __init__(self, subscription_id: str, resource_group: str, vm_names: list[str], credential: Any = None,
                 sizes: dict[str, str] | None = None,
                 base_url: str | None = None, timeout: float = 600.0, **client_options: Any) -> None:
        from azure.mgmt.compute import ComputeManagementClient

        if credential is None:
            from runtime.azure_env import credential as machine_credential

            credential = machine_credential()
        self.resource_group, self.vm_names, self.timeout = resource_group, vm_names, timeout
        self.sizes = dict(sizes or {})  # slot -> VM size, as the stack declared them (`NAME:SIZE`)
        self.client = ComputeManagementClient(credential, subscription_id, base_url=base_url or None,
                                              connection_timeout=10, read_timeout=60,
                                              **{**AZURE_SDK_RETRY.azure_core_options(), **client_options})
        self._polling = client_options.get("polling_interval")

    def _call(self, slot: str, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            return fn(*args, **kwargs)
        except HttpResponseError as err:
            code = getattr(err.error, "code", None) or getattr(err, "error_code", None) or ""
            if code in ALLOCATION_CODES:
                raise AllocationFailed(slot, code, str(getattr(err.error, "message", err.message))) from None
            if err.status_code == 403:
                raise SlotForbidden(f"{what} {slot}: {code or 403}: {err.message}") from None
            raise SlotError(f"{what} {slot}: {code or err.status_code}: {err.message}") from None
        except AzureError as err:
            raise SlotError(f"{what} {slot}: {err}") from None

    def list_slots(self) -> list[SlotState]:
        states = []
        for name in self.vm_names:
            view = self._call(name, "instance view", self.client.virtual_machines.instance_view,
                              self.resource_group, name)
            power = next((s.code.split("/", 1)[1] for s in view.statuses or [] if s.code.startswith("PowerState/")),
                         "unknown")
            states.append(SlotState(name, power, self.sizes.get(name, "")))
        return states

    def _lro(self, what: str, begin: Any, name: str) -> None:
        extra = {"polling_interval": self._polling} if self._polling is not None else {}
        poller = self._call(name, what, begin, self.resource_group, name, **extra)
        self._call(name, what, poller.result, timeout=self.timeout)

    def spot_quota(self, region: str, default_size: str) -> SpotQuota:
        """The region's spot (low-priority) vCPU quota against what every slot needs: a deallocated spot
        VM still counts against it, so all slots count, each at its own size."""
        # Listings are paged lazily: read them inside `_call`, so their errors are mapped too.
        usages = self._call(region, "usages in", lambda: list(self.client.usage.list(region)))
        spot = next((u for u in usages if u.name.value == "lowPriorityCores"), None)
        if spot is None:
            raise SlotError(f"usages in {region}: Azure lists no low-priority vCPU quota there")
        offered = self._call(region, "VM sizes in", lambda: list(self.client.virtual_machine_sizes.list(region)))
        cores = {s.name: int(s.number_of_cores) for s in offered}
        sizes = {name: self.sizes.get(name) or default_size for name in self.vm_names}
        unknown = sorted({size for size in sizes.values() if size not in cores})
        if unknown:
            raise SlotError(f"VM sizes in {region}: {', '.join(unknown)} not offered there")
        return SpotQuota(region, int(spot.current_value), int(spot.limit), sum(cores[s] for s in sizes.values()),
                         sizes)

    def start(self, name: str) -> None:
        self._lro("start", self.client.virtual_machines.begin_start, name)

    def deallocate(self, name: str) -> None:
        self._lro("deallocate", self.client.virtual_machines.begin_deallocate, name)
