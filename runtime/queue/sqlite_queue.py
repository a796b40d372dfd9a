"""The embedded queue: one SQLite file (WAL) shared by every agent process on a machine.

Implements the `runtime.queue.base.WorkQueue` contract; see there for semantics. The clock is
injected so lease expiry can be tested without sleeping.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from runtime.errors import LeaseLost, QueueError
from runtime.queue.base import Message, QueueDepth, WorkQueue, decode_stored, encode_content

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    content TEXT NOT NULL,
    visible_at REAL NOT NULL,
    dequeue_count INTEGER NOT NULL DEFAULT 0,
    pop_receipt TEXT,
    enqueued_at REAL
);
CREATE INDEX IF NOT EXISTS messages_visible ON messages (queue, visible_at);
"""


class _Db:
    """One connection per process, guarded by a lock (the agent's lease renewer is a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(str(path), timeout=30, isolation_level=None,
                                        check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise QueueError(f"cannot open the SQLite queue at {path}: {err}") from None
        self._migrate()

    def _migrate(self) -> None:
        """A queue file written before ``enqueued_at`` existed gains the column (its old rows keep NULL:
        their age is unknown). Checked and altered in one write transaction, so two processes opening
        the same old file cannot both add it."""
        with self.transaction() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(messages)")}
            if "enqueued_at" not in columns:
                conn.execute("ALTER TABLE messages ADD COLUMN enqueued_at REAL")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self.conn
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
                self.conn.execute("COMMIT")
            except sqlite3.Error as err:
                raise QueueError(f"SQLite queue {self.path}: {err}") from None


class SqliteQueue(WorkQueue):
    def __init__(
        self,
        path: Path,
        name: str = "work",
        max_deliveries: int = 5,
        clock: Callable[[], float] = time.time,
        _db: _Db | None = None,
    ) -> None:
        super().__init__(name, max_deliveries)
        self.path = path
        self.clock = clock
        self._db = _db or _Db(path)

    def ensure(self) -> None:
        """Queues are rows in one table: nothing to create beyond the schema."""

    def close(self) -> None:
        with self._db.lock:
            self._db.conn.close()

    def send(self, body: str) -> None:
        self._count("send")
        now = self.clock()
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO messages (id, queue, content, visible_at, enqueued_at) VALUES (?, ?, ?, ?, ?)",
                (uuid.uuid4().hex, self.name, encode_content(body, None), now, now),
            )

    def _lease(self, n: int, visibility_timeout: int) -> list[Message]:
        self._count("receive")
        now = self.clock()
        leased: list[Message] = []
        with self._db.transaction() as conn:
            rows = conn.execute(
                # As bytes: a row that is not UTF-8 text must not fail the whole lease.
                "SELECT id, CAST(content AS BLOB), dequeue_count FROM messages "
                "WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?",
                (self.name, now, n),
            ).fetchall()
            for msg_id, content, count in rows:
                receipt = uuid.uuid4().hex
                conn.execute(
                    "UPDATE messages SET pop_receipt = ?, visible_at = ?, "
                    "dequeue_count = dequeue_count + 1 WHERE id = ?",
                    (receipt, now + visibility_timeout, msg_id),
                )
                body, error, unreadable = decode_stored(content)
                leased.append(Message(msg_id, body, receipt, count + 1, error, unreadable))
        return leased

    def peek(self, n: int) -> list[Message]:
        self._count("observe")
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, CAST(content AS BLOB), dequeue_count FROM messages "
                "WHERE queue = ? AND visible_at <= ? ORDER BY seq LIMIT ?", (self.name, self.clock(), n)).fetchall()
        peeked = []
        for msg_id, content, count in rows:
            body, error, unreadable = decode_stored(content)
            peeked.append(Message(msg_id, body, "", count, error, unreadable))
        return peeked

    def _update(self, message: Message, visible_at: float, content: str | None) -> str:
        receipt = uuid.uuid4().hex
        with self._db.transaction() as conn:
            cur = conn.execute(
                "UPDATE messages SET pop_receipt = ?, visible_at = ?, content = COALESCE(?, content) "
                "WHERE id = ? AND queue = ? AND pop_receipt = ?",
                (receipt, visible_at, content, message.id, self.name, message.pop_receipt),
            )
            if cur.rowcount == 0:
                raise LeaseLost(f"message {message.id}: pop receipt is stale (leased again or deleted)")
        return receipt

    def renew(self, message: Message, visibility_timeout: int) -> Message:
        self._count("renew")
        receipt = self._update(message, self.clock() + visibility_timeout, None)
        return Message(message.id, message.body, receipt, message.dequeue_count, message.last_error)

    def release(self, message: Message, delay: int = 0, error: str | None = None) -> None:
        self._count("release")
        content = encode_content(message.body, error) if error is not None else None
        self._update(message, self.clock() + delay, content)

    def delete(self, message: Message) -> None:
        self._count("delete")
        with self._db.transaction() as conn:
            cur = conn.execute(
                "DELETE FROM messages WHERE id = ? AND queue = ? AND pop_receipt = ?",
                (message.id, self.name, message.pop_receipt),
            )
            if cur.rowcount == 0:
                raise LeaseLost(f"message {message.id}: pop receipt is stale (leased again or deleted)")

    def approximate_count(self) -> int:
        self._count("observe")
        with self._db.transaction() as conn:
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM messages WHERE queue = ?", (self.name,)
            ).fetchone()
        return int(count)

    def depth(self) -> QueueDepth:
        """Exact, in one read: every row is here. The oldest age is unknown while a waiting row predates
        the ``enqueued_at`` column (NULL), rather than the age of a younger one."""
        self._count("observe")
        now = self.clock()
        with self._db.transaction() as conn:
            total, visible, undated, oldest = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(visible_at <= ?), 0), "
                "COALESCE(SUM(visible_at <= ? AND enqueued_at IS NULL), 0), "
                "MIN(CASE WHEN visible_at <= ? THEN enqueued_at END) FROM messages WHERE queue = ?",
                (now, now, now, self.name),
            ).fetchone()
        return QueueDepth(int(total), int(visible), None if undated or oldest is None else float(oldest))

    def poison_queue(self) -> SqliteQueue:
        poison = SqliteQueue(self.path, f"{self.name}-poison", self.max_deliveries, self.clock, self._db)
        self._share_count(poison)
        return poison
