"""Amazon SQS (standard queues) — the `runtime.queue.base.WorkQueue` contract, as far as SQS offers it.

How the contract maps onto SQS:

* A lease is a receive with ``VisibilityTimeout``; the pop receipt is the *receipt handle*; renewal
  is ``ChangeMessageVisibility`` (the handle stays the same); the dequeue count is
  ``ApproximateReceiveCount`` plus the deliveries of earlier copies (below). Receives ask for up
  to 10 messages a call (the SQS maximum) and sends of several bodies go 10 to a batch call.
* SQS cannot rewrite a message. A release *with an error* therefore sends a copy carrying the error
  and the deliveries so far (``prior`` in the stored content) and then deletes the original — the
  message id changes, nothing else does. A crash between the two leaves both: at least once, as
  always (results are write-if-absent). A release without an error (a drain handing work back,
  `runtime.queue.held`) is only ``ChangeMessageVisibility`` and keeps the message as it is.
* SQS accepts any receipt handle a message ever had, so the service does not refuse a stale
  holder (``refuses_stale_receipts=False``; see `QueueCapabilities` for why that loses nothing).
  The backend refuses what it can itself: each queue object remembers when the leases it took
  run out (by its own clock, from before the request was sent, so never later than the service's)
  and answers `LeaseLost` to a renew, release or delete after that, without calling SQS. A holder
  paused past its lease therefore lets go as on Azure; only a receipt used by another process
  (`spotkit queue release` with a heartbeat's receipts) is not checked.
* The poison queue is the kit's convention (``<queue>-poison`` holding a `PoisonedMessage` with
  the reason), not the native redrive policy: redrive moves a message after *maxReceiveCount*
  receives without saying why, could not see the copies a release re-sends (their receive counts
  start again), and would leave `spotkit queue poisoned|requeue` with a second record format. No
  redrive policy is set, so the two never compete for the same message.
* `depth` reads the queue's approximate attributes: visible, in flight, delayed. SQS does not date
  its oldest message outside CloudWatch, so ``oldest_enqueued_at`` is unknown (``dates_waiting``).

Errors are classified by botocore error code in `runtime.aws_env.classify`, mapped here only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from runtime.aws_env import LEASE_GONE, MISSING_QUEUE, classify, client
from runtime.errors import LeaseLost, QueueError, SpotkitError
from runtime.queue.base import (
    Message,
    QueueCapabilities,
    QueueDepth,
    WorkQueue,
    decode_content,
    encode_content,
    prior_deliveries,
)

BATCH_MAX = 10  # SQS returns, sends and deletes at most 10 messages per call
DELAY_MAX_S = 900  # the longest DelaySeconds SQS accepts on a send
SQS_CAPABILITIES = QueueCapabilities(refuses_stale_receipts=False, updates_in_place=False,
                                     dates_waiting=False, peeks=False)
T = TypeVar("T")


class SqsQueue(WorkQueue):
    capabilities = SQS_CAPABILITIES

    def __init__(self, region: str, name: str, max_deliveries: int = 5,
                 env: Mapping[str, str] | None = None, _client: Any = None) -> None:
        super().__init__(name, max_deliveries)
        self.region = region
        self._env = env
        self._client = _client if _client is not None else client("sqs", region, env)
        self._url: str | None = None
        self._deadlines: dict[str, float] = {}  # receipt handle -> when its lease may have run out
        self._clock = time.monotonic

    # -- plumbing ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable[[], T]) -> T:
        kind = what.split()[0]
        self._count("observe" if kind in ("find", "create", "count", "peek") else kind)
        try:
            return fn()
        except SpotkitError:
            raise  # already ours (a nested call: the queue's URL looked up on first use)
        except Exception as err:  # botocore raises many unrelated types; classify() sorts them
            fault = classify(err)
            if fault.code in LEASE_GONE:
                raise LeaseLost(f"{what}: receipt no longer valid (message deleted or lease expired)") from None
            if fault.code in MISSING_QUEUE:
                raise QueueError(f"SQS queue {self.name!r} does not exist in {self.region}; create it "
                                 "(`spotkit agent` does, with sqs:CreateQueue) or fix SPOTKIT_QUEUE",
                                 transient=False) from None
            raise QueueError(f"{what} on SQS queue {self.name!r}: {fault.summary}",
                             transient=fault.transient) from None

    @property
    def url(self) -> str:
        if self._url is None:
            found = self._call("find", lambda: self._client.get_queue_url(QueueName=self.name))
            self._url = str(found["QueueUrl"])
        return self._url

    def ensure(self) -> None:
        for queue in (self, self.poison_queue()):
            made = queue._call("create", lambda q=queue: q._client.create_queue(QueueName=q.name))  # type: ignore[misc]
            queue._url = str(made["QueueUrl"])

    def close(self) -> None:
        self._client.close()

    # -- the contract --------------------------------------------------------------------------
    def send(self, body: str) -> None:
        self._send(encode_content(body, None), 0)

    def _send(self, content: str, delay: int) -> None:
        self._call("send", lambda: self._client.send_message(
            QueueUrl=self.url, MessageBody=content, DelaySeconds=max(0, min(DELAY_MAX_S, delay))))

    def send_many(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), BATCH_MAX):
            chunk = bodies[start:start + BATCH_MAX]
            entries = [{"Id": str(i), "MessageBody": encode_content(b, None)} for i, b in enumerate(chunk)]
            answer = self._call("send", lambda e=entries: self._client.send_message_batch(  # type: ignore[misc]
                QueueUrl=self.url, Entries=e))
            for failed in answer.get("Failed", []):  # resend one by one; a permanent fault raises there
                self.send(chunk[int(failed["Id"])])

    def _receive(self, n: int, visibility_timeout: int) -> list[dict[str, Any]]:
        answer = self._call("peek" if visibility_timeout == 0 else "receive", lambda: self._client.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=max(1, min(BATCH_MAX, n)), VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=0, MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"]))
        return list(answer.get("Messages", []))

    def _held(self, receipt: str, what: str) -> None:
        """`LeaseLost` if this object leased *receipt* and the lease may have run out by now."""
        deadline = self._deadlines.get(receipt)
        if deadline is not None and self._clock() >= deadline:  # kept: every later call is refused too
            raise LeaseLost(f"{what}: the lease ran out (another consumer may hold the message now)")

    def _hold(self, receipt: str, started: float, seconds: int) -> None:
        if len(self._deadlines) > 10_000:  # forget leases long gone (an hour past: nobody settles them now)
            now = self._clock()
            self._deadlines = {r: d for r, d in self._deadlines.items() if d > now - 3600}
        self._deadlines[receipt] = started + seconds

    def _lease(self, n: int, visibility_timeout: int) -> list[Message]:
        leased: list[Message] = []
        while len(leased) < n:
            ask = min(BATCH_MAX, n - len(leased))
            started = self._clock()
            raw = self._receive(ask, visibility_timeout)
            leased += [_message(item) for item in raw]
            for item in raw:
                self._hold(str(item["ReceiptHandle"]), started, visibility_timeout)
            if len(raw) < ask:
                break  # fewer than asked: nothing more visible now (short polling: or not sampled)
        return leased

    def peek(self, n: int) -> list[Message]:
        """Emulated (``peeks=False``): zero-second leases until no new message shows, so each look
        counts as a delivery. Used on the poison queue, whose messages are never redelivered to work."""
        seen: dict[str, Message] = {}
        while len(seen) < n:
            fresh = [m for m in (_message(item) for item in self._receive(n - len(seen), 0)) if m.id not in seen]
            if not fresh:
                break
            seen.update((m.id, Message(m.id, m.body, "", m.dequeue_count, m.last_error)) for m in fresh)
        return list(seen.values())[:n]

    def _visibility(self, what: str, receipt: str, seconds: int) -> None:
        self._call(what, lambda: self._client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=seconds))

    def renew(self, message: Message, visibility_timeout: int) -> Message:
        self._held(message.pop_receipt, f"renew {message.id}")
        started = self._clock()
        self._visibility(f"renew {message.id}", message.pop_receipt, visibility_timeout)
        if message.pop_receipt in self._deadlines:
            self._hold(message.pop_receipt, started, visibility_timeout)
        return message  # SQS keeps the receipt handle across ChangeMessageVisibility

    def release(self, message: Message, delay: int = 0, error: str | None = None) -> None:
        self._held(message.pop_receipt, f"release {message.id}")
        if error is None:
            self._visibility(f"release {message.id}", message.pop_receipt, delay)
            self._deadlines.pop(message.pop_receipt, None)
            return
        # Check the lease is still there before copying, so a gone message is not resurrected.
        started = self._clock()
        self._visibility(f"release {message.id}", message.pop_receipt, max(delay, 30))
        if message.pop_receipt in self._deadlines:
            self._hold(message.pop_receipt, started, max(delay, 30))
        self._send(encode_content(message.body, error, message.dequeue_count), delay)
        self.delete(message)

    def delete(self, message: Message) -> None:
        self._held(message.pop_receipt, f"delete {message.id}")
        self._call(f"delete {message.id}", lambda: self._client.delete_message(
            QueueUrl=self.url, ReceiptHandle=message.pop_receipt))
        self._deadlines.pop(message.pop_receipt, None)

    def _attributes(self) -> dict[str, int]:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        answer = self._call("count", lambda: self._client.get_queue_attributes(QueueUrl=self.url,
                                                                                AttributeNames=names))
        return {k: int(v) for k, v in answer.get("Attributes", {}).items()}

    def approximate_count(self) -> int:
        return sum(self._attributes().values())

    def depth(self) -> QueueDepth:
        attrs = self._attributes()
        return QueueDepth(sum(attrs.values()), attrs.get("ApproximateNumberOfMessages", 0), None)

    def poison_queue(self) -> SqsQueue:
        poison = SqsQueue(self.region, f"{self.name}-poison", self.max_deliveries, self._env, self._client)
        self._share_count(poison)
        return poison


def _message(item: dict[str, Any]) -> Message:
    content = str(item.get("Body", ""))
    body, error = decode_content(content)
    attrs = item.get("Attributes", {})
    count = int(attrs.get("ApproximateReceiveCount", 1)) + prior_deliveries(content)
    return Message(str(item["MessageId"]), body, str(item["ReceiptHandle"]), count, error)
