"""The node agent: lease segments, answer from the cache or run the engine in batches, record usage.

One iteration, in order (each step's failure leaves the queue consistent):

1. lease up to ``batch_size`` messages; a background ticker renews the leases and writes heartbeats;
2. poison what cannot be understood (a garbage message, missing or corrupt segment audio) at once;
3. answer cache hits (node disk, then store) without the engine;
4. run the misses through the engine as one batch, write results write-if-absent to disk and store;
5. settle each message (`settle.Settler`): delete, fail, requeue or poison, with a usage record.

The agent is composed of parts that each own their state: `Lifecycle` (the state on-call sees),
`LeaseSet` (messages and pop receipts), `BatchSlot` (the batch in the engine), `Settler` (outcomes
and counters), `Translation` and `FanOut`, and `AgentDrain` — the steps of a drain, which the eviction
watcher executes; the watcher alone decides when a drain is finished. A ``kill -9`` loses only time:
leases expire and another node redoes the work, whose result is byte-identical (deterministic
decoding, content-hash keys).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from runtime import __version__
from runtime.agent.batch import BatchSlot, Pending
from runtime.agent.boot_clock import os_uptime, seconds_to_ready
from runtime.agent.drain import AgentDrain
from runtime.agent.leases import LeaseSet
from runtime.agent.lifecycle import Lifecycle
from runtime.agent.metrics import AgentMetrics
from runtime.agent.settle import Settler
from runtime.agent.translate import FanOut, Manifests, Translation
from runtime.audio_codec import decode_flac
from runtime.cache import ResultCache, serves
from runtime.config import Settings
from runtime.engines.base import METERED_ENGINES, AudioItem, Transcriber, Translator
from runtime.errors import BadMessage, EngineError, MediaError, NotFound, SpotkitError
from runtime.queue.base import Message, WorkQueue
from runtime.records import BootRecord, Heartbeat, audio_key, boot_key, day_of, dump, heartbeat_key
from runtime.redact import redact
from runtime.retry import Backoff, retry_transient
from runtime.store.base import ObjectStore
from runtime.usage import UsageLog
from runtime.work import TRANSLATE, TaskOptions, WorkItem, segment_id

log = logging.getLogger("spotkit.agent")
progress = logging.getLogger("spotkit.progress")  # one line per batch, shown without -v (spotkit.cli)

MAX_IDENTICAL_FAILURES = 10
IDLE_POLL_SECONDS = 0.25  # the first pause after an empty receive; it doubles to idle_poll_max_seconds


class Agent:
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
        self.settings, self.queue, self.store, self.clock = settings, queue, store, clock
        self.node = settings.node_name
        self._started = clock()  # the slot's start when boot_clock is `process`
        self.until_idle = until_idle
        self.backoff = Backoff(base_seconds=0.5, cap_seconds=60.0)
        self._make_transcriber, self._make_translator = transcriber, translator
        self.engine: Transcriber | None = None
        self.lifecycle = Lifecycle(exit_when_drained)
        self._beat_lock = threading.Lock()
        self.cache = ResultCache(settings.cache_dir, store, serves(
            settings.transcriber in METERED_ENGINES, settings.serve_metered_results))
        self._had_cache = (settings.cache_dir / "results").is_dir()  # a warm persistent disk
        self.usage = UsageLog(store, self.node, clock)
        self.metrics = AgentMetrics(self.node)
        self.leases = LeaseSet(queue, clock)
        self.batches = BatchSlot(settings.engine_seconds_per_audio_second, clock)
        self.settler = Settler(self.node, queue, store, self.leases, self.usage, self.metrics, clock,
                               settings.retry_seconds, lambda: self.engine.engine if self.engine else "",
                               lambda: "api" if self.engine is not None and self.engine.metered else "fleet")
        manifests = Manifests(store)
        self.settler.before_delete = FanOut(queue, manifests)
        self.translation = Translation(self.cache, manifests, self.settler, clock)
        self.drain = AgentDrain(self.node, self.lifecycle, self.batches, self.leases, self.settler, self.usage,
                                self.beat, settings.batch_size * settings.segment_max_seconds)

    # -- lifecycle --------------------------------------------------------------------------
    def request_stop(self, why: str = "stop requested") -> None:
        """Stop at once: finish the batch in the engine, requeue everything else, exit."""
        if not self.lifecycle.stop.is_set():
            log.info("node=%s event=stop reason=%r in_flight=%d", self.node, why, len(self.leases))
        self.lifecycle.stop.set()

    def run(self) -> int:
        """Run until stopped, idle (``until_idle``) or drained and released (exit when drained)."""
        self.queue.ensure()
        self.store.ensure()
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_port)
        ticker = threading.Thread(target=self._tick, name="lease-renewer", daemon=True)
        ticker.start()
        code = 0
        try:
            load_started = self.clock()
            self.engine = self._make_transcriber()
            self.translation.translator = self._make_translator()
            self._record_boot(load_started)
            code = self._loop()
        except SpotkitError as err:
            log.error("node=%s event=fatal error=%r", self.node, str(err))
            code = 1
        finally:
            self.settler.requeue_leased("agent stopping")
            self.lifecycle.end(failed=code != 0)
            ticker.join(timeout=5)
            self.flush()
            if self.engine is not None:
                self.engine.close()
        return code

    def _tick(self) -> None:
        """Renew leases well before they expire, write heartbeats."""
        interval = max(0.2, min(self.settings.lease_seconds / 3, self.settings.heartbeat_seconds))
        while True:
            self.leases.renew_all(self.settings.lease_seconds)
            self.beat()
            if self.lifecycle.stop.wait(interval):
                return

    def beat(self) -> None:
        """Write the heartbeat. Serialised, state read inside the lock: a beat the ticker composed
        before the drain was marked can never land after the drained one and hide it. The held leases
        (current receipts) are one snapshot, from which the in-flight segments and first expiry follow;
        the ticker beats right after renewing, so a receipt is stale only while that write is on its way."""
        with self._beat_lock:
            counts = self.settler.counts()
            held = self.leases.published()
            beat = Heartbeat(self.node, self.lifecycle.state, __version__, self.clock(),
                             [lease.segment for lease in held if lease.segment], counts.processed,
                             counts.cache_hits, counts.failures, min((lease.expires_at for lease in held), default=0.0),
                             held)
            try:
                self.store.put(heartbeat_key(self.node), dump(beat))
            except SpotkitError as err:
                log.warning("node=%s event=heartbeat-failed error=%r", self.node, str(err))

    def flush(self) -> None:
        """Usage records and a heartbeat, now (before exit)."""
        try:
            self.usage.flush()
        except SpotkitError as err:
            log.warning("node=%s event=usage-flush-failed error=%r (kept for retry)", self.node, str(err))
        self.beat()

    # -- main loop --------------------------------------------------------------------------
    def _loop(self) -> int:
        """Pull and handle until told to stop. A failed iteration is retried with a growing delay:
        after a transient failure (a backend outage) the leased messages are kept — renewed, and
        handled again next time — so an outage burns no deliveries; after any other failure they are
        handed back. The agent gives up after `MAX_IDENTICAL_FAILURES` failures of one kind in a row."""
        idle_since: float | None = None
        idle_wait = IDLE_POLL_SECONDS
        failures, last_kind = 0, ""
        stop = self.lifecycle.stop
        while not stop.is_set():
            if self.lifecycle.draining:
                if self.lifecycle.may_exit(self.clock()):
                    log.info("node=%s event=drained-exit", self.node)
                    return 0
                stop.wait(0.05)
                continue
            try:
                carried = self.leases.messages()  # kept over a transient failure: finish them first
                self.lifecycle.report("working" if carried else "idle")
                messages = carried or self.queue.receive(self.settings.batch_size, self.settings.lease_seconds,
                                                         on_poison=self.settler.record_poison)
                if messages:
                    idle_since, idle_wait = None, IDLE_POLL_SECONDS
                    self.lifecycle.report("working")
                    self._handle(messages)
                    self.flush()
                else:
                    now = self.clock()
                    idle_since = idle_since or now
                    if (self.until_idle and now - idle_since >= self.settings.idle_seconds
                            and self.queue.approximate_count() == 0):
                        log.info("node=%s event=idle-exit", self.node)
                        return 0
                    # Back off while nothing comes (never past the idle exit): fewer receives from idle nodes.
                    left = self.settings.idle_seconds - (now - idle_since) if self.until_idle else idle_wait
                    self.lifecycle.nap(max(min(idle_wait, left), IDLE_POLL_SECONDS))
                    idle_wait = min(idle_wait * 2, self.settings.idle_poll_max_seconds)
                failures, last_kind = 0, ""
            except SpotkitError as err:
                self.metrics.errors.labels(self.node).inc()
                kind = "transient" if err.transient else type(err).__name__
                if not err.transient:
                    self.settler.requeue_leased(redact(str(err)))
                failures = failures + 1 if kind == last_kind else 1
                last_kind = kind
                delay = self.backoff.delay(failures)
                log.warning("node=%s event=iteration-failed kind=%s failures=%d retry_in=%.1f held=%d error=%r",
                            self.node, kind, failures, delay, len(self.leases), redact(str(err)))
                if failures >= MAX_IDENTICAL_FAILURES:
                    log.error("node=%s event=giving-up kind=%s error=%r", self.node, kind, str(err))
                    return 1
                stop.wait(delay)
        return 0

    def _interrupted(self) -> bool:
        return self.lifecycle.stop.is_set() or self.lifecycle.draining

    def _handle(self, messages: list[Message]) -> None:
        for message in messages:
            self.leases.add(message, self.settings.lease_seconds)
        self.metrics.in_flight.labels(self.node).set(len(self.leases))
        misses: list[Pending] = []
        translations: list[Pending] = []
        hits, audio = 0, 0.0
        for message in messages:
            pending = self._parse(message)
            if pending is not None and pending.item.options.task == TRANSLATE:
                translations.append(pending)
            elif pending is not None:
                audio += pending.item.seconds
                if self._answer_from_cache(pending):
                    hits += 1
                else:
                    misses.append(pending)
        self.translation.run(translations)
        misses, duplicates = self._split_duplicates([p for p in misses if self._load_audio(p)])
        engine_seconds = 0.0
        if misses and self.batches.wait_for_hold(sum(p.item.seconds for p in misses), self._interrupted,
                                                 lambda: self.lifecycle.report("holding")):
            engine_seconds = self._run_engine(misses)
        for pending in duplicates:  # the same segment twice in one lease: run once, answer the rest
            self._answer_from_cache(pending)
        self.settler.requeue_leased("drain or stop: not started")
        self.metrics.in_flight.labels(self.node).set(len(self.leases))
        self._report_batch(len(messages), hits, misses, audio, engine_seconds, len(translations))

    def _report_batch(self, messages: int, hits: int, ran: list[Pending], audio: float, engine_seconds: float,
                      translations: int) -> None:
        """One line per batch, shown without -v: what came in, what the engine did and how fast."""
        ran_audio = sum(p.item.seconds for p in ran)
        pace = ran_audio / engine_seconds if engine_seconds > 0 else 0.0
        speed = (f", RTF {engine_seconds / ran_audio:.3f} ({pace:.0f}x real time)" if pace >= 10 else
                 f", RTF {engine_seconds / ran_audio:.3f} ({pace:.1f}x real time)" if pace > 0 and ran_audio > 0
                 else "")
        extra = f", {translations} translations" if translations else ""
        progress.info("batch: %d segments, %.1f s audio, %d transcribed in %.2f s engine%s, %d cache hits%s",
                      messages - translations, audio, len(ran), engine_seconds, speed, hits, extra)

    @staticmethod
    def _split_duplicates(misses: list[Pending]) -> tuple[list[Pending], list[Pending]]:
        """(one message per segment and options, the other copies): a segment is never run twice."""
        first: dict[tuple[str, TaskOptions], Pending] = {}
        copies: list[Pending] = []
        for pending in misses:
            key = (pending.item.segment, pending.item.options)
            if key in first:
                copies.append(pending)
            else:
                first[key] = pending
        return list(first.values()), copies

    def _parse(self, message: Message) -> Pending | None:
        try:
            item = WorkItem.decode(message.body)
        except BadMessage as err:
            self.settler.poison(message, str(err))
            return None
        self.leases.tag(message.id, item.segment, item.job)
        return Pending(message, item)

    def _answer_from_cache(self, pending: Pending) -> bool:
        item = pending.item
        started = self.clock()
        if self.cache.get(item.options.task, item.segment) is None:
            return False
        log.info("node=%s event=cache-hit job=%s segment=%s task=%s", self.node, item.job, item.segment[:12],
                 item.options.task)
        self.settler.done(pending, "cache-hit", started, engine="cache", model=item.options.model)
        return True

    def _load_audio(self, pending: Pending) -> bool:
        item = pending.item
        assert self.engine is not None
        if item.options.model != self.engine.model:
            self.settler.failed(pending, f"this node serves model {self.engine.model!r}, the segment asks for "
                                         f"{item.options.model!r}", self.clock())
            return False
        if item.options.revision and item.options.revision != self.engine.revision and not self.engine.metered:
            self.settler.failed(pending, f"this node serves {self.engine.model} revision {self.engine.revision}, "
                                         f"the job was submitted for revision {item.options.revision} (the model "
                                         "or its decoding changed since: resubmit, or run nodes with that model)",
                                self.clock())
            return False
        try:
            pcm = decode_flac(self.store.get(audio_key(item.segment)), name=audio_key(item.segment))
        except NotFound:
            self.settler.poison(pending.message, f"segment audio {audio_key(item.segment)} is missing from "
                                                 "the store; resubmit the media file")
            return False
        except MediaError as err:
            self.settler.poison(pending.message, f"segment audio is corrupt: {err}")
            return False
        if segment_id(pcm, item.options) != item.segment:  # the id is the content: check it
            self.settler.poison(pending.message, f"segment audio {audio_key(item.segment)} does not match its "
                                                 "content hash (corrupted in the store); resubmit the media file")
            return False
        pending.audio = AudioItem(item.segment, pcm, item.options)
        return True

    def _run_engine(self, pending: list[Pending]) -> float:
        """Run the batch; the engine seconds it took (0 if it did not finish)."""
        engine = self.engine
        assert engine is not None
        batch = self.batches.begin(pending, lambda: not self._interrupted())
        if batch is None:  # a drain that began a moment ago has already requeued these
            return 0.0
        try:
            try:
                with self.metrics.batch_seconds.labels(self.node).time():
                    results = engine.transcribe_batch([p.audio for p in pending if p.audio is not None])
            except EngineError as err:
                if self.batches.settle(batch, learn=False) is not None:
                    for item in pending:
                        self.settler.failed(item, str(err), batch.started)
                return 0.0
            took = self.batches.settle(batch)
            if took is None:  # abandoned mid-batch by a drain: another node redoes it
                return 0.0
            for item, result, share in zip(pending, results, batch.shares(took), strict=True):
                log.info("node=%s event=transcribed job=%s segment=%s audio_s=%.1f engine_s=%.2f language=%s "
                         "cues=%d tokens=%d", self.node, item.item.job, item.item.segment[:12], item.item.seconds,
                         share, result.language, len(result.cues), result.tokens)
                task, segment, data = item.item.options.task, item.item.segment, result.to_bytes()
                self.cache.keep(task, segment, data)  # on the node's disk first: the engine work is safe
                self._publish(task, segment, data)
                self.metrics.audio_seconds.labels(self.node).inc(item.item.seconds)
                self.settler.done(item, "done", batch.started, engine=result.engine, model=result.model,
                                  tokens_out=result.tokens, gpu_seconds=share)
            return took
        finally:
            self.batches.end(batch)

    def _publish(self, task: str, segment: str, data: bytes) -> None:
        """Upload a fresh result, retrying a store outage in place (the lease is renewed meanwhile);
        past `store_retry_seconds` the iteration fails and the result waits on the node's disk."""
        def retrying(attempt: int, err: SpotkitError, delay: float) -> None:
            log.warning("node=%s event=upload-retry segment=%s attempt=%d retry_in=%.1f error=%r",
                        self.node, segment[:12], attempt, delay, str(err))

        retry_transient(lambda: self.cache.publish(task, segment, data), self.backoff, self.lifecycle.stop.wait,
                        self.settings.store_retry_seconds, self.clock, retrying)

    def _record_boot(self, load_started: float) -> None:
        """When this node became ready, and how long after its slot started: the controller's boot time."""
        now = self.clock()
        record = BootRecord(self.node, now, round(now - load_started, 3), round(os_uptime(), 1), self._had_cache,
                            self.engine.engine if self.engine else "", __version__,
                            round(seconds_to_ready(self.settings.boot_clock, self.settings.home, now,
                                                   self._started), 1),
                            self.engine.model if self.engine else "")
        try:
            self.store.put_if_absent(boot_key(day_of(now), self.node, int(now * 1000)), dump(record))
        except SpotkitError as err:
            log.warning("node=%s event=boot-record-failed error=%r", self.node, str(err))
