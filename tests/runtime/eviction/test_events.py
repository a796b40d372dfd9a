"""The Scheduled Events document format, in every shape Azure and its mock server write it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.eviction.events import (
    Document,
    EventStore,
    InterruptionEvent,
    MalformedDocument,
    format_not_before,
    parse_document,
    parse_not_before,
)


def doc(*events: dict[str, object], incarnation: int = 1) -> bytes:
    return json.dumps({"DocumentIncarnation": incarnation, "Events": list(events)}).encode()


def event(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "EventId": "602d9444-d2cd-49c7-8624-8643e7171297", "EventType": "Preempt",
        "ResourceType": "VirtualMachine", "Resources": ["spot-1"], "EventStatus": "Scheduled",
        "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT", "Description": "", "EventSource": "Platform",
        "DurationInSeconds": -1}
    base.update(fields)
    return base


@pytest.mark.parametrize("text, expected", [
    ("Mon, 19 Sep 2016 18:29:47 GMT", 1474309787.0),  # RFC 1123, as Azure writes it
    ("2016-09-19T18:29:47Z", 1474309787.0),  # ISO 8601, as Microsoft's mock server writes it
    ("2016-09-19T20:29:47+02:00", 1474309787.0),
    ("2016-09-19T18:29:47", 1474309787.0),  # no zone: UTC
    ("", None),  # Started
    ("   ", None),
])
def test_not_before_formats(text: str, expected: float | None) -> None:
    assert parse_not_before(text) == expected


def test_not_before_round_trip() -> None:
    assert parse_not_before(format_not_before(1474309787.0)) == 1474309787.0
    assert format_not_before(1474309787.0) == "Mon, 19 Sep 2016 18:29:47 GMT"


def test_bad_not_before() -> None:
    with pytest.raises(MalformedDocument, match="neither RFC 1123 nor ISO 8601"):
        parse_not_before("next tuesday")


def test_empty_document() -> None:
    assert parse_document(doc(incarnation=0)) == Document(0, [], [])
    assert parse_document(b"{}") == Document(0, [], [])


def test_full_event() -> None:
    document = parse_document(doc(event(), incarnation=7))
    [parsed] = document.events
    assert document.incarnation == 7
    assert parsed == InterruptionEvent(
        "602d9444-d2cd-49c7-8624-8643e7171297", "Preempt", "Scheduled", 1474309787.0, ("spot-1",),
        "", "Platform", -1, "imds")


def test_started_event_has_no_not_before() -> None:
    [parsed] = parse_document(doc(event(EventStatus="Started", NotBefore=""))).events
    assert (parsed.status, parsed.not_before) == ("Started", None)


def test_event_without_id_gets_a_stable_one() -> None:
    raw = event()
    del raw["EventId"]
    first = parse_document(doc(raw)).events[0].event_id
    assert first.startswith("sha-") and first == parse_document(doc(raw)).events[0].event_id


def test_applies_to_scale_set_instance_names() -> None:
    [parsed] = parse_document(doc(event(Resources=["gpu-pool_3", "gpu-pool_7"]))).events
    assert parsed.applies_to("gpu-pool_3") and not parsed.applies_to("gpu-pool_4")


@pytest.mark.parametrize("body, reason", [
    (b"<html>oops</html>", "not JSON"),
    (b"[]", "Events list"),
    (json.dumps({"Events": {"a": 1}}).encode(), "Events list"),
    (b"[" * 100_000, "not JSON"),
])
def test_what_is_not_a_document_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedDocument, match=reason):
        parse_document(body)


@pytest.mark.parametrize("bad, reason", [
    ("not an object", "not an object"),
    ({"EventId": "x"}, "EventType"),
    (event(EventId="other", Resources="spot-2"), "cannot tell whom it concerns"),
])
def test_one_bad_event_is_skipped_and_the_others_read(bad: object, reason: str) -> None:
    """Another VM's mangled event must not hide this VM's Preempt."""
    document = parse_document(doc(bad, event()))  # type: ignore[arg-type]
    assert [e.event_type for e in document.events] == ["Preempt"]
    [why] = document.skipped
    assert reason in why


def test_mangled_optional_fields_are_read_cautiously() -> None:
    [parsed] = parse_document(doc(event(NotBefore="soon", DurationInSeconds="long"))).events
    assert (parsed.not_before, parsed.duration_seconds) == (None, -1)  # an unreadable time means now


@pytest.mark.parametrize("incarnation", ["seven", None, [1], 1e400, True])
def test_a_non_integer_incarnation_is_read_as_zero(incarnation: object) -> None:
    document = parse_document(json.dumps({"DocumentIncarnation": incarnation, "Events": [event()]}).encode()
                              .replace(b"Infinity", b"1e400"))
    assert document.incarnation == 0 and len(document.events) == 1


def test_store_deduplicates_across_sources_and_forgets_finished() -> None:
    store = EventStore()
    a = InterruptionEvent("e1", "Preempt", "Scheduled", 100.0)
    store.update("imds", [a], now=1.0)
    store.update("replay", [a], now=2.0)
    assert store.current() == [a]
    assert store.first_seen("e1") == 1.0
    store.update("imds", [], now=3.0)
    assert store.current() == [a]  # still reported by the other source
    store.update("replay", [], now=4.0)
    assert store.current() == []


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                        max_size=3), max_leaves=8)
event_like = st.fixed_dictionaries({}, optional={
    "EventId": json_values, "EventType": st.sampled_from(["Preempt", "Freeze", "Reboot", ""]) | json_values,
    "Resources": st.lists(st.text(max_size=6), max_size=3) | json_values, "EventStatus": json_values,
    "NotBefore": st.text(max_size=30) | json_values, "DurationInSeconds": json_values})


@given(st.binary(max_size=200) | st.builds(lambda events, inc: json.dumps(
    {"DocumentIncarnation": inc, "Events": events}).encode(), st.lists(event_like, max_size=4), json_values))
def test_any_reply_is_a_document_or_a_malformed_document(body: bytes) -> None:
    try:
        document = parse_document(body)
    except MalformedDocument:
        return
    assert isinstance(document.incarnation, int)
    assert all(isinstance(e, InterruptionEvent) and e.event_type for e in document.events)
