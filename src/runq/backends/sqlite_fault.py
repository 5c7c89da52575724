"""Fault tolerance on SQLite: heartbeats, lost workers, cancel/kill requests, delayed retries
and manual retry (the ``fault tolerance`` section of ``base.Backend``).

Tables (``schema.sql``): ``heartbeats`` (deadlines), ``worker_requests`` (kill / cancel asked
of a worker), ``delayed`` (PENDING tasks waiting for a retry, with their due time; they have no
``queue_entries`` row until ``promote_due`` pushes them), ``moves`` (old id -> new id of a
manual retry). Each transition is one ``BEGIN IMMEDIATE`` transaction; the common no-op cases
(nothing lapsed, nothing due, nothing asked) are answered by a read without the write lock.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from runq.backends import sqlite_sql as sql
from runq.backends.records import Control
from runq.exceptions import ConfigError, TaskStateError, UnknownTaskError
from runq.models import FINISHED_STATUSES, TaskStatus

__all__ = ["SqliteFaultMixin"]

_ACTIVE = ("IDLE", "BUSY", "PAUSED")
_RETRYABLE = {s.value for s in FINISHED_STATUSES} - {"MOVED", "MISSING"}
_RESOLVE_ROUNDS = 64

# ---------------------------------------------------------------------------- SQL, by name
HEARTBEAT_SET = """
INSERT INTO heartbeats (ns, worker_id, deadline) VALUES (?, ?, ?)
ON CONFLICT (ns, worker_id) DO UPDATE SET deadline = excluded.deadline"""
HEARTBEAT_DROP = "DELETE FROM heartbeats WHERE ns = ? AND worker_id = ?"
LAPSED = "SELECT worker_id FROM heartbeats WHERE ns = ? AND deadline < ? ORDER BY deadline"
REQUESTS = "SELECT kill, cancel FROM worker_requests WHERE ns = ? AND worker_id = ?"
REQUESTS_DROP = "DELETE FROM worker_requests WHERE ns = ? AND worker_id = ?"
CANCEL_DROP = "UPDATE worker_requests SET cancel = NULL WHERE ns = ? AND worker_id = ?"
ASK_CANCEL = """
INSERT INTO worker_requests (ns, worker_id, cancel) VALUES (?, ?, ?)
ON CONFLICT (ns, worker_id) DO UPDATE SET cancel = excluded.cancel"""
ASK_KILL = """
INSERT INTO worker_requests (ns, worker_id, kill)
SELECT w.ns, w.worker_id, 1 FROM json_each(?2) j
CROSS JOIN workers w ON w.ns = ?1 AND w.worker_id = j.value
WHERE w.status IN ('IDLE', 'BUSY', 'PAUSED')
ON CONFLICT (ns, worker_id) DO UPDATE SET kill = 1"""
HELD_TASK = """
SELECT t.id, t.queue, t.options, t.attempt FROM workers w
CROSS JOIN tasks t ON t.ns = w.ns AND t.id = w.task_id
WHERE w.ns = ? AND w.worker_id = ? AND t.status = 'RUNNING' AND t.worker_id = w.worker_id"""
WORKER_LEAVE = """
UPDATE workers SET status = ?, task_id = NULL, last_seen = ? WHERE ns = ? AND worker_id = ?"""
TASK_REQUEUE_COUNTED = """
UPDATE tasks SET status = 'PENDING', worker_id = NULL, pid = NULL, started = NULL
WHERE ns = ? AND id = ?"""
TASK_DIED = "UPDATE tasks SET status = 'DIED', finished = ? WHERE ns = ? AND id = ?"
TASK_STATUS_WORKER = "SELECT status, worker_id FROM tasks WHERE ns = ? AND id = ?"
TASK_DELAY = """
UPDATE tasks SET status = 'PENDING', worker_id = NULL, pid = NULL, started = NULL, result = ?
WHERE ns = ? AND id = ? AND status = 'RUNNING' AND worker_id = ?"""
DELAY_SET = """
INSERT INTO delayed (ns, task_id, due) VALUES (?, ?, ?)
ON CONFLICT (ns, task_id) DO UPDATE SET due = excluded.due"""
DELAY_NEXT = "SELECT min(due) FROM delayed WHERE ns = ?"
DELAY_DUE = """
SELECT d.task_id, t.queue, t.status FROM delayed d
LEFT JOIN tasks t ON t.ns = d.ns AND t.id = d.task_id
WHERE d.ns = ? AND d.due <= ? ORDER BY d.due"""
DELAY_DROP = "DELETE FROM delayed WHERE ns = ? AND due <= ?"
DELAY_OF = "SELECT due FROM delayed WHERE ns = ? AND task_id = ?"
RETRY_SOURCES = """
SELECT j.value, t.status, t.queue, t.options, t.payload FROM json_each(?2) j
LEFT JOIN tasks t ON t.ns = ?1 AND t.id = j.value ORDER BY j.key"""
MOVE = "UPDATE tasks SET status = 'MOVED' WHERE ns = ? AND id = ?"
MOVE_RECORD = "INSERT INTO moves (ns, old_id, new_id) VALUES (?, ?, ?)"
MOVED_TO = """
SELECT m.old_id, m.new_id FROM json_each(?2) j
CROSS JOIN moves m ON m.ns = ?1 AND m.old_id = j.value"""
MOVED_FROM = """
SELECT m.new_id, m.old_id FROM json_each(?2) j
CROSS JOIN moves m ON m.ns = ?1 AND m.new_id = j.value"""


class SqliteFaultMixin:
    """The fault-tolerance verbs of ``SqliteBackend`` (see the module docstring)."""

    if TYPE_CHECKING:  # provided by SqliteBackend
        namespace: str

        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _read(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _fetchall(self, statement: str, params: Sequence[Any]) -> list[Any]: ...
        def _push(
            self, conn: sqlite3.Connection, entries: list[tuple[str, str]], head: bool = False
        ) -> None: ...

    # ------------------------------------------------------------------ heartbeat channel
    def _heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        ns = self.namespace
        if ttl_s is None:  # read only: no write lock unless a stale request must go
            with self._read() as conn:
                state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
                request = conn.execute(REQUESTS, (ns, worker_id)).fetchone()
            if request is None or request[1] is None or (state and state[1] == request[1]):
                return _control(state, request)
        now = time.time()
        with self._write() as conn:
            state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
            active = state is not None and state[0] in _ACTIVE
            if active and ttl_s is not None:
                conn.execute(HEARTBEAT_SET, (ns, worker_id, now + ttl_s))
                conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))
            request = conn.execute(REQUESTS, (ns, worker_id)).fetchone()
            if (
                request is not None
                and request[1] is not None
                and (state is None or request[1] != state[1])
            ):
                conn.execute(CANCEL_DROP, (ns, worker_id))
                request = (request[0], None)
        return _control(state, request)

    def detect_lost(self) -> list[str]:
        ns = self.namespace
        if not self._fetchall(LAPSED, (ns, time.time())):
            return []
        lost = []
        with self._write() as conn:
            now = time.time()
            for (worker_id,) in conn.execute(LAPSED, (ns, now)).fetchall():
                state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
                if state is not None and state[0] in _ACTIVE:
                    self._release(conn, worker_id, "LOST", "heartbeat lapsed", now)
                    lost.append(worker_id)
                else:
                    conn.execute(HEARTBEAT_DROP, (ns, worker_id))
        return lost

    def _release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        if status not in ("LOST", "EXITED"):
            raise ConfigError(f"a released worker becomes LOST or EXITED, not {status!r}")
        with self._write() as conn:
            state = conn.execute(sql.WORKER_STATE, (self.namespace, worker_id)).fetchone()
            if state is None or state[0] not in _ACTIVE:
                return None
            return self._release(conn, worker_id, status, message, time.time())

    def _release(
        self, conn: sqlite3.Connection, worker_id: str, status: str, message: str, now: float
    ) -> str | None:
        """release_worker inside the caller's transaction, for an active worker."""
        ns = self.namespace
        held = conn.execute(HELD_TASK, (ns, worker_id)).fetchone()
        task_id = None
        if held is not None:
            task_id, queue, options, attempt = held
            if attempt <= int(json.loads(options).get("retries") or 0):
                conn.execute(TASK_REQUEUE_COUNTED, (ns, task_id))
                self._push(conn, [(queue, task_id)], head=True)
                conn.execute(sql.LOG, (ns, worker_id, now, "TASK_REQUEUE", task_id))
            else:
                conn.execute(TASK_DIED, (now, ns, task_id))
                conn.execute(sql.MAKE_IMPOSSIBLE, (ns, json.dumps([task_id]), now))
                conn.execute(sql.LOG, (ns, worker_id, now, "TASK_DIED", task_id))
        conn.execute(WORKER_LEAVE, (status, now, ns, worker_id))
        conn.execute(sql.LOG, (ns, worker_id, now, status, message))
        conn.execute(HEARTBEAT_DROP, (ns, worker_id))
        conn.execute(REQUESTS_DROP, (ns, worker_id))
        return str(task_id) if task_id is not None else None

    def _request_cancel(self, task_id: str) -> TaskStatus:
        ns = self.namespace
        with self._write() as conn:
            row = conn.execute(TASK_STATUS_WORKER, (ns, task_id)).fetchone()
            if row is None:
                return TaskStatus.MISSING
            if row[0] == "RUNNING":
                conn.execute(ASK_CANCEL, (ns, row[1], task_id))
            return TaskStatus(row[0])

    def _request_kill(self, worker_ids: Sequence[str]) -> None:
        if worker_ids:
            with self._write() as conn:
                conn.execute(ASK_KILL, (self.namespace, json.dumps(list(worker_ids))))

    # ------------------------------------------------------------------ delayed retries
    def _retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if not conn.execute(TASK_DELAY, (result, ns, task_id, worker_id)).rowcount:
                return False
            conn.execute(DELAY_SET, (ns, task_id, now + max(0.0, delay_s)))
            conn.execute(sql.WORKER_IDLE, (now, ns, worker_id))
            conn.execute(sql.LOG, (ns, worker_id, now, "TASK_RETRY", task_id))
        return True

    def promote_due(self) -> float | None:
        ns = self.namespace
        (nxt,) = self._fetchall(DELAY_NEXT, (ns,))[0]
        if nxt is None or nxt > time.time():
            return None if nxt is None else float(nxt)
        with self._write() as conn:
            now = time.time()
            due = conn.execute(DELAY_DUE, (ns, now)).fetchall()
            conn.execute(DELAY_DROP, (ns, now))
            live = [(queue, tid) for tid, queue, status in due if status == "PENDING"]
            self._push(conn, live, head=True)
            (nxt,) = conn.execute(DELAY_NEXT, (ns,)).fetchone()
        return None if nxt is None else float(nxt)

    # ------------------------------------------------------------------ manual retry
    def _retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        if not pairs:
            return []
        ns, now = self.namespace, time.time()
        olds = [old for old, _ in pairs]
        with self._write() as conn:
            rows = conn.execute(RETRY_SOURCES, (ns, json.dumps(olds))).fetchall()
            seen: set[str] = set()
            for old, status, *_ in rows:
                if status is None:
                    raise UnknownTaskError(f"task {old} does not exist in queue {ns!r}")
                if status not in _RETRYABLE or old in seen:
                    raise TaskStateError(
                        f"task {old} is {status}: only finished tasks can be retried (a MOVED "
                        "one was retried already: retry its newest id)"
                    )
                seen.add(old)
            news = [new for _, new in pairs]
            taken = conn.execute(sql.EXISTING_IDS, (ns, json.dumps(news))).fetchone()
            if taken is not None:
                raise ConfigError(f"task id {taken[0]!r} already exists in queue {ns!r}")
            conn.executemany(
                sql.TASK_INSERT,
                (
                    (ns, new, queue, "PENDING", options, now, None, payload)
                    for (_, _, queue, options, payload), new in zip(
                        rows if payloads is None else _with_payloads(rows, payloads),
                        news,
                        strict=True,
                    )
                ),
            )
            conn.executemany(MOVE, ((ns, old) for old in olds))
            conn.executemany(MOVE_RECORD, ((ns, old, new) for old, new in pairs))
            self._push(conn, [(row[2], new) for row, new in zip(rows, news, strict=True)])
        return [TaskStatus(row[1]) for row in rows]

    def _moved_to(self, ids: Sequence[str]) -> dict[str, str]:
        return dict(self._fetchall(MOVED_TO, (self.namespace, json.dumps(list(ids)))))

    def _moved_from(self, ids: Sequence[str]) -> dict[str, str]:
        return dict(self._fetchall(MOVED_FROM, (self.namespace, json.dumps(list(ids)))))

    def _retry_at(self, task_id: str) -> float | None:
        rows = self._fetchall(DELAY_OF, (self.namespace, task_id))
        return float(rows[0][0]) if rows else None


def _control(state: Any, request: Any) -> Control:
    known = state is not None  # no row at all: namespace destroyed or worker deleted
    active = known and state[0] in _ACTIVE
    if request is None:
        return Control(active, known=known)
    cancel = request[1] if known and request[1] == state[1] else None
    return Control(active, bool(request[0]), cancel, known)


def _with_payloads(rows: list[Any], payloads: Sequence[bytes]) -> list[Any]:
    """``RETRY_SOURCES`` rows with each payload replaced by the re-sealed one."""
    return [(*row[:4], payload) for row, payload in zip(rows, payloads, strict=True)]
