"""Shared fixtures: backends (embedded, Azurite and moto), sample media, one loaded engine per session."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import pytest

from runtime.config import Settings, load_settings
from runtime.engines.base import Transcriber
from runtime.queue.azure_queue import AzureQueue
from runtime.queue.base import WorkQueue
from runtime.queue.sqlite_queue import SqliteQueue
from runtime.queue.sqs_queue import SqsQueue
from runtime.samples import demo_sample
from runtime.store.azure_blob import AzureBlobStore
from runtime.store.base import ObjectStore
from runtime.store.file_store import FileStore
from runtime.store.s3_store import S3Store
from tests.support.azurite import ACCOUNT, Azurite, start_azurite
from tests.support.moto_server import REGION, MotoServer, start_moto

# Properties are checked for what they return, never for how fast: CI has two loaded cores (pytest -n 2),
# where generating an input or running an example can take seconds. Timing lives in bench/.
hypothesis.settings.register_profile("spotkit", deadline=None,
                                     suppress_health_check=[hypothesis.HealthCheck.too_slow])
hypothesis.settings.load_profile("spotkit")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
DEMO_SAMPLE = demo_sample()


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    service = start_azurite()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    service = start_moto()
    yield service
    service.stop()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class QueueUnderTest:
    queue: WorkQueue
    advance: Callable[[float], None]  # let time pass (fake clock, or real time on Azurite)


def make_queue(kind: str, tmp_path: Path, request: pytest.FixtureRequest,
               max_deliveries: int = 5) -> QueueUnderTest:
    name = f"q{uuid.uuid4().hex[:12]}"
    if kind == "sqlite":
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds

        queue: WorkQueue = SqliteQueue(tmp_path / "queue.db", name, max_deliveries, clock=clock)
        return QueueUnderTest(queue, advance)
    if kind == "moto":
        server: MotoServer = request.getfixturevalue("moto")
        queue = SqsQueue(REGION, name, max_deliveries, server.env())
        queue.ensure()
        return QueueUnderTest(queue, time.sleep)
    service: Azurite = request.getfixturevalue("azurite")
    queue = AzureQueue(ACCOUNT, name, max_deliveries, service.connection_string)
    queue.ensure()
    return QueueUnderTest(queue, time.sleep)


@pytest.fixture(params=["sqlite", "azurite", "moto"])
def queue_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def queue_ut(queue_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[QueueUnderTest]:
    made = make_queue(queue_kind, tmp_path, request)
    yield made
    made.queue.close()


@pytest.fixture(params=["file", "azurite", "moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "file":
        made: ObjectStore = FileStore(tmp_path / "store")
    elif request.param == "moto":
        server: MotoServer = request.getfixturevalue("moto")
        made = S3Store(f"b{uuid.uuid4().hex[:12]}", "spotkit", server.env())
    else:
        service: Azurite = request.getfixturevalue("azurite")
        made = AzureBlobStore(ACCOUNT, f"c{uuid.uuid4().hex[:12]}", service.connection_string)
    made.ensure()
    yield made
    made.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded backends in a fresh directory, fast retries and idle exit for tests."""
    return load_settings(env={}, home=tmp_path / "home", node_name="test-node",
                         idle_seconds=0.5, retry_seconds=0, heartbeat_seconds=0.5)


@pytest.fixture(scope="session")
def whisper() -> Transcriber:
    """The packaged tiny.en model, loaded once (int8 on CPU); no downloads."""
    from runtime.engines.faster_whisper_engine import FasterWhisperTranscriber

    return FasterWhisperTranscriber("tiny.en", cpu_threads=2, batch_size=8)
