"""`fleet status`'s reading on the Azure side: slots through the controller's own AzureSlots (an ARM
stand-in), the queue and the store on Azurite — and a slot backend that fails leaves the rest shown."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from azure.core.pipeline.policies import SansIOHTTPPolicy

from runtime.fleet_status import assemble
from runtime.oncall import observe_fleet
from runtime.queue.azure_queue import AzureQueue
from runtime.records import Heartbeat, dump, heartbeat_key
from runtime.store.azure_blob import AzureBlobStore
from spotkit.controller.azure_slots import AzureSlots
from tests.controller.test_controller import RG, SUB, NoCredential
from tests.support.arm_emulator import ArmEmulator
from tests.support.azurite import ACCOUNT, Azurite


@pytest.fixture
def arm() -> Iterator[ArmEmulator]:
    emulator = ArmEmulator({"slot-1": "running", "slot-2": "deallocated"})
    yield emulator
    emulator.stop()


def test_azure_slots_queue_and_store_make_one_status(arm: ArmEmulator, azurite: Azurite) -> None:
    suffix = uuid.uuid4().hex[:10]
    queue = AzureQueue(ACCOUNT, f"q{suffix}", 5, azurite.connection_string)
    queue.ensure()
    store = AzureBlobStore(ACCOUNT, f"c{suffix}", azurite.connection_string)
    store.ensure()
    for body in ("a", "b", "c"):
        queue.send(body)
    [leased] = queue.receive(1, 300)
    now = time.time()
    store.put(heartbeat_key("slot-1"), dump(Heartbeat("slot-1", "working", "0.1.0", now - 1, ["seg-a"], 4,
                                                      lease_expires_at=now + 290)))
    store.put(heartbeat_key("slot-2"), dump(Heartbeat("slot-2", "working", "0.1.0", now - 120, ["seg-x"], 2,
                                                      lease_expires_at=now + 100)))
    slots = AzureSlots(SUB, RG, ["slot-1", "slot-2"], credential=NoCredential(), base_url=arm.url,
                       sizes={"slot-1": "Standard_NC4as_T4_v3", "slot-2": "Standard_NC4as_T4_v3"},
                       authentication_policy=SansIOHTTPPolicy())

    status = assemble(observe_fleet(store, queue, slots.list_slots), stale_after=30.0)
    one, two = status.nodes
    assert (one.node, one.power, one.size, one.address, one.agent_state) == (
        "slot-1", "running", "Standard_NC4as_T4_v3", None, "working")  # Azure's instance view has no IP
    assert (two.power, two.agent_state, two.stuck) == ("deallocated", "silent", True)
    assert (status.queue.total, status.queue.visible, status.queue.leased) == (3, 2, 1)
    assert status.queue.oldest_known and status.queue.oldest_age_seconds is not None
    assert status.queue.poisoned == 0
    assert [(p.kind, p.node) for p in status.problems] == [("stuck-lease", "slot-2")]
    queue.delete(leased)

    ghost = AzureSlots(SUB, RG, ["ghost"], credential=NoCredential(), base_url=arm.url,
                       authentication_policy=SansIOHTTPPolicy())
    blind = assemble(observe_fleet(store, queue, ghost.list_slots), stale_after=30.0)
    assert "ResourceNotFound" in blind.unavailable["slots"]
    assert {n.node: n.power for n in blind.nodes} == {"slot-1": "unknown", "slot-2": "unknown"}
    assert blind.queue.total == 2  # the rest is still read
    assert ("unavailable", "slots") in [(p.kind, p.source) for p in blind.problems]
