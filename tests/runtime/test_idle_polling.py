"""An idle agent backs off its receives (0.25 s doubling to idle_poll_max_seconds) and starts over
when work comes; a stop or a drain ends its pause at once. What breaks first at a thousand nodes is
idle polling (docs/scale.md): every receive an idle node sends is one of the queue's operations."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from runtime.agent.lifecycle import Lifecycle
from runtime.agent.loop import Agent
from runtime.config import load_settings
from runtime.engines.revision import SIMULATED_REVISION
from runtime.engines.simulated import SimulatedTranscriber
from runtime.jobs import job_status, submit
from runtime.queue import open_queue
from runtime.queue.base import WorkQueue
from runtime.store import open_store
from runtime.work import TaskOptions
from tests.conftest import DEMO_SAMPLE


class CountingQueue:
    """The agent's queue, counting receives (composition: every other call goes to the real one)."""

    def __init__(self, inner: WorkQueue) -> None:
        self.inner, self.receives = inner, 0

    def receive(self, *args: Any, **kwargs: Any) -> Any:
        self.receives += 1
        return self.inner.receive(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_idle_receives_back_off_and_work_resets_them(tmp_path: Path) -> None:
    settings = load_settings(env={}, home=tmp_path / "home", node_name="idle-1", transcriber="simulated",
                             simulated_speed=500.0, idle_poll_max_seconds=1.0, heartbeat_seconds=0.5)
    queue, store = open_queue(settings.queue), open_store(settings.store)
    queue.ensure()
    store.ensure()
    counting = CountingQueue(queue)
    engine = SimulatedTranscriber(settings.model, settings.simulated_speed)
    agent = Agent(settings, counting, store, lambda: engine)  # type: ignore[arg-type]
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        time.sleep(1.0)  # started, found nothing
        before = counting.receives
        time.sleep(4.0)
        idle = counting.receives - before
        assert 3 <= idle <= 6, idle  # about one a second at the cap; at 0.25 s it was 16
        submitted = time.monotonic()
        job = submit(DEMO_SAMPLE, queue, store, TaskOptions(model=settings.model, revision=SIMULATED_REVISION),
                     30.0).job
        while not job_status(store, job).complete:
            assert time.monotonic() - submitted < 30, "the idle agent did not pick up new work"
            time.sleep(0.05)
        assert time.monotonic() - submitted < 1.0 + 5  # found within the cap (and done in moments)
    finally:
        started = time.monotonic()
        agent.request_stop("test over")
        thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 2.0  # the stop cut the pause short


def test_a_drain_ends_a_nap_at_once() -> None:
    lifecycle = Lifecycle()
    threading.Timer(0.2, lifecycle.begin_drain, args=(time.time() + 30,)).start()
    started = time.monotonic()
    lifecycle.nap(30.0)
    assert time.monotonic() - started < 1.0
