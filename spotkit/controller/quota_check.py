"""`spotkit doctor`'s spot-quota check, from the controller: can every slot the stack declares be
allocated as spot at once, within the region's low-priority vCPU quota?

Spot VMs draw on their own regional quota ("Total Regional Low-priority vCPUs", `lowPriorityCores`),
not the pay-as-you-go family quotas, and a deallocated spot VM still counts against it — so a stack
whose slots need more vCPUs than the quota allows fails the first time it scales up, at 3 a.m., as an
allocation failure that looks like capacity. This says so beforehand, with the number to ask for.
"""

from __future__ import annotations

from collections.abc import Callable

from runtime.doctor import FAIL, PASS, SKIP, Check
from spotkit.controller.azure_slots import AzureSlots, SpotQuota
from spotkit.controller.slots import SlotError, SlotForbidden

FIX = ("request a quota increase for 'Total Regional Low-priority vCPUs' in {region} to at least {needed} "
       "(Azure portal → Quotas → Compute, or `az quota update`), or declare fewer or smaller slots")


def spot_quota_check(quota: Callable[[], SpotQuota] | None, why_not: str = "") -> list[Check]:
    """One line: pass when the slots fit the quota, fail with the number to ask for; skip off Azure."""
    if quota is None:
        return [Check("spot quota", SKIP, why_not or "not the controller: no Azure subscription and slots set")]
    try:
        found = quota()
    except SlotForbidden as err:  # the controller's identity: its roles stop at the resource group
        return [Check("spot quota", SKIP, f"this identity may not read the subscription's compute usages ({err})",
                      "run `spotkit doctor` with the same settings as yourself after `az login` (docs/deploy.md)")]
    except SlotError as err:
        return [Check("spot quota", FAIL, str(err), "check SPOTKIT_SUBSCRIPTION_ID, SPOTKIT_REGION and that this "
                                                   "identity may read the subscription's compute usages (Reader)")]
    what = (f"{found.needed_vcpus} low-priority vCPUs for {len(found.sizes)} slots "
            f"({', '.join(sorted(set(found.sizes.values())))}); quota {found.limit_vcpus} in {found.region}, "
            f"{found.used_vcpus} in use")
    if found.needed_vcpus > found.limit_vcpus:
        return [Check("spot quota", FAIL, what, FIX.format(region=found.region, needed=found.needed_vcpus))]
    return [Check("spot quota", PASS, what)]


def azure_quota(slots: AzureSlots, region: str, default_size: str) -> Callable[[], SpotQuota]:
    return lambda: slots.spot_quota(region, default_size)
