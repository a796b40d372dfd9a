"""Content-derived ids and the queue message format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.errors import BadMessage
from runtime.media import Pcm
from runtime.work import TaskOptions, WorkItem, job_id, segment_id

PCM = Pcm(np.arange(16_000, dtype=np.int16))


def test_segment_id_is_content_and_settings() -> None:
    base = segment_id(PCM, TaskOptions())
    assert base == segment_id(Pcm(PCM.samples.copy()), TaskOptions())
    assert base != segment_id(Pcm(PCM.samples[:-1]), TaskOptions())
    assert base != segment_id(PCM, TaskOptions(model="large-v3"))
    assert base != segment_id(PCM, TaskOptions(language="de"))
    assert len(base) == 64


def test_job_id_is_input_and_options() -> None:
    assert job_id("abc", TaskOptions(), 30) == job_id("abc", TaskOptions(), 30)
    assert job_id("abc", TaskOptions(), 30) != job_id("abd", TaskOptions(), 30)
    assert job_id("abc", TaskOptions(), 30) != job_id("abc", TaskOptions(), 10)


def test_work_item_round_trip_and_size() -> None:
    item = WorkItem("j" * 24, "a" * 64, TaskOptions(), 29.5)
    body = item.encode()
    assert WorkItem.decode(body) == item
    assert len(body.encode()) < 1024  # Azure's limit is 64 KiB


@pytest.mark.parametrize("body, reason", [
    ("garbage{", "malformed"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({"v": 99}), "unsupported version"),
    (json.dumps({"v": 1, "job": "j", "segment": "zz", "options": {}, "seconds": 1}), "sha256"),
    (json.dumps({"v": 1, "job": "j", "segment": "a" * 64, "options": {"task": "dance"},
                 "seconds": 1}), "unknown task"),
    (json.dumps({"v": 1, "job": "j"}), "missing field 'options'"),
])
def test_malformed_items_are_bad_messages(body: str, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        WorkItem.decode(body)


@pytest.mark.parametrize("body, reason", [
    (json.dumps({"v": 1, "job": "j", "segment": "a" * 64, "options": [1], "seconds": 1}), "not task options"),
    (json.dumps({"v": 1, "job": "j", "segment": "a" * 64, "options": {"language": 5}, "seconds": 1}),
     "is not a str"),
    (json.dumps({"v": 1, "job": "j", "segment": "a" * 64, "options": {}, "seconds": "long"}),
     "not a segment length"),
    (json.dumps({"v": 1, "job": 7, "segment": "a" * 64, "options": {}, "seconds": 1}), "must be strings"),
    ("[" * 100_000, "malformed"),
])
def test_wrongly_typed_items_are_bad_messages(body: str, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        WorkItem.decode(body)


@given(st.text(max_size=300) | st.builds(json.dumps, st.dictionaries(st.sampled_from(
    ["v", "job", "segment", "options", "seconds"]), st.none() | st.integers() | st.text() | st.floats()
    | st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=5)))))
def test_any_message_is_an_item_or_a_bad_message(body: str) -> None:
    try:
        item = WorkItem.decode(body)
    except BadMessage:
        return
    assert isinstance(item, WorkItem) and item.options.task in ("transcribe", "translate")
