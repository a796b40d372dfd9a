"""A node: the agent plus its eviction watcher, wired to signals — what ``spotkit agent`` runs."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from runtime.agent import Agent
from runtime.azure_env import on_azure
from runtime.config import Settings
from runtime.engines.base import Transcriber, Translator
from runtime.eviction.alerts import Alerter
from runtime.eviction.decision import DrainPolicy
from runtime.eviction.imds import ImdsClient
from runtime.eviction.sources import DrainRequestSource, EventSource, ScheduledEventsSource, SignalSource
from runtime.eviction.watcher import Watcher
from runtime.queue.base import WorkQueue
from runtime.store.base import ObjectStore

log = logging.getLogger("spotkit.node")

def scheduled_events_enabled(settings: Settings) -> bool:
    if settings.scheduled_events == "auto":
        return on_azure()
    return settings.scheduled_events == "on"


class Node:
    """Composes agent, event sources and watcher; `run` returns the process exit code."""

    def __init__(self, settings: Settings, queue: WorkQueue, store: ObjectStore,
                 transcriber: Callable[[], Transcriber], until_idle: bool = False,
                 exit_when_drained: bool = False, clock: Callable[[], float] = time.time,
                 translator: Callable[[], Translator | None] = lambda: None) -> None:
        self.clock = clock
        self.settings = settings
        self.supervisor: Any = None  # the vLLM supervisor, when the node translates with vLLM
        self.agent = Agent(settings, queue, store, transcriber, clock, until_idle, exit_when_drained, translator)
        self.signals = SignalSource(settings.sigterm_grace_seconds)
        sources: list[EventSource] = [self.signals, DrainRequestSource(store, settings.node_name)]
        imds = ImdsClient(settings.imds_endpoint)
        if scheduled_events_enabled(settings):
            sources.append(ScheduledEventsSource(imds, settings.vm_name, settings.imds_poll_seconds))
        self.watcher = Watcher(
            settings.node_name, sources, self.agent.drain, store,
            DrainPolicy(settings.safety_margin_seconds, page_each=settings.eviction_alerts == "each"),
            Alerter(settings.alert_webhook, settings.runbook_base_url),
            clock, acknowledge=imds.acknowledge if settings.acknowledge_events else None)

    def on_signal(self, signum: int, frame: FrameType | None = None) -> None:
        """First SIGTERM/SIGINT: drain with the grace deadline (or finish the drain under way) and exit
        once the watcher has run the drain sequence. A second: stop now."""
        name = signal.Signals(signum).name
        if self.signals.trigger(self.clock(), name) > 1:
            self.agent.request_stop(f"second {name}")
            return
        self.agent.lifecycle.exit_when_drained()
        self.watcher.poke()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)

    def run(self) -> int:
        """Start vLLM first when the node translates with it, then the agent; stop it on the way out."""
        supervisor = None
        if self.settings.translator == "vllm":
            from runtime.engines.vllm_node import build_supervisor

            supervisor = self.supervisor = build_supervisor(self.settings)
            supervisor.start()  # raises EngineError with the server's log tail if it never gets healthy
            self.agent.drain.on_drained = supervisor.stop  # a drained node frees the GPU at once
            self.agent.drain.on_resumed = supervisor.start  # the eviction was cancelled
        thread = threading.Thread(target=self.watcher.run, name="watcher", daemon=True)
        thread.start()
        try:
            return self.agent.run()
        finally:
            self.watcher.stop()
            thread.join(timeout=5)
            self.watcher.alerter.wait(timeout=5)
            if supervisor is not None:
                supervisor.stop()
