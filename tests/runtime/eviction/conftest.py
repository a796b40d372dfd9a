"""A local metadata service per test (the documented Scheduled Events API, many VMs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.fleet.metadata_server import MetadataServer


@pytest.fixture
def imds() -> Iterator[MetadataServer]:
    server = MetadataServer(default_vm="spot-1").start()
    yield server
    server.stop()
