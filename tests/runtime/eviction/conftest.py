"""A local metadata service per test (the documented Scheduled Events API, many VMs)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from runtime.fleet.metadata_server import MetadataServer


@pytest.fixture
def imds() -> Iterator[MetadataServer]:
    server = MetadataServer(default_vm="spot-1").start()
    yield server
    server.stop()


@dataclass
class Webhook:
    url: str
    received: list[dict[str, object]]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A local webhook receiver (the metadata server's extra handler) and what it was sent."""
    received: list[dict[str, object]] = []

    def handle(method: str, path: str, body: dict[str, object]) -> tuple[int, object]:
        received.append(body)
        return 200, {}

    hook = MetadataServer(extra=handle).start()
    try:
        yield Webhook(f"{hook.url}/admin/hook", received)
    finally:
        hook.stop()
