"""The node agent: lease segments, answer from the cache or run the engine in batches, record usage.

One iteration, in order (each step's failure leaves the queue consistent):

1. lease up to ``batch_size`` messages; a background ticker renews the leases and writes heartbeats;
2. poison what cannot be understood (a garbage message, missing or corrupt segment audio) at once;
3. answer cache hits (node disk, then store) without the engine;
4. run the misses through the engine as one batch, write results write-if-absent to disk and store;
5. delete each handled message; append usage records (done / cache-hit / requeued / failed).

Draining (driven by `runtime.eviction.watcher.Watcher` through the `Drainable` methods below):
stop pulling, requeue at once what the engine has not started, let the running batch finish only
if it fits before the deadline (else requeue it too and count its engine time as wasted), then stay
drained — pulling nothing, still serving metrics — until the event is cancelled or the process
ends. A ``kill -9`` loses only time: leases expire and another node redoes the work, whose result
is byte-identical (deterministic decoding, content-hash keys).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runtime import __version__
from runtime.agent_drain import DrainMixin, _Batch
from runtime.agent_metrics import AgentMetrics
from runtime.agent_translate import TranslateMixin
from runtime.audio_codec import decode_flac
from runtime.cache import ResultCache
from runtime.config import Settings
from runtime.engines.base import AudioItem, Transcriber, Translator
from runtime.errors import BadMessage, EngineError, MediaError, NotFound, SpotkitError
from runtime.heartbeat import Heartbeat, write_heartbeat
from runtime.leases import LeaseSet
from runtime.queue.base import Message, WorkQueue
from runtime.store.base import ObjectStore
from runtime.usage import UsageLog, UsageRecord
from runtime.work import TRANSLATE, JobManifest, TranscriptResult, WorkItem, audio_key, canonical_json, poison_key

log = logging.getLogger("spotkit.agent")

MAX_IDENTICAL_FAILURES = 10


@dataclass
class _Pending:
    message: Message
    item: WorkItem
    audio: AudioItem | None = None


class Agent(DrainMixin, TranslateMixin):
    def __init__(
        self,
        settings: Settings,
        queue: WorkQueue,
        store: ObjectStore,
        transcriber: Callable[[], Transcriber],
        clock: Callable[[], float] = time.time,
        until_idle: bool = False,
        exit_when_drained: bool = False,
        translator: Callable[[], Translator | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.store = store
        self.node = settings.node_name
        self.clock = clock
        self.until_idle = until_idle
        self.exit_when_drained = exit_when_drained
        self.cache = ResultCache(settings.cache_dir, store)
        # A warm node boots with a populated cache directory on its persistent disk.
        self._had_cache = (settings.cache_dir / "results").is_dir()
        self.usage = UsageLog(store, self.node, clock)
        self.metrics = AgentMetrics(self.node)
        self.leases = LeaseSet(queue)
        self.stop_event = threading.Event()
        self.draining = threading.Event()
        self.state = "starting"
        self.counts = {"processed": 0, "cache_hits": 0, "failures": 0}
        self._make_transcriber = transcriber
        self._make_translator = translator
        self.on_drained: Callable[[], None] | None = None  # e.g. stop vLLM: a drained node frees the GPU
        self.on_resumed: Callable[[], None] | None = None
        self._translator: Translator | None = None
        self._manifests: dict[str, JobManifest] = {}
        self._engine: Transcriber | None = None
        self._lock = threading.Lock()  # guards _batch and _hold_until
        self._batch: _Batch | None = None
        self._hold_until: float | None = None
        self._requeued = 0  # segments handed back (drains, stops, failed iterations)
        self._wasted = 0.0  # engine seconds of abandoned batches
        # Engine seconds per audio second, learned from every batch (a prior until the first).
        self._engine_rate = settings.engine_seconds_per_audio_second

    # -- lifecycle --------------------------------------------------------------------------
    def request_stop(self, why: str = "stop requested") -> None:
        """Stop at once: finish the batch in the engine, requeue everything else, exit."""
        if not self.stop_event.is_set():
            log.info("node=%s event=stop reason=%r in_flight=%d", self.node, why, len(self.leases))
        self.stop_event.set()

    def run(self) -> int:
        """Run until stopped, idle (``until_idle``) or drained (``exit_when_drained``)."""
        self.queue.ensure()
        self.store.ensure()
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_port)
        ticker = threading.Thread(target=self._tick, name="lease-renewer", daemon=True)
        ticker.start()
        code = 0
        try:
            load_started = self.clock()
            self._engine = self._make_transcriber()
            self._translator = self._make_translator()
            self._record_boot(load_started)
            code = self._loop()
        except SpotkitError as err:
            log.error("node=%s event=fatal error=%r", self.node, str(err))
            code = 1
        finally:
            self._requeue_leased("agent stopping")
            self.state = "stopped" if code == 0 else "failed"
            self.stop_event.set()
            ticker.join(timeout=5)
            self.flush()
            if self._engine is not None:
                self._engine.close()
        return code

    def _tick(self) -> None:
        """Renew leases well before they expire, write heartbeats."""
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

    def flush(self) -> None:
        """Usage records and a heartbeat, now (before an acknowledgement or exit)."""
        try:
            self.usage.flush()
        except SpotkitError as err:
            log.warning("node=%s event=usage-flush-failed error=%r (kept for retry)", self.node, str(err))
        self._beat()

    # -- main loop --------------------------------------------------------------------------
    def _loop(self) -> int:
        idle_since: float | None = None
        last_error, repeats = "", 0
        while not self.stop_event.is_set():
            if self.draining.is_set():
                drained = self.is_drained()
                if drained and self.state != "drained" and self.on_drained is not None:
                    self.on_drained()
                self.state = "drained" if drained else "draining"
                if drained and self.exit_when_drained:
                    log.info("node=%s event=drained-exit", self.node)
                    return 0
                self.stop_event.wait(0.05)
                continue
            try:
                self.state = "working" if len(self.leases) else "idle"
                messages = self.queue.receive(self.settings.batch_size, self.settings.lease_seconds,
                                              on_poison=self._record_poison)
                if messages:
                    idle_since = None
                    self.state = "working"
                    self._handle(messages)
                    self.flush()
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
                self._requeue_leased(str(err))
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
        translations: list[_Pending] = []
        for message in messages:
            pending = self._parse(message)
            if pending is not None and pending.item.options.task == TRANSLATE:
                translations.append(pending)
            elif pending is not None and not self._answer_from_cache(pending):
                misses.append(pending)
        self._translate_items(translations)
        misses = [p for p in misses if self._load_audio(p)]
        if misses and self._wait_for_hold(sum(p.item.seconds for p in misses)):
            self._run_engine(misses)
        self._requeue_leased("drain or stop: not started")
        self.metrics.in_flight.labels(self.node).set(len(self.leases))

    def _wait_for_hold(self, audio_seconds: float) -> bool:
        """Start no batch that would straddle a Freeze; False if a stop or drain came meanwhile."""
        while not (self.stop_event.is_set() or self.draining.is_set()):
            with self._lock:
                until = self._hold_until
            if until is None or self.clock() + self._predict(audio_seconds) <= until:
                return True
            self.state = "holding"
            time.sleep(0.05)
        return False

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
        if self.cache.get(item.options.task, item.segment) is None:
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

    def _run_engine(self, pending: list[_Pending]) -> None:
        engine = self._engine
        assert engine is not None
        audio_seconds = sum(p.item.seconds for p in pending)
        batch = _Batch(self.clock(), pending, self._predict(audio_seconds))
        with self._lock:
            # A drain that began a moment ago has already requeued these: do not start them.
            if self.draining.is_set() or self.stop_event.is_set():
                return
            self._batch = batch
        try:
            with self.metrics.batch_seconds.labels(self.node).time():
                results = engine.transcribe_batch([p.audio for p in pending if p.audio is not None])
        except EngineError as err:
            for item in pending:
                if item.message.id not in batch.abandoned:
                    self._fail(item, str(err), batch.started)
            return
        finally:
            with self._lock:
                self._batch = None
        took = self.clock() - batch.started
        if audio_seconds > 0:
            self._engine_rate = 0.7 * self._engine_rate + 0.3 * (took / audio_seconds)
        share = took / len(pending)
        for item, result in zip(pending, results, strict=True):
            if item.message.id not in batch.abandoned:  # handed back mid-batch: another node redoes it
                self._store_result(item, result, batch.started, share)

    def _store_result(self, pending: _Pending, result: TranscriptResult, started: float,
                      gpu_seconds: float) -> None:
        self.cache.put(pending.item.options.task, pending.item.segment, result.to_bytes())
        self.metrics.audio_seconds.labels(self.node).inc(pending.item.seconds)
        self._complete(pending, "done", started, result.tokens, result.engine, result.model, gpu_seconds)

    # -- settling messages ------------------------------------------------------------------
    def _record(self, pending: _Pending, outcome: str, started: float, tokens_out: int = 0,
                engine: str = "", model: str = "", error: str = "", gpu_seconds: float = 0.0,
                ended: float | None = None, tokens_in: int = 0) -> None:
        item = pending.item
        self.usage.add(UsageRecord(
            node=self.node, job=item.job, segment=item.segment, task=item.options.task,
            audio_seconds=item.seconds, tokens_in=tokens_in, tokens_out=tokens_out,
            engine=engine or (self._engine.engine if self._engine else ""),
            model=model or item.options.model, started_at=started,
            ended_at=self.clock() if ended is None else ended,
            outcome=outcome, error=error, gpu_seconds=round(gpu_seconds, 4),
        ))
        self.metrics.count(outcome)

    def _complete(self, pending: _Pending, outcome: str, started: float, tokens_out: int,
                  engine: str, model: str, gpu_seconds: float = 0.0, tokens_in: int = 0) -> None:
        self._enqueue_translations(pending.item)  # before the delete: a crash re-delivers, never loses them
        self.leases.settle(pending.message.id, self.queue.delete)
        self.counts["processed"] += 1
        self._record(pending, outcome, started, tokens_out, engine, model, gpu_seconds=gpu_seconds,
                     tokens_in=tokens_in)

    def _fail(self, pending: _Pending, error: str, started: float) -> None:
        delay = int(min(60.0, self.settings.retry_seconds * 2 ** (pending.message.dequeue_count - 1)))
        self.counts["failures"] += 1
        self.leases.settle(pending.message.id, lambda m: self.queue.fail(
            m, error, retry_delay=delay, on_poison=self._record_poison))
        self._record(pending, "failed", started, error=error)
        log.warning("node=%s event=segment-failed segment=%s error=%r", self.node,
                    pending.item.segment, error)

    def _requeue_leased(self, why: str, keep_running_batch: bool = False) -> int:
        """Hand back (visibility 0) every leased message — but the running batch's, if asked."""
        with self._lock:
            running = {p.message.id for p in self._batch.pending} if self._batch else set()
        requeued = 0
        for message_id in self.leases.ids():
            if keep_running_batch and message_id in running:
                continue
            message = self.leases.get(message_id)
            if message is None:
                continue
            try:
                released = self.leases.settle(message_id, lambda m: self.queue.release(m, 0))
            except SpotkitError as err:
                log.warning("node=%s could not requeue %s (its lease will expire instead): %s",
                            self.node, message_id, err)
                continue
            if released:
                requeued += 1
                with self._lock:
                    self._requeued += 1
                try:
                    now = self.clock()
                    self._record(_Pending(message, WorkItem.decode(message.body)), "requeued", now,
                                 error=why, ended=now)
                except BadMessage:
                    pass
        return requeued

    def _record_boot(self, load_started: float) -> None:
        """When this node became ready, and how long since the OS booted: the controller's boot time."""
        now = self.clock()
        try:
            os_uptime = float(Path("/proc/uptime").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            os_uptime = -1.0
        record = {"node": self.node, "ready_at": now, "model_load_seconds": round(now - load_started, 3),
                  "os_uptime_seconds": round(os_uptime, 1), "cache_dir_had_results": self._had_cache,
                  "engine": self._engine.engine if self._engine else "", "version": __version__}
        day = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")
        try:
            self.store.put_if_absent(f"boots/day={day}/{self.node}-{int(now * 1000)}.json", canonical_json(record))
        except SpotkitError as err:
            log.warning("node=%s event=boot-record-failed error=%r", self.node, str(err))

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
