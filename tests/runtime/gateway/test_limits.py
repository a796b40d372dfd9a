"""Keys, limits and bad input at the gateway: each refusal OpenAI-shaped, seen through the official
SDK where it can send the request, and nothing enqueued or stored for any of them."""

from __future__ import annotations

import json
import logging
import select
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx2
import openai
import pytest

from runtime.config import Settings, load_settings
from runtime.gateway.apikeys import create_key, revoke_key
from runtime.queue import open_queue
from runtime.records import JOBS
from runtime.store import open_store
from runtime.store.base import ObjectStore
from tests.conftest import DATA, DEMO_SAMPLE
from tests.support.gateway import gateway


@pytest.fixture
def sim(tmp_path: Path) -> Settings:
    return load_settings(env={}, home=tmp_path / "home", node_name="test-node", transcriber="simulated",
                         idle_seconds=0.5, retry_seconds=0, heartbeat_seconds=0.5)


@pytest.fixture
def served(sim: Settings, tmp_path: Path) -> Iterator[tuple[str, ObjectStore, Path]]:
    spool = tmp_path / "spool"
    with gateway(sim, spool) as base_url:
        yield base_url, open_store(sim.store), spool


def _nothing_queued(sim: Settings, store: ObjectStore, spool: Path) -> None:
    assert open_queue(sim.queue).approximate_count() == 0
    assert store.list(JOBS) == []
    assert list(spool.iterdir()) == []  # every spooled upload removed


def test_missing_unknown_and_revoked_keys_get_401(served: tuple[str, ObjectStore, Path], sim: Settings) -> None:
    base_url, store, spool = served
    key, text = create_key(store, "team-a")
    assert openai.OpenAI(base_url=base_url, api_key=text, max_retries=0).models.list().data[0].id == "tiny.en"
    missing_reply = httpx2.get(f"{base_url}/models", timeout=10)
    assert missing_reply.status_code == 401 and "missing API key" in missing_reply.json()["error"]["message"]
    for wrong in ("sk-not-ours", text[:-4] + "AAAA", "sk-spotkit-0123456789ab-" + "x" * 43):
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=base_url, api_key=wrong, max_retries=0).models.list()
    revoke_key(store, key.id)
    with pytest.raises(openai.AuthenticationError) as revoked:
        openai.OpenAI(base_url=base_url, api_key=text, max_retries=0).audio.transcriptions.create(
            model="whisper-1", file=DEMO_SAMPLE)
    assert revoked.value.status_code == 401 and "revoked" in revoked.value.message
    assert revoked.value.body["type"] == "authentication_error"  # type: ignore[index]
    _nothing_queued(sim, store, spool)


def test_over_the_rate_limit_is_429_with_retry_after(served: tuple[str, ObjectStore, Path]) -> None:
    base_url, store, _ = served
    _, text = create_key(store, "team-slow", rate_per_minute=2)
    client = openai.OpenAI(base_url=base_url, api_key=text, max_retries=0)
    client.models.list()
    client.models.list()
    with pytest.raises(openai.RateLimitError) as limited:
        client.models.list()
    assert int(limited.value.response.headers["retry-after"]) >= 1
    assert limited.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]
    _, other = create_key(store, "team-other", rate_per_minute=2)  # limits are per key
    openai.OpenAI(base_url=base_url, api_key=other, max_retries=0).models.list()


def _head(base_url: str, text: str, extra: str) -> tuple[socket.socket, bytes]:
    parts = urllib.parse.urlsplit(base_url)
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=30)
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {text}\r\n"
            f"Content-Type: multipart/form-data; boundary=b0undary\r\n{extra}\r\n").encode()
    return sock, head


