"""What every part of ``SqliteBackend`` shares: its state, its transactions, its waits.

``SqliteCore`` declares the state (set by ``SqliteBackend.__init__``) and the plumbing the
domain modules (``tasks``, ``inspection``, ``workers``, ``liveness``, ``retries``,
``messaging``, ``store``) build their verbs on; each of them is a ``SqliteCore`` subclass, so
mypy checks every use. Helpers that run inside a caller's transaction are functions taking the
connection (``push`` here; ``dedup.release``, ``store.untag`` … in their modules).

- Each state transition is one ``BEGIN IMMEDIATE`` transaction (``_write``); reads that take
  several statements run in one read transaction (``_read``), so they see one snapshot. Either
  rolls back on any error, and an ``sqlite3`` error leaves as runq's (``errors.sqlite_error``).
- Blocking waits (``_poll``) poll ``PRAGMA data_version`` on a second connection (it changes
  when another connection commits) with back-off from 0.5 ms to 20 ms, then re-check the state
  they wait for.
- Lists of ids cross into SQL as one JSON array parameter joined through ``json_each``
  (``ids_json``), so any number of ids costs one statement, keeps the caller's order and
  repeats duplicates.
"""

from __future__ import annotations

import json
import select
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from runq.backends.base import Backend
from runq.backends.sqlite import sql
from runq.backends.sqlite.errors import sqlite_error, translated
from runq.models import TaskStatus

__all__ = [
    "ACTIVE_WORKER",
    "GONE_WORKER",
    "STATUS_CODES",
    "SqliteCore",
    "decode_status",
    "distinct",
    "encode_status",
    "ids_json",
    "push",
    "queue_places",
]

POLL_FIRST_S = 0.0005
POLL_MAX_S = 0.02
POLL_GROWTH = 1.5

#: Worker statuses that may run tasks; those that left (and may not claim: an unknown worker
#: id may).
ACTIVE_WORKER = ("IDLE", "BUSY", "PAUSED")
GONE_WORKER = ("LOST", "EXITED")

#: How a task's status is stored (one letter: a queued task stores it twice, in its row and
#: in the status index; see ``sql.py``).
STATUS_CODES: dict[TaskStatus, str] = {
    TaskStatus.PENDING: "P",
    TaskStatus.DEFERRED: "D",
    TaskStatus.SCHEDULED: "S",
    TaskStatus.RUNNING: "R",
    TaskStatus.COMPLETE: "C",
    TaskStatus.ERROR: "E",
    TaskStatus.CANCELLED: "X",
    TaskStatus.DIED: "K",
    TaskStatus.TIMEOUT: "T",
    TaskStatus.IMPOSSIBLE: "I",
    TaskStatus.MOVED: "M",
    TaskStatus.DISCARDED: "Z",
}
#: Stored status -> TaskStatus; a namespace written before schema version 6 (read with
#: ``check_version=False``) stored the names.
_STATUS = {code: status for status, code in STATUS_CODES.items()} | {s.value: s for s in TaskStatus}


def ids_json(ids: Sequence[str]) -> str:
    """``ids`` as the JSON array parameter of a ``json_each`` statement."""
    return json.dumps(list(ids))


def distinct(ids: Sequence[str]) -> list[str]:
    """``ids`` without repeats, first occurrence first."""
    return list(dict.fromkeys(ids))


def decode_status(value: str | None) -> TaskStatus:
    """A stored status (MISSING for no row)."""
    return TaskStatus.MISSING if value is None else _STATUS[value]


def encode_status(status: TaskStatus) -> str:
    """How ``status`` is stored."""
    return STATUS_CODES[status]


def push(
    conn: sqlite3.Connection, ns: str, entries: list[tuple[str, str]], head: bool = False
) -> None:
    """Push (queue, task_id) pairs to the tail of their queues, in order; with ``head``, to
    the head, the first pair ending up first (inside the caller's write transaction). Each
    queue is the task's own (``tasks.queue``): a task's place is its row's ``qpos``."""
    places = queue_places(conn, ns, entries, head)
    conn.executemany(sql.QUEUE_PUSH, ((ns, qpos, task_id) for task_id, qpos in places.items()))


def queue_places(
    conn: sqlite3.Connection, ns: str, entries: list[tuple[str, str]], head: bool = False
) -> dict[str, int]:
    """The places (``qpos``) that ``push`` gives the (queue, task_id) pairs, by task id; their
    queues are registered. ``enqueue`` inserts new rows with theirs: a row updated after its
    insertion grows, and splits pages that appends had filled."""
    by_queue: dict[str, list[str]] = {}
    for queue, task_id in entries:
        by_queue.setdefault(queue, []).append(task_id)
    places: dict[str, int] = {}
    for queue, ids in by_queue.items():
        if head:
            (first,) = conn.execute(sql.QUEUE_FIRST, (ns, queue)).fetchone()
            start = (first or 0) - len(ids)
        else:
            (last,) = conn.execute(sql.QUEUE_LAST, (ns, queue)).fetchone()
            start = (last or 0) + 1
        places.update((task_id, start + i) for i, task_id in enumerate(ids))
    conn.executemany(sql.QUEUE_REGISTER, ((ns, queue) for queue in by_queue))
    return places


class SqliteCore(Backend):
    """The state and plumbing of ``SqliteBackend`` (see the module docstring)."""

    #: The file's absolute path (``Backend.address``).
    address: str
    #: The connection every transaction runs on, guarded by ``_lock``.
    _conn: sqlite3.Connection
    _lock: threading.Lock
    #: A second connection that only polls ``PRAGMA data_version``, guarded by ``_watch_lock``.
    _watch: sqlite3.Connection
    _watch_lock: threading.Lock

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute(begin)
                yield conn
                conn.execute(sql.COMMIT)
            except BaseException as err:
                if conn.in_transaction:
                    conn.rollback()
                if isinstance(err, sqlite3.Error):
                    raise sqlite_error(err, self.address) from err
                raise

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): one state transition."""
        return self._transaction(sql.BEGIN_WRITE)

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read transaction: several statements, one snapshot."""
        return self._transaction(sql.BEGIN_READ)

    def _fetchall(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self._read() as conn:
            return conn.execute(statement, params).fetchall()

    def _data_version(self) -> int:
        with self._watch_lock, translated(self.address):
            return int(self._watch.execute(sql.DATA_VERSION).fetchone()[0])

    def _poll(
        self,
        ready: Callable[[], bool],
        timeout_s: float,
        wake_fd: int | None = None,
        max_delay_s: float = POLL_MAX_S,
    ) -> None:
        """Return once ``ready()`` is true, re-checking it whenever another connection has
        committed, or after ``timeout_s``, or at once when ``wake_fd`` is readable (it is not
        read). Polls ``PRAGMA data_version`` with back-off (up to ``max_delay_s`` apart), and
        never spends more than about half its time in ``ready()``."""
        deadline = time.monotonic() + timeout_s
        version = self._data_version()  # before the first check: no commit goes unseen
        if ready():
            return
        delay = POLL_FIRST_S
        while (left := deadline - time.monotonic()) > 0:
            if wake_fd is None:
                time.sleep(min(delay, left))
            elif select.select([wake_fd], [], [], min(delay, left))[0]:
                return
            delay = min(delay * POLL_GROWTH, max_delay_s)
            current = self._data_version()
            if current != version:
                version = current
                checked = time.monotonic()
                if ready():
                    return
                delay = max(delay, time.monotonic() - checked)
