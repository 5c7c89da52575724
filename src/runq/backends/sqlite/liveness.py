"""Worker liveness on SQLite: heartbeats, lost workers, a worker's release, cancel and kill
requests (``base.Backend``'s "liveness" section).

Tables (``schema.sql``): ``heartbeats`` (deadlines), ``worker_requests`` (kill / cancel asked
of a worker). Each transition is one ``BEGIN IMMEDIATE`` transaction; the common no-op cases
(nothing lapsed, nothing asked) are answered by a read without the write lock.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from runq.backends.records import Control
from runq.backends.sqlite import sql
from runq.backends.sqlite.core import ACTIVE_WORKER, SqliteCore, decode_status, ids_json, push
from runq.models import TaskStatus

__all__ = ["SqliteLiveness", "release"]

#: How far apart a control thread's wait looks for a commit (``wait_for_request``): a kill or
#: a cancel within a quarter of a second is prompt (the old poll was ``poll_process``, 1 s),
#: and an idle fleet's control threads then cost little beside their waits for work.
_REQUEST_POLL_S = 0.25
_RUNNING = TaskStatus.RUNNING


def release(
    conn: sqlite3.Connection, ns: str, worker_id: str, status: str, message: str, now: float
) -> str | None:
    """``release_worker`` inside the caller's transaction, for an active worker: each task it
    runs (several with concurrency > 1) is re-queued at the head of its queue (retries left)
    or DIED; answers the id of the first, or None."""
    held = conn.execute(sql.HELD_TASKS, (ns, worker_id)).fetchall()
    for task_id, queue, options, attempt in reversed(held):  # the first ends at the head
        if attempt <= int(json.loads(options).get("retries") or 0):
            conn.execute(sql.TASK_REQUEUE_COUNTED, (ns, task_id))
            push(conn, ns, [(queue, task_id)], head=True)
            conn.execute(sql.LOG, (ns, worker_id, now, "TASK_REQUEUE", task_id))
        else:
            conn.execute(sql.TASK_DIED, (now, ns, task_id))
            conn.execute(sql.MAKE_IMPOSSIBLE, (ns, json.dumps([task_id]), now))
            conn.execute(sql.LOG, (ns, worker_id, now, "TASK_DIED", task_id))
    conn.execute(sql.WORKER_LEAVE, (status, now, ns, worker_id))
    conn.execute(sql.LOG, (ns, worker_id, now, status, message))
    conn.execute(sql.HEARTBEAT_DROP, (ns, worker_id))
    conn.execute(sql.REQUESTS_DROP, (ns, worker_id))
    return str(held[0][0]) if held else None


def _held(conn: sqlite3.Connection, ns: str, worker_id: str, cancel: str | None) -> list[str]:
    """The ids of a cancel request ('\n'-joined) that name tasks the worker still runs."""
    if not cancel:
        return []
    held = []
    for task_id in dict.fromkeys(cancel.split("\n")):
        row = conn.execute(sql.TASK_STATUS_WORKER, (ns, task_id)).fetchone()
        if row is not None and decode_status(row[0]) is _RUNNING and row[1] == worker_id:
            held.append(task_id)
    return held


class SqliteLiveness(SqliteCore):
    """The liveness verbs of ``SqliteBackend``."""

    def _heartbeat(self, worker_id: str, ttl_s: float | None) -> Control:
        ns = self.namespace
        if ttl_s is None:  # read only: no write lock unless a stale request must go
            with self._read() as conn:
                state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
                request = conn.execute(sql.REQUESTS, (ns, worker_id)).fetchone()
                cancel = None if request is None else request[1]
                held = _held(conn, ns, worker_id, cancel)
            if not cancel or "\n".join(held) == cancel:
                return _control(state, request, held)
        now = time.time()
        with self._write() as conn:
            state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
            active = state is not None and state[0] in ACTIVE_WORKER
            if active and ttl_s is not None:
                conn.execute(sql.HEARTBEAT_SET, (ns, worker_id, now + ttl_s))
                conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))
            request = conn.execute(sql.REQUESTS, (ns, worker_id)).fetchone()
            cancel = None if request is None else request[1]
            held = _held(conn, ns, worker_id, cancel)
            if cancel and "\n".join(held) != cancel:  # drop requests for tasks it no longer runs
                conn.execute(sql.CANCEL_SET, ("\n".join(held) or None, ns, worker_id))
        return _control(state, request, held)

    def _duty_lease(self, worker_id: str, ttl_s: float) -> bool:
        ns = self.namespace
        with self._read() as conn:  # the common case, someone else's live lease: no write lock
            holder = _duty_holder(conn.execute(sql.DUTY_GET, (ns,)).fetchone(), time.time())
        if holder is not None and holder != worker_id:
            return False
        with self._write() as conn:
            now = time.time()
            holder = _duty_holder(conn.execute(sql.DUTY_GET, (ns,)).fetchone(), now)
            if holder is not None and holder != worker_id:
                return False
            state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
            if ttl_s <= 0 or state is None or state[0] not in ACTIVE_WORKER:
                if holder == worker_id:
                    conn.execute(sql.DUTY_DROP, (ns,))
                return False
            conn.execute(sql.DUTY_SET, (ns, f"{now + ttl_s!r} {worker_id}"))
        return True

    def detect_lost(self) -> list[str]:
        ns = self.namespace
        if not self._fetchall(sql.LAPSED, (ns, time.time())):
            return []
        lost = []
        with self._write() as conn:
            now = time.time()
            for (worker_id,) in conn.execute(sql.LAPSED, (ns, now)).fetchall():
                state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
                if state is not None and state[0] in ACTIVE_WORKER:
                    release(conn, ns, worker_id, "LOST", "heartbeat lapsed", now)
                    lost.append(worker_id)
                else:
                    conn.execute(sql.HEARTBEAT_DROP, (ns, worker_id))
        return lost

    def _release_worker(self, worker_id: str, status: str, message: str) -> str | None:
        ns = self.namespace
        with self._write() as conn:
            state = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
            if state is None or state[0] not in ACTIVE_WORKER:
                return None
            return release(conn, ns, worker_id, status, message, time.time())

    def wait_for_request(
        self, worker_id: str, timeout_s: float, wake_fd: int | None = None
    ) -> None:
        # A request is a commit to worker_requests: wake when the worker's row changes, or,
        # for the duty lease's holder, when the next schedule tick does (a schedule saved or
        # resumed: it must learn the due time, as Redis wakes it with a token).
        def state() -> tuple[Any, ...]:
            requests, soonest, duty = self._fetchall(sql.REQUEST_STATE, key)[0]
            holder = _duty_holder((duty,) if duty else None, time.time()) == worker_id
            return requests, soonest if holder else None

        key = (self.namespace, worker_id)
        seen = state()
        self._poll(lambda: state() != seen, timeout_s, wake_fd, _REQUEST_POLL_S)

    def _request_cancel(self, task_id: str) -> TaskStatus:
        ns = self.namespace
        with self._write() as conn:
            row = conn.execute(sql.TASK_STATUS_WORKER, (ns, task_id)).fetchone()
            if row is None:
                return TaskStatus.MISSING
            status = decode_status(row[0])
            if status is _RUNNING:
                conn.execute(sql.ASK_CANCEL, (ns, row[1], task_id))
            return status

    def _request_kill(self, worker_ids: Sequence[str]) -> None:
        with self._write() as conn:
            conn.execute(sql.ASK_KILL, (self.namespace, ids_json(worker_ids)))


def _control(state: Any, request: Any, cancels: list[str]) -> Control:
    known = state is not None  # no row at all: namespace destroyed or worker deleted
    active = known and state[0] in ACTIVE_WORKER
    if request is None:
        return Control(active, known=known)
    cancel = cancels[0] if known and cancels else None
    return Control(active, bool(request[0]), cancel, known)


def _duty_holder(row: tuple[str] | None, now: float) -> str | None:
    """The worker holding the duty lease stored as ``row`` at ``now``, or None (lapsed)."""
    if row is None:
        return None
    deadline, _, holder = row[0].partition(" ")
    return holder if float(deadline) > now else None