def _response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """Read one HTTP response off a raw socket (the head, then Content-Length bytes of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_100_mb_upload_is_refused_413_without_being_read(served: tuple[str, ObjectStore, Path],
                                                           sim: Settings) -> None:
    base_url, store, spool = served
    _, text = create_key(store, "team-big")
    # Declared: refused from the header alone, before the body is sent at all.
    sock, head = _head(base_url, text, f"Content-Length: {100 * 1024 * 1024}\r\n")
    sock.sendall(head)
    status, body = _response(sock)
    sock.close()
    assert status == 413 and "25 MB" in body["error"]["message"]  # type: ignore[index]
    assert body["error"]["param"] == "file"  # type: ignore[index]

    # Chunked (no length): cut off once the file part passes the key's cap, not after 100 MB.
    _, small = create_key(store, "team-small", max_upload_mb=1)
    sock, head = _head(base_url, small, "Transfer-Encoding: chunked\r\n")
    preamble = (b'--b0undary\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
                b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.mp3"\r\n'
                b"Content-Type: audio/mpeg\r\n\r\n")
    sock.sendall(head + f"{len(preamble):x}\r\n".encode() + preamble + b"\r\n")
    chunk = b"\0" * (256 * 1024)
    sent = 0
    while sent < 100 * 1024 * 1024 and not select.select([sock], [], [], 0)[0]:
        try:
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    deadline = time.monotonic() + 30
    while not select.select([sock], [], [], 1)[0] and time.monotonic() < deadline:
        pass
    status, body = _response(sock)
    sock.close()
    assert status == 413 and "1 MB" in body["error"]["message"]  # type: ignore[index]
    assert sent < 20 * 1024 * 1024, sent  # the rest of the 100 MB was never asked for
    _nothing_queued(sim, store, spool)


def test_bad_input_is_400_naming_the_field_and_nothing_is_enqueued(served: tuple[str, ObjectStore, Path],
                                                                   sim: Settings, tmp_path: Path) -> None:
    base_url, store, spool = served
    _, text = create_key(store, "team-a")
    client = openai.OpenAI(base_url=base_url, api_key=text, max_retries=0)
    not_media = tmp_path / "notes.mp3"
    not_media.write_text("these are meeting notes, not audio\n" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cases: list[tuple[dict[str, object], str, str]] = [
        ({"model": "whisper-1", "file": not_media}, "file", ""),
        ({"model": "whisper-1", "file": empty}, "file", "empty"),
        ({"model": "whisper-1", "file": (DATA / "speech.mp3").read_bytes()[:4000]}, "file", ""),  # truncated
        ({"model": "gpt-4o-transcribe", "file": DEMO_SAMPLE}, "model", "unknown model"),
        ({"model": "whisper-1", "file": DEMO_SAMPLE, "response_format": "docx"}, "response_format", "docx"),
        ({"model": "whisper-1", "file": DEMO_SAMPLE, "language": "klingon"}, "language", ""),
        ({"model": "whisper-1", "file": DEMO_SAMPLE, "timestamp_granularities": ["char"]},
         "timestamp_granularities", "char"),
    ]
    for fields, param, words in cases:
        with pytest.raises(openai.BadRequestError) as refused:
            client.audio.transcriptions.create(**fields)  # type: ignore[call-overload]
        error = refused.value.body
        assert isinstance(error, dict) and error["param"] == param and error["type"] == "invalid_request_error", fields
        assert words in error["message"] and "\n" not in error["message"]
    reply = httpx2.post(f"{base_url}/audio/transcriptions", json={"model": "whisper-1"},
                        headers={"Authorization": f"Bearer {text}"}, timeout=10)
    assert reply.status_code == 400 and "multipart/form-data" in reply.json()["error"]["message"]
    _nothing_queued(sim, store, spool)


def test_a_key_cannot_read_another_keys_job_and_logs_hold_no_secrets(
        served: tuple[str, ObjectStore, Path], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="spotkit.gateway.access")
    base_url, store, _ = served
    key_a, text_a = create_key(store, "team-a")
    _, text_b = create_key(store, "team-b")
    with DEMO_SAMPLE.open("rb") as media:
        created = httpx2.post(f"{base_url}/spotkit/jobs", headers={"Authorization": f"Bearer {text_a}"},
                              files={"file": ("demo.wav", media)}, data={"model": "whisper-1"}, timeout=30)
    assert created.status_code == 202 and created.headers["x-spotkit-path"] == "fleet"
    job = created.json()["id"]
    assert created.json()["status"] == "queued"
    mine = httpx2.get(f"{base_url}/spotkit/jobs/{job}", headers={"Authorization": f"Bearer {text_a}"}, timeout=10)
    theirs = httpx2.get(f"{base_url}/spotkit/jobs/{job}", headers={"Authorization": f"Bearer {text_b}"}, timeout=10)
    unknown = httpx2.get(f"{base_url}/spotkit/jobs/{'0' * 24}", headers={"Authorization": f"Bearer {text_b}"},
                         timeout=10)
    assert mine.status_code == 200 and mine.json()["id"] == job
    assert theirs.status_code == unknown.status_code == 404 and theirs.json()["error"]["type"] == "not_found_error"
    root = base_url.removesuffix("/v1")
    assert httpx2.get(f"{root}/healthz", timeout=10).json() == {"ok": True}
    assert httpx2.get(f"{root}/readyz", timeout=10).json() == {"ready": True}
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "spotkit.gateway.access"]
    assert {(line["route"], line["status"]) for line in lines} >= {("jobs", 202), ("jobs", 200), ("jobs", 404)}
    assert any(line["key_id"] == key_a.id and line["job"] == job for line in lines)
    logged = caplog.text
    assert text_a not in logged and text_b not in logged and text_a.split("-", 3)[3] not in logged
