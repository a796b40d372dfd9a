"""The node agent: lease segments, answer from the cache or run the engine in batches, record usage.

One iteration, in order (each step's failure leaves the queue consistent):

1. lease up to ``batch_size`` messages; a background ticker renews the leases and writes heartbeats;
2. poison what cannot be understood (a garbage message, missing or corrupt segment audio) at once;
3. answer cache hits (node disk, then store) without the engine;
4. run the misses through the engine as one batch, write results write-if-absent to disk and store;
5. delete each handled message; append usage records (done / cache-hit / requeued / failed).

SIGTERM stops pulling: a batch already in the engine finishes, everything else is requeued at once
(visibility 0), and the agent exits 0. A ``kill -9`` loses only time: leases expire and another node
redoes the work, whose result is byte-identical (deterministic decoding, content-hash keys).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from runtime import __version__
from runtime.agent_metrics import AgentMetrics
from runtime.audio_codec import decode_flac
from runtime.cache import ResultCache
from runtime.config import Settings
from runtime.engines.base import AudioItem, Transcriber
from runtime.errors import BadMessage, EngineError, MediaError, NotFound, SpotkitError
from runtime.heartbeat import Heartbeat, write_heartbeat
from runtime.leases import LeaseSet
from runtime.queue.base import Message, WorkQueue
from runtime.store.base import ObjectStore
from runtime.usage import UsageLog, UsageRecord
from runtime.work import TranscriptResult, WorkItem, audio_key, canonical_json, poison_key

log = logging.getLogger("spotkit.agent")

MAX_IDENTICAL_FAILURES = 10


@dataclass
class _Pending:
    message: Message
    item: WorkItem
    audio: AudioItem | None = None


class Agent:
    def __init__(
        self,
        settings: Settings,
        queue: WorkQueue,
        store: ObjectStore,
        transcriber: Callable[[], Transcriber],
        clock: Callable[[], float] = time.time,
        until_idle: bool = False,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.store = store
        self.node = settings.node_name
        self.clock = clock
        self.until_idle = until_idle
        self.cache = ResultCache(settings.cache_dir, store)
        self.usage = UsageLog(store, self.node, clock)
        self.metrics = AgentMetrics(self.node)
        self.leases = LeaseSet(queue)
        self.stop_event = threading.Event()
        self.state = "starting"
        self.counts = {"processed": 0, "cache_hits": 0, "failures": 0}
        self._make_transcriber = transcriber
        self._engine: Transcriber | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def request_stop(self, why: str = "stop requested") -> None:
        if not self.stop_event.is_set():
            log.info("node=%s event=stop reason=%r in_flight=%d", self.node, why, len(self.leases))
        self.stop_event.set()

    def run(self) -> int:
        """Run until stopped (or idle, with ``until_idle``). Returns the process exit code."""
        self.queue.ensure()
        self.store.ensure()
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_port)
        ticker = threading.Thread(target=self._tick, name="lease-renewer", daemon=True)
        ticker.start()
        code = 0
        try:
            self._engine = self._make_transcriber()
            code = self._loop()
        except SpotkitError as err:
            log.error("node=%s event=fatal error=%r", self.node, str(err))
            self.state = "failed"
            code = 1
        finally:
            requeued = self.leases.release_all()
            if requeued:
                log.info("node=%s event=requeued segments=%d", self.node, len(requeued))
            self.state = "stopped" if code == 0 else "failed"
            self.stop_event.set()
            ticker.join(timeout=5)
            self._beat()
            self._flush_usage()
            if self._engine is not None:
                self._engine.close()
        return code

    def _tick(self) -> None:
        """Renew leases well before they expire, write heartbeats, flush usage."""
        interval = max(0.2, min(self.settings.lease_seconds / 3, self.settings.heartbeat_seconds))
        while True:
            self.leases.renew_all(self.settings.lease_seconds)
            self._beat()
            if self.stop_event.wait(interval):
                return

    def _beat(self) -> None:
        try:
            write_heartbeat(self.store, Heartbeat(
                self.node, self.state, __version__, self.clock(), self.leases.segments(), **self.counts))
        except SpotkitError as err:
            log.warning("node=%s event=heartbeat-failed error=%r", self.node, str(err))

    def _flush_usage(self) -> None:
        try:
            self.usage.flush()
        except SpotkitError as err:
            log.warning("node=%s event=usage-flush-failed error=%r (kept for retry)", self.node, str(err))

    # -- main loop --------------------------------------------------------------------------
    def _loop(self) -> int:
        idle_since: float | None = None
        last_error, repeats = "", 0
        while not self.stop_event.is_set():
            try:
                self.state = "idle" if not len(self.leases) else "working"
                messages = self.queue.receive(self.settings.batch_size, self.settings.lease_seconds,
                                              on_poison=self._record_poison)
                if messages:
                    idle_since = None
                    self.state = "working"
                    self._handle(messages)
                    self._flush_usage()
                else:
                    now = self.clock()
                    idle_since = idle_since or now
                    if (self.until_idle and now - idle_since >= self.settings.idle_seconds
                            and self.queue.approximate_count() == 0):
                        log.info("node=%s event=idle-exit", self.node)
                        return 0
                    self.stop_event.wait(0.25)
                last_error, repeats = "", 0
            except SpotkitError as err:
                self.metrics.errors.labels(self.node).inc()
                self.leases.release_all(error=str(err))
                repeats = repeats + 1 if str(err) == last_error else 1
                last_error = str(err)
                log.warning("node=%s event=iteration-failed repeats=%d error=%r",
                            self.node, repeats, last_error)
                if repeats >= MAX_IDENTICAL_FAILURES:
                    log.error("node=%s event=giving-up error=%r", self.node, last_error)
                    return 1
                self.stop_event.wait(min(30.0, 0.5 * 2 ** repeats))
        return 0

    def _handle(self, messages: list[Message]) -> None:
        for message in messages:
            self.leases.add(message)
        self.metrics.in_flight.labels(self.node).set(len(self.leases))
        misses: list[_Pending] = []
        for message in messages:
            pending = self._parse(message)
            if pending is not None and not self._answer_from_cache(pending):
                misses.append(pending)
        misses = [p for p in misses if self._load_audio(p)]
        if not misses:
            return
        if self.stop_event.is_set():
            self._requeue(misses, "node draining before the batch started")
            return
        self._run_engine(misses)
        self.metrics.in_flight.labels(self.node).set(len(self.leases))

    def _parse(self, message: Message) -> _Pending | None:
        try:
            item = WorkItem.decode(message.body)
        except BadMessage as err:
            self._poison(message, str(err))
            return None
        self.leases.tag(message.id, item.segment)
        return _Pending(message, item)

    def _answer_from_cache(self, pending: _Pending) -> bool:
        item = pending.item
        started = self.clock()
        hit = self.cache.get(item.options.task, item.segment)
        if hit is None:
            return False
        self._complete(pending, "cache-hit", started, tokens_out=0, engine="cache", model=item.options.model)
        self.counts["cache_hits"] += 1
        return True

    def _load_audio(self, pending: _Pending) -> bool:
        item = pending.item
        engine = self._engine
        assert engine is not None
        if item.options.model != engine.model:
            self._fail(pending, f"this node serves model {engine.model!r}, the segment asks for "
                                f"{item.options.model!r}", self.clock())
            return False
        try:
            pcm = decode_flac(self.store.get(audio_key(item.segment)), name=audio_key(item.segment))
        except NotFound:
            self._poison(pending.message, f"segment audio {audio_key(item.segment)} is missing from "
                                          "the store; resubmit the media file")
            return False
        except MediaError as err:
            self._poison(pending.message, f"segment audio is corrupt: {err}")
            return False
        pending.audio = AudioItem(item.segment, pcm, item.options)
        return True

    def _run_engine(self, batch: list[_Pending]) -> None:
        engine = self._engine
        assert engine is not None
        started = self.clock()
        try:
            with self.metrics.batch_seconds.labels(self.node).time():
                results = engine.transcribe_batch([p.audio for p in batch if p.audio is not None])
        except EngineError as err:
            for pending in batch:
                self._fail(pending, str(err), started)
            return
        for pending, result in zip(batch, results, strict=True):
            self._store_result(pending, result, started)

    def _store_result(self, pending: _Pending, result: TranscriptResult, started: float) -> None:
        self.cache.put(pending.item.options.task, pending.item.segment, result.to_bytes())
        self.metrics.audio_seconds.labels(self.node).inc(pending.item.seconds)
        self._complete(pending, "done", started, result.tokens, result.engine, result.model)

    # -- settling messages ------------------------------------------------------------------
    def _record(self, pending: _Pending, outcome: str, started: float, tokens_out: int = 0,
                engine: str = "", model: str = "", error: str = "") -> None:
        item = pending.item
        self.usage.add(UsageRecord(
            node=self.node, job=item.job, segment=item.segment, task=item.options.task,
            audio_seconds=item.seconds, tokens_in=0, tokens_out=tokens_out,
            engine=engine or (self._engine.engine if self._engine else ""),
            model=model or item.options.model, started_at=started, ended_at=self.clock(),
            outcome=outcome, error=error,
        ))
        self.metrics.count(outcome)

    def _complete(self, pending: _Pending, outcome: str, started: float, tokens_out: int,
                  engine: str, model: str) -> None:
        self.leases.settle(pending.message.id, self.queue.delete)
        self.counts["processed"] += 1
        self._record(pending, outcome, started, tokens_out, engine, model)

    def _fail(self, pending: _Pending, error: str, started: float) -> None:
        delay = int(min(60.0, self.settings.retry_seconds * 2 ** (pending.message.dequeue_count - 1)))
        self.counts["failures"] += 1
        self.leases.settle(pending.message.id, lambda m: self.queue.fail(
            m, error, retry_delay=delay, on_poison=self._record_poison))
        self._record(pending, "failed", started, error=error)
        log.warning("node=%s event=segment-failed segment=%s error=%r", self.node,
                    pending.item.segment, error)

    def _requeue(self, batch: list[_Pending], why: str) -> None:
        for pending in batch:
            if self.leases.settle(pending.message.id, lambda m: self.queue.release(m, 0)):
                self._record(pending, "requeued", self.clock(), error=why)

    def _poison(self, message: Message, reason: str) -> None:
        self.leases.settle(message.id, lambda m: self.queue.poison(m, reason, self._record_poison))

    def _record_poison(self, message: Message, reason: str) -> None:
        """Remember why a segment was poisoned, for `spotkit status`; garbage has no segment."""
        log.error("node=%s event=poisoned message=%s reason=%r", self.node, message.id, reason)
        try:
            item = WorkItem.decode(message.body)
        except BadMessage:
            return
        record = {"segment": item.segment, "job": item.job, "reason": reason, "at": self.clock(),
                  "node": self.node}
        self.store.put(poison_key(item.segment), canonical_json(record))
