"""Azure Storage queues (production) — the same contract as the embedded queue.

Authentication: a connection string when one is given (Azurite in tests, or
``AZURE_STORAGE_CONNECTION_STRING``), otherwise `DefaultAzureCredential` — on a node that is the
user-assigned managed identity, which holds Queue Data Message Processor/Sender on this account only.
SDK errors are mapped to `LeaseLost` / `QueueError` here and nowhere else.
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.storage.queue import QueueClient

from runtime.azure_env import credential
from runtime.errors import LeaseLost, QueueError
from runtime.queue.base import (
    Message,
    QueueCapabilities,
    QueueDepth,
    WorkQueue,
    decode_content,
    encode_content,
)
from runtime.retry import AZURE_SDK_RETRY

_TIMEOUT_S = 30  # per-request server timeout; the transport also gets connect/read timeouts
PEEK_MAX = 32  # the most messages Azure returns to one peek


def _first_line(err: Exception) -> str:
    """SDK errors carry pages of detail; one line of it says what happened."""
    return (str(getattr(err, "message", None) or err).strip().splitlines() or [type(err).__name__])[0]


def _client(account: str, name: str, connection_string: str | None) -> QueueClient:
    kwargs: dict[str, Any] = {"connection_timeout": 10, "read_timeout": 30, **AZURE_SDK_RETRY.azure_storage_options()}
    if connection_string:
        return QueueClient.from_connection_string(connection_string, name, **kwargs)
    url = f"https://{account}.queue.core.windows.net"
    return QueueClient(url, name, credential=credential(), **kwargs)


class AzureQueue(WorkQueue):
    capabilities = QueueCapabilities(counts_waiting=False)  # a peek shows at most 32 (see `depth`)

    def __init__(
        self,
        account: str,
        name: str,
        max_deliveries: int = 5,
        connection_string: str | None = None,
    ) -> None:
        super().__init__(name, max_deliveries)
        self.account = account
        self._connection_string = connection_string
        self._client = _client(account, name, connection_string)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        kind = what.split()[0]
        self._count("observe" if kind in ("peek", "count") else kind)
        try:
            return fn(*args, timeout=_TIMEOUT_S, **kwargs)
        except ResourceNotFoundError as err:
            if getattr(err, "error_code", None) == "QueueNotFound":
                raise QueueError(f"queue {self.name!r} does not exist on {self.account}; "
                                 "run `pulumi up` or create it", transient=False) from None
            raise LeaseLost(f"{what}: message no longer there (leased again or deleted)") from None
        except HttpResponseError as err:
            if getattr(err, "error_code", None) == "PopReceiptMismatch":
                raise LeaseLost(f"{what}: pop receipt is stale (leased again)") from None
            raise QueueError(f"{what} on Azure queue {self.name!r}: {err.message}",
                             transient=err.status_code not in (400, 401, 403)) from None
        except ClientAuthenticationError as err:
            raise QueueError(f"{what} on Azure queue {self.name!r}: not authorised ({_first_line(err)})",
                             transient=False) from None
        except AzureError as err:
            raise QueueError(f"{what} on Azure queue {self.name!r}: {_first_line(err)}") from None

    def ensure(self) -> None:
        for queue in (self, self.poison_queue()):
            try:
                queue._client.create_queue(timeout=_TIMEOUT_S)
            except ResourceExistsError:
                pass
            except AzureError as err:
                raise QueueError(f"cannot create Azure queue {queue.name!r}: {err}") from None

    def close(self) -> None:
        self._client.close()

    def send(self, body: str) -> None:
        self._call("send", self._client.send_message, encode_content(body, None))

    def _lease(self, n: int, visibility_timeout: int) -> list[Message]:
        def fetch(timeout: int) -> list[Any]:
            pages = self._client.receive_messages(
                messages_per_page=n, visibility_timeout=visibility_timeout,
                max_messages=n, timeout=timeout,
            )
            return list(pages)

        raw = self._call("receive", fetch)
        leased = []
        for item in raw:
            body, error = decode_content(str(item.content))
            leased.append(Message(item.id, body, item.pop_receipt, int(item.dequeue_count), error))
        return leased

    def peek(self, n: int) -> list[Message]:
        items = self._call("peek", self._client.peek_messages, max_messages=max(1, min(PEEK_MAX, n)))
        peeked = []
        for item in items:
            body, error = decode_content(str(item.content))
            peeked.append(Message(item.id, body, "", int(item.dequeue_count), error))
        return peeked

    def renew(self, message: Message, visibility_timeout: int) -> Message:
        updated = self._call(
            f"renew {message.id}", self._client.update_message, message.id,
            pop_receipt=message.pop_receipt, visibility_timeout=visibility_timeout,
        )
        return Message(message.id, message.body, updated.pop_receipt, message.dequeue_count,
                       message.last_error)

    def release(self, message: Message, delay: int = 0, error: str | None = None) -> None:
        content = encode_content(message.body, error) if error is not None else None
        self._call(
            f"release {message.id}", self._client.update_message, message.id,
            pop_receipt=message.pop_receipt, content=content, visibility_timeout=delay,
        )

    def delete(self, message: Message) -> None:
        self._call(f"delete {message.id}", self._client.delete_message, message.id,
                   pop_receipt=message.pop_receipt)

    def approximate_count(self) -> int:
        props = self._call("count", self._client.get_queue_properties)
        return int(props.approximate_message_count or 0)

    def depth(self) -> QueueDepth:
        """Azure counts messages only approximately and all together; a peek (at most 32, visible ones
        only) tells the waiting ones apart while there are fewer than 32, and gives their insertion
        times. The queue is about first in, first out, so the oldest of the front 32 stands for the
        oldest waiting message. 32 or more waiting: how many is unknown (not guessed)."""
        total = self.approximate_count()
        items = list(self._call("peek", self._client.peek_messages, max_messages=PEEK_MAX))
        inserted = [item.inserted_on.timestamp() for item in items if item.inserted_on is not None]
        visible = len(items) if len(items) < PEEK_MAX else None
        oldest = min(inserted) if inserted and len(inserted) == len(items) else None
        return QueueDepth(max(total, len(items)), visible, oldest)

    def poison_queue(self) -> AzureQueue:
        poison = AzureQueue(self.account, f"{self.name}-poison", self.max_deliveries, self._connection_string)
        self._share_count(poison)
        return poison
