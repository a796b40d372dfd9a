"""Work queues: one contract (`base.WorkQueue`), an embedded SQLite provider and Azure Storage queues."""

from runtime.queue.base import Message, WorkQueue
from runtime.queue.factory import open_queue

__all__ = ["Message", "WorkQueue", "open_queue"]
