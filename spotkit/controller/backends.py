"""Which slot backend a command observes and acts on: Azure VMs or the `spotkit local` fleet.

One place chooses it for every command that looks at slots (``controller once|run``, ``fleet status``),
so on-call sees the slots exactly as the controller does.
"""

from __future__ import annotations

from pathlib import Path

from runtime.errors import SpotkitError
from spotkit.controller.azure_slots import AzureSlots
from spotkit.controller.local_slots import LocalSlots
from spotkit.controller.slots import SlotBackend


def parse_slot_list(slots: str | None) -> dict[str, str]:
    """``NAME[:SIZE],…`` as {name: size} in the given order (size "" where none is named)."""
    entries = [s.strip() for s in (slots or "").split(",") if s.strip()]
    return {entry.split(":", 1)[0]: (entry.split(":", 1)[1] if ":" in entry else "") for entry in entries}


def open_slots(home: Path, backend: str | None, subscription: str | None, resource_group: str | None,
               slots: str | None) -> SlotBackend:
    """Azure when asked (the default when a subscription is set), else the local fleet in *home*."""
    if (backend or ("azure" if subscription else "local")) == "local":
        return LocalSlots(home)
    named = parse_slot_list(slots)
    if not (subscription and resource_group and named):
        raise SpotkitError("the azure backend needs --subscription, --resource-group and --slots "
                           "(or SPOTKIT_SUBSCRIPTION_ID, SPOTKIT_RESOURCE_GROUP, SPOTKIT_SLOT_VMS)")
    return AzureSlots(subscription, resource_group, list(named), sizes={n: s for n, s in named.items() if s})
