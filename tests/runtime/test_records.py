"""The store's records: one typed definition for writer and reader, versioned, refusing what is not one."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.records import (
    LAYOUT,
    ROUTING_KEY,
    AuditRecord,
    BadRecord,
    BootRecord,
    DrainRequest,
    EvictionRecord,
    Heartbeat,
    HeldLease,
    RoutingRecord,
    UsageRecord,
    audit_key,
    boot_key,
    boot_key_parts,
    dump,
    load,
    load_lines,
    read_heartbeats,
    read_latest_audit,
    read_latest_boots,
    read_routing,
)
from runtime.store.file_store import FileStore
from tests.conftest import REPO


def test_docs_store_table_is_the_layout() -> None:
    text = (REPO / "docs" / "runtime.md").read_text()
    section = text.split("## Store layout", 1)[1].split("\n## ", 1)[0]
    rows = [tuple(cell.strip() for cell in line.strip("|").split("|"))
            for line in section.splitlines() if line.startswith("| `")]
    assert rows == [(f"`{key}`", who, how) for key, who, how in LAYOUT]


def test_round_trip_and_version() -> None:
    record = EvictionRecord("n1", "e1", "Preempt", "imds", 1.0, None, 30.0, 1.5, acknowledged_at=3.0)
    assert load(EvictionRecord, dump(record)) == record
    assert json.loads(dump(record))["v"] == 1


def test_a_record_without_a_version_is_version_one() -> None:
    raw = {"id": "drain-1", "requested_at": 10, "deadline_seconds": 0, "reason": "x"}
    assert load(DrainRequest, json.dumps(raw).encode()) == DrainRequest("drain-1", 10.0, 0.0, "x")


@pytest.mark.parametrize("data, problem", [
    (b"{", "not JSON"), (b"[]", "not a JSON object"), (b'{"id": "d"}', "lacks the field 'requested_at'"),
    (b'{"id": "d", "requested_at": "soon"}', "field 'requested_at' is 'soon'"),
    (b'{"id": "d", "requested_at": true}', "field 'requested_at' is True"),
    (b'{"id": "d", "requested_at": 1, "v": 2}', "version 2"), (b"\xff\xfe", "not JSON"),
])
def test_what_is_not_a_record_is_refused_with_its_reason(data: bytes, problem: str) -> None:
    with pytest.raises(BadRecord, match=re.escape(problem)):
        load(DrainRequest, data, "drain-requests/n1.json")


def test_one_corrupt_heartbeat_never_hides_the_others(tmp_path: object) -> None:
    store = FileStore(tmp_path / "store")  # type: ignore[operator]
    store.ensure()
    store.put("heartbeats/good.json", dump(Heartbeat("good", "idle", "1", 1.0)))
    store.put("heartbeats/bad.json", b'{"node": ')
    assert [b.node for b in read_heartbeats(store)] == ["good"]


def test_a_heartbeat_carries_its_leases_and_one_without_them_still_reads() -> None:
    leases = [HeldLease("m1", "r1", 160.0, "s1", "j1"), HeldLease("m2", "r2", 161.0)]
    record = Heartbeat("n1", "working", "1", 100.0, ["s1"], lease_expires_at=160.0, leases=leases)
    assert load(Heartbeat, dump(record)) == record
    assert json.loads(dump(record))["leases"][1] == {"message_id": "m2", "pop_receipt": "r2",
                                                     "expires_at": 161.0, "segment": "", "job": ""}
    older = {"node": "n0", "state": "working", "version": "0.1", "updated_at": 100, "in_flight": ["s1"]}
    assert load(Heartbeat, json.dumps(older)).leases == []


@pytest.mark.parametrize("leases, problem", [
    ('"m1"', "field 'leases' is 'm1'"),
    ('["m1"]', "field 'leases'[0] is 'm1', expected a JSON object (HeldLease)"),
    ('[{"message_id": "m1", "expires_at": 1}]', "field 'leases'[0] lacks the field 'pop_receipt'"),
    ('[{"message_id": "m1", "pop_receipt": "r", "expires_at": "soon"}]', "field 'leases'[0]: field 'expires_at'"),
])
def test_a_malformed_lease_entry_is_a_bad_record_naming_it(leases: str, problem: str) -> None:
    data = f'{{"node": "n1", "state": "working", "version": "1", "updated_at": 1, "leases": {leases}}}'
    with pytest.raises(BadRecord, match=re.escape(problem)):
        load(Heartbeat, data, "heartbeats/n1.json")


@given(st.binary(max_size=200))
def test_any_bytes_are_a_record_or_a_bad_record(data: bytes) -> None:
    for kind in (Heartbeat, EvictionRecord, DrainRequest):
        try:
            load(kind, data)
        except BadRecord:
            pass
    try:
        load_lines(UsageRecord, data)
    except BadRecord:
        pass


def test_each_nodes_newest_boot_is_read_and_an_old_boot_record_reads_without_a_model(tmp_path: object) -> None:
    store = FileStore(tmp_path / "s")  # type: ignore[operator]
    old = BootRecord("gpu-slot-1", 100.0, 2.0, 50.0, False, "faster-whisper", "0.1.0", 30.0, "tiny.en")
    new = BootRecord("gpu-slot-1", 90_000.0, 1.0, 5.0, True, "faster-whisper", "0.2.0", 20.0, "large-v3")
    store.put(boot_key("1970-01-01", "gpu-slot-1", 100_000), dump(old))
    store.put(boot_key("1970-01-02", "gpu-slot-1", 90_000_000), dump(new))
    legacy = {k: v for k, v in json.loads(dump(old)).items() if k != "model"} | {"node": "slot-2"}
    store.put(boot_key("1970-01-01", "slot-2", 5), json.dumps(legacy).encode())
    store.put("boots/day=1970-01-01/not-a-boot.txt", b"junk")
    assert read_latest_boots(store) == {"gpu-slot-1": new, "slot-2": load(BootRecord, legacy)}
    assert read_latest_boots(store)["slot-2"].model == ""
    assert boot_key_parts(boot_key("2026-01-01", "a-b-c", 42)) == ("a-b-c", 42)
    assert boot_key_parts("boots/day=2026-01-01/nostamp.json") is None


def test_routing_and_the_newest_decision_are_read_back(tmp_path: object) -> None:
    store = FileStore(tmp_path / "s")  # type: ignore[operator]
    assert read_routing(store) is None and read_latest_audit(store, ["1970-01-01"]) is None
    store.put(ROUTING_KEY, dump(RoutingRecord("split", 7.0)))
    assert read_routing(store) == RoutingRecord("split", 7.0)
    early, late = (AuditRecord(at, {"api_workers": n}, 1, "split", "why") for at, n in ((10.0, 1), (20.0, 2)))
    for record in (late, early):
        store.put(audit_key("1970-01-01", int(record.at * 1000), "abc"), dump(record))
    assert read_latest_audit(store, ["1970-01-02", "1970-01-01"]) == late
    store.put(ROUTING_KEY, b"{not json")
    assert read_routing(store) is None  # unreadable: logged, shown as no decision
