"""`spotkit doctor`'s spot-quota check against an ARM stand-in that answers usages and VM sizes as
Azure does: every declared slot, at its own size, within the regional low-priority vCPU quota."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from runtime.doctor import FAIL, PASS, SKIP
from spotkit.controller.azure_slots import AzureSlots
from spotkit.controller.quota_check import azure_quota, spot_quota_check
from tests.controller.test_controller import RG, SUB, NoCredential
from tests.support.arm_emulator import ArmEmulator


@pytest.fixture
def arm() -> Iterator[ArmEmulator]:
    emulator = ArmEmulator({"slot-1": "deallocated", "slot-2": "deallocated"})
    yield emulator
    emulator.stop()


def slots(arm: ArmEmulator, sizes: dict[str, str]) -> AzureSlots:
    return AzureSlots(SUB, RG, ["slot-1", "slot-2"], credential=NoCredential(), base_url=arm.url, sizes=sizes,
                      authentication_policy=SansIOHTTPPolicy())


def test_slots_that_need_more_than_the_spot_quota_fail_with_the_number_to_ask_for(arm: ArmEmulator) -> None:
    backend = slots(arm, {"slot-2": "Standard_NC8as_T4_v3"})  # slot-1 takes the stack's default size
    arm.state.usages["lowPriorityCores"] = (4, 10)  # a new subscription's spot quota is often small
    [check] = spot_quota_check(azure_quota(backend, "eastus", "Standard_NC4as_T4_v3"))
    assert check.status == FAIL and "12 low-priority vCPUs for 2 slots" in check.detail
    assert "quota 10 in eastus, 4 in use" in check.detail and "to at least 12" in check.fix
    assert ("usages", "eastus") in arm.state.calls and ("vmSizes", "eastus") in arm.state.calls

    arm.state.usages["lowPriorityCores"] = (0, 16)
    [check] = spot_quota_check(azure_quota(backend, "eastus", "Standard_NC4as_T4_v3"))
    assert check.status == PASS and "12 low-priority vCPUs" in check.detail


def test_a_size_the_region_does_not_offer_or_no_spot_quota_at_all_fails(arm: ArmEmulator) -> None:
    backend = slots(arm, {"slot-1": "Standard_NC6s_v3"})
    [check] = spot_quota_check(azure_quota(backend, "eastus", "Standard_NC4as_T4_v3"))
    assert check.status == FAIL and "Standard_NC6s_v3 not offered there" in check.detail
    del arm.state.usages["lowPriorityCores"]
    [check] = spot_quota_check(azure_quota(slots(arm, {}), "eastus", "Standard_NC4as_T4_v3"))
    assert check.status == FAIL and "no low-priority vCPU quota" in check.detail


def test_the_controllers_own_identity_without_subscription_read_is_a_skip_with_the_way_round(
        arm: ArmEmulator) -> None:
    arm.state.usages_forbidden = True
    [check] = spot_quota_check(azure_quota(slots(arm, {}), "eastus", "Standard_NC4as_T4_v3"))
    assert check.status == SKIP and "AuthorizationFailed" in check.detail and "az login" in check.fix


def test_off_the_controller_it_is_a_skip() -> None:
    [check] = spot_quota_check(None)
    assert check.status == SKIP and "not the controller" in check.detail
