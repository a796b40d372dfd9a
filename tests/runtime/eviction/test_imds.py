"""The IMDS client against the local metadata service, well-behaved and misbehaving."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from runtime.eviction.events import Document
from runtime.eviction.imds import ImdsClient, ImdsError
from runtime.fleet.metadata_server import MetadataServer
from runtime.fleet.metadata_state import Fault
from tests.support.azurite import free_port


def test_metadata_header_and_api_version_are_required(imds: MetadataServer) -> None:
    url = f"{imds.url}/metadata/scheduledevents?api-version=2020-07-01"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=5)
    assert err.value.code == 400
    request = urllib.request.Request(f"{imds.url}/metadata/scheduledevents", headers={"Metadata": "true"})
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=5)


def test_empty_document_and_vm_name(imds: MetadataServer) -> None:
    client = ImdsClient(imds.vm_endpoint("spot-7"))
    assert client.scheduled_events() == Document(0, [], [])
    assert client.vm_name() == "spot-7"


def test_events_per_vm_and_acknowledgement(imds: MetadataServer) -> None:
    event = imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    client = ImdsClient(imds.vm_endpoint("spot-1"))
    first = client.scheduled_events()
    incarnation, [seen] = first.incarnation, first.events
    assert (seen.event_id, seen.event_type, seen.status) == (event.event_id, "Preempt", "Scheduled")
    assert seen.not_before == pytest.approx(event.not_before, abs=1)  # RFC 1123 has whole seconds
    assert ImdsClient(imds.vm_endpoint("spot-2")).scheduled_events() == Document(0, [], [])
    client.acknowledge([event.event_id])
    then = client.scheduled_events()
    [started] = then.events
    assert (started.status, started.not_before, then.incarnation > incarnation) == ("Started", None, True)
    assert event.acknowledged_by == "spot-1"


def test_iso_not_before_from_the_mock_server_format(imds: MetadataServer) -> None:
    imds.state.add_event("Reboot", ["spot-1"], notice_seconds=900, iso_not_before=True)
    [seen] = ImdsClient(imds.vm_endpoint("spot-1")).scheduled_events().events
    assert seen.not_before is not None and seen.not_before - time.time() > 890


@pytest.mark.parametrize("fault, reason", [
    (Fault("status", status=500), "HTTP 500"),
    (Fault("status", status=404), "HTTP 404"),
    (Fault("garbage"), "malformed reply"),
    (Fault("raw", body='[{"EventId": "x"}]'), "malformed reply"),
    (Fault("delay", seconds=1.5), "no answer within 0.5 s"),
])
def test_faults_become_imds_errors(imds: MetadataServer, fault: Fault, reason: str) -> None:
    imds.state.add_fault("spot-1", fault)
    client = ImdsClient(imds.vm_endpoint("spot-1"), timeout=0.5)
    with pytest.raises(ImdsError, match=reason):
        client.scheduled_events()
    time.sleep(1.1 if fault.mode == "delay" else 0)
    assert client.scheduled_events() == Document(0, [], [])  # the next poll works again


def test_unreachable_endpoint() -> None:
    with pytest.raises(ImdsError, match="unreachable"):
        ImdsClient(f"http://127.0.0.1:{free_port()}", timeout=0.5).scheduled_events()


def test_proxies_are_bypassed(imds: MetadataServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert ImdsClient(imds.vm_endpoint("spot-1")).scheduled_events() == Document(0, [], [])


def test_start_requests_body_shape(imds: MetadataServer) -> None:
    event = imds.state.add_event("Preempt", ["spot-1"], notice_seconds=30)
    body = json.dumps({"StartRequests": [{"EventId": event.event_id}]}).encode()
    request = urllib.request.Request(f"{imds.url}/metadata/scheduledevents?api-version=2020-07-01",
                                     data=body, headers={"Metadata": "true"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as reply:
        assert reply.status == 200
    assert event.started_at is not None
