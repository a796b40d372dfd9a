"""The gateway under test: the real ASGI app on uvicorn in a thread, on a free port, and an agent
in a thread beside it (any engine), both on the embedded backends of one `Settings`."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from runtime.agent.loop import Agent
from runtime.config import Settings
from runtime.engines.base import Transcriber
from runtime.gateway.app import create_app
from runtime.queue import open_queue
from runtime.store import open_store


@contextmanager
def gateway(settings: Settings, spool: Path, **options: Any) -> Iterator[str]:
    """Serve the gateway; yields its base URL (``http://127.0.0.1:PORT/v1``)."""
    app = create_app(settings, spool_dir=spool, poll_seconds=0.05, **options)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def agent(settings: Settings, engine: Callable[[], Transcriber], queue_url: str = "") -> Iterator[Agent]:
    """An agent working the queue (the fleet's, or *queue_url*) until the block ends."""
    worker = Agent(settings, open_queue(queue_url or settings.queue, settings.max_deliveries),
                   open_store(settings.store), engine)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.request_stop("test over")
        thread.join(timeout=30)
