"""Task transitions on SQLite: enqueue, cancel, delete, claim, finish, requeue, progress, and
the wait for work (``base.Backend``'s "submission", "controller transitions" and "worker
transitions" sections). Each is one ``BEGIN IMMEDIATE`` transaction; the duplicate policies
(``dedup``), the object store (``store``) and the messages waiting for a worker
(``messaging.has_message``) take part in the same transaction.

Invariant kept by every transition: a task has a place in its queue (``tasks.qpos``) only
while it is PENDING.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from runq.backends.sqlite import dedup, sql, store
from runq.backends.sqlite.core import (
    GONE_WORKER,
    decode_status,
    distinct,
    encode_status,
    ids_json,
    push,
    queue_places,
)
from runq.backends.sqlite.expiry import expire_later
from runq.backends.sqlite.limits import SqliteLimits
from runq.backends.sqlite.messaging import has_message
from runq.backends.sqlite.packing import pack, unpack
from runq.backends.sqlite.workers import worker_state
from runq.exceptions import ConfigError, TaskStateError, UnknownTaskError
from runq.models import FAILED_STATUSES, ClaimedTask, NewTask, TaskStatus

__all__ = ["SqliteTasks"]

_PENDING, _DEFERRED, _COMPLETE = TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.COMPLETE
_IMPOSSIBLE, _DISCARDED = TaskStatus.IMPOSSIBLE, TaskStatus.DISCARDED
_SCHEDULED = TaskStatus.SCHEDULED
#: The log event of a finished task (every other finished status logs TASK_ERROR).
_FINISH_EVENT = {TaskStatus.COMPLETE: "TASK_COMPLETE", TaskStatus.CANCELLED: "TASK_CANCEL"}


class SqliteTasks(SqliteLimits):
    """The task transitions of ``SqliteBackend``."""

    # ------------------------------------------------------------------ submission
    def _enqueue(self, tasks: Sequence[NewTask]) -> list[TaskStatus]:
        with self._write() as conn:
            return self._enqueue_in(conn, tasks, time.time())

    def _enqueue_in(
        self, conn: sqlite3.Connection, tasks: Sequence[NewTask], now: float
    ) -> list[TaskStatus]:
        """``enqueue`` inside the caller's write transaction."""
        ns = self.namespace
        dep_status = self._check_new(conn, tasks)
        statuses = _initial_statuses(tasks, dep_status)
        if any(t.dedup_key is not None for t in tasks):
            statuses = dedup.admit(conn, ns, tasks, statuses)
        delay = tasks[0].delay_s  # one per batch: checks.check_new_tasks
        if delay is not None:
            statuses = [_SCHEDULED if s in (_PENDING, _DEFERRED) else s for s in statuses]
            conn.executemany(
                sql.DELAY_SET,
                (
                    (ns, t.id, now + delay)
                    for t, st in zip(tasks, statuses, strict=True)
                    if st is _SCHEDULED
                ),
            )
        pending = [(t.queue, t.id) for t, st in zip(tasks, statuses, strict=True) if st is _PENDING]
        places = queue_places(conn, ns, pending)
        conn.executemany(
            sql.TASK_INSERT,
            (
                (
                    ns,
                    t.id,
                    t.queue,
                    encode_status(st),
                    json.dumps(t.options, separators=(",", ":")),
                    now,
                    now if st is _IMPOSSIBLE or st is _DISCARDED else None,
                    pack(t.payload),
                    places.get(t.id),
                )
                for t, st in zip(tasks, statuses, strict=True)
            ),
        )
        conn.executemany(
            sql.DEP_INSERT,
            (
                (ns, t.id, pos, dep)
                for t in tasks
                for pos, dep in enumerate(dict.fromkeys(t.depends_on))
            ),
        )
        store.put(conn, ns, ((t.id, blob) for t in tasks for blob in t.blobs))
        return statuses

    def _check_new(self, conn: sqlite3.Connection, tasks: Sequence[NewTask]) -> dict[str, str]:
        """Raise if a task id exists or a dependency is unknown; return the statuses of the
        dependencies stored before this batch."""
        ids = [t.id for t in tasks]  # distinct: checks.check_new_tasks
        row = conn.execute(sql.EXISTING_IDS, (self.namespace, ids_json(ids))).fetchone()
        if row is not None:
            raise ConfigError(
                f"task id {row[0]!r} already exists in queue {self.namespace!r}: "
                "delete it first or use a new id"
            )
        deps = distinct([d for t in tasks for d in t.depends_on])
        if not deps:
            return {}
        rows = conn.execute(sql.STATUS_OF, (self.namespace, ids_json(deps))).fetchall()
        known: dict[str, str] = {tid: decode_status(code) for tid, code in rows}
        earlier: set[str] = set()
        for t in tasks:
            for dep in t.depends_on:
                if dep not in known and dep not in earlier:
                    raise UnknownTaskError(
                        f"task {t.id!r} depends on {dep!r}, which is not a task of queue "
                        f"{self.namespace!r} (nor an earlier task of the same batch)"
                    )
            earlier.add(t.id)
        return known

    def _progress_set(self, task_id: str, value: bytes) -> None:
        with self._write() as conn:
            conn.execute(sql.PROGRESS_SET, (self.namespace, task_id, value))

    # ------------------------------------------------------------------ controller transitions
    def _cancel_queued(self, ids: Sequence[str]) -> list[TaskStatus]:
        ns = self.namespace
        with self._write() as conn:
            before = [decode_status(r[0]) for r in conn.execute(sql.STATUS, (ns, ids_json(ids)))]
            queued = (TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.SCHEDULED)
            targets = distinct([i for i, s in zip(ids, before, strict=True) if s in queued])
            self._cancel(conn, targets)
        return before

    def _remove_from_queue(self, ids: Sequence[str], queue: str | None) -> int:
        with self._write() as conn:
            rows = conn.execute(sql.QUEUED_AMONG, (self.namespace, ids_json(ids), queue))
            targets = [r[0] for r in rows]
            self._cancel(conn, targets)
        return len(targets)

    def _cancel(self, conn: sqlite3.Connection, targets: list[str]) -> None:
        """PENDING/DEFERRED/SCHEDULED ``targets`` become CANCELLED, leave their queue, and their
        dependants become IMPOSSIBLE."""
        if targets:
            params = (self.namespace, ids_json(targets), time.time())
            conn.execute(sql.CANCEL, params)
            conn.execute(sql.UNQUEUE, params[:2])
            conn.execute(sql.MAKE_IMPOSSIBLE, params)
            dedup.release(conn, self.namespace, targets)

    def _delete(self, ids: Sequence[str], check: bool) -> None:
        ns = self.namespace
        with self._write() as conn:
            found = conn.execute(sql.STATUS_OF, (ns, ids_json(distinct(ids)))).fetchall()
            if not found:
                return
            stored = {tid: decode_status(code) for tid, code in found}
            if check:
                running = [i for i in ids if stored.get(i) == TaskStatus.RUNNING]
                if running:
                    raise TaskStateError(
                        f"task {running[0]!r} is RUNNING: cancel it first, or delete with "
                        "check=False"
                    )
            incomplete = [i for i, s in stored.items() if s != TaskStatus.COMPLETE]
            if incomplete:
                conn.execute(sql.MAKE_IMPOSSIBLE, (ns, ids_json(incomplete), time.time()))
            params = (ns, ids_json(list(stored)))
            dedup.release(conn, ns, list(stored))
            conn.execute(sql.UNQUEUE, params)
            conn.execute(sql.DELETE_DEPS_OF, params)  # a survivor keeps its depends_on
            conn.execute(sql.DELETE_TASKS, params)
            conn.execute(sql.PROGRESS_DELETE, params)
            conn.execute(sql.EXPIRING_DELETE, params)
            store.untag(conn, ns, list(stored), orphan=True)

    # ------------------------------------------------------------------ worker transitions
    def _claim(self, worker_id: str, queues: Sequence[str], pid: int) -> ClaimedTask | None:
        if not self._work_ready(queues):  # a read: idle workers never take the write lock
            return None
        with self._write() as conn:
            if worker_state(conn, self.namespace, worker_id)[0] in GONE_WORKER:
                return None
            return self._claim_in(conn, worker_id, queues, pid, time.time())

    def _claim_in(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> ClaimedTask | None:
        """claim() inside the caller's transaction, for a worker allowed to claim."""
        ns = self.namespace
        if has_message(conn, ns, worker_id):  # messages first: the worker answers them
            return None
        task_id = self._pop(conn, worker_id, queues, pid, now)
        if task_id is None:
            return None
        queue, payload, options, attempt = conn.execute(sql.TASK_CLAIMED, (ns, task_id)).fetchone()
        conn.execute(sql.LOG, (ns, worker_id, now, "TASK_START", task_id))
        conn.execute(sql.WORKER_BUSY, (ns, worker_id, task_id, now))
        return ClaimedTask(task_id, queue, unpack(payload), json.loads(options), attempt)

    def _pop(
        self, conn: sqlite3.Connection, worker_id: str, queues: Sequence[str], pid: int, now: float
    ) -> str | None:
        """Take the head of the first non-empty queue and make it RUNNING; return its id.
        With named limits in the namespace, ``limited_pop`` decides (``limits.py``)."""
        limited, task_id = self.limited_pop(conn, worker_id, queues, pid, now)
        if limited:
            return task_id
        ns = self.namespace
        for queue in queues:
            while (head := conn.execute(sql.QUEUE_HEAD, (ns, queue)).fetchone()) is not None:
                seq, task_id = head
                if conn.execute(sql.TASK_START_HEAD, (worker_id, pid, now, seq)).rowcount:
                    return str(task_id)
                conn.execute(sql.QUEUE_POP, (seq,))  # not PENDING: it leaves the queue anyway
        return None

    def _finish(
        self,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        next_queues: Sequence[str] | None = None,
        pid: int = 0,
    ) -> tuple[bool, ClaimedTask | None]:
        with self._write() as conn:
            now = time.time()  # once the lock is held: times follow the order of commits
            done = self._finish_in(conn, worker_id, task_id, status, result, now)
            worker_status, worker_task = worker_state(conn, self.namespace, worker_id)
            if worker_status in GONE_WORKER:  # it re-registers under a new id
                return done, None
            claimed = (
                self._claim_in(conn, worker_id, next_queues, pid, now) if next_queues else None
            )
            if claimed is None and (done or worker_task == task_id):
                conn.execute(sql.WORKER_IDLE, (now, self.namespace, worker_id))
        return done, claimed

    def _finish_in(
        self,
        conn: sqlite3.Connection,
        worker_id: str,
        task_id: str,
        status: TaskStatus,
        result: bytes | None,
        now: float,
    ) -> bool:
        """Store the outcome and release or doom the dependants; the worker is left as is."""
        ns = self.namespace
        params = (encode_status(status), result, now, ns, task_id, worker_id)
        row = conn.execute(sql.TASK_FINISH, params).fetchone()
        if row is None:
            return False
        if row[0] and '_ttl"' in row[0]:  # decoded only when it names a ttl
            expire_later(conn, ns, task_id, status, row[0], now)
        command = _FINISH_EVENT.get(status, "TASK_ERROR")
        conn.execute(sql.LOG, (ns, worker_id, now, command, task_id))
        dedup.release(conn, ns, [task_id])
        if conn.execute(sql.HAS_DEPENDANTS, (ns, task_id)).fetchone() is None:
            return True
        if status is TaskStatus.COMPLETE:
            released = conn.execute(sql.RELEASABLE, (ns, task_id)).fetchall()
            conn.executemany(sql.RELEASE, ((ns, tid) for tid, _ in released))
            push(conn, ns, [(queue, tid) for tid, queue in released])
        elif status in FAILED_STATUSES:
            conn.execute(sql.MAKE_IMPOSSIBLE, (ns, json.dumps([task_id]), now))
        return True

    def _requeue(self, worker_id: str, task_id: str) -> bool:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if not conn.execute(sql.TASK_REQUEUE, (ns, task_id, worker_id)).rowcount:
                return False
            (queue,) = conn.execute(sql.TASK_QUEUE, (ns, task_id)).fetchone()
            push(conn, ns, [(queue, task_id)], head=True)
            conn.execute(sql.WORKER_IDLE, (now, ns, worker_id))
            conn.execute(sql.LOG, (ns, worker_id, now, "TASK_REQUEUE", task_id))
        return True

    def wait_for_work(
        self,
        worker_id: str,
        queues: Sequence[str],
        timeout_s: float,
        wake_fd: int | None = None,
    ) -> None:
        (due,) = self._fetchall(sql.DELAY_NEXT, (self.namespace,))[0]
        wait_s = self.limit_wait(timeout_s, queues)  # a named limit's rate window may open
        self._poll(lambda: self._can_claim(worker_id, queues, due), wait_s, wake_fd)

    def _can_claim(self, worker_id: str, queues: Sequence[str], due: float | None) -> bool:
        """Whether a message waits for the worker, a task in one of ``queues``, or the next
        due time of the delayed tasks is no longer ``due`` (one read)."""
        ns = self.namespace
        with self._read() as conn:
            if has_message(conn, ns, worker_id):
                return True
            if conn.execute(sql.WORK_READY, (ns, ids_json(queues))).fetchone() is not None:
                return True
            if self.limits_ready(conn, queues):
                return True
            return bool(conn.execute(sql.DELAY_NEXT, (ns,)).fetchone()[0] != due)

    def _work_ready(self, queues: Sequence[str]) -> bool:
        if self._fetchall(sql.WORK_READY, (self.namespace, ids_json(queues))):
            return True
        return bool(self._fetchall(sql.LIMIT_PARKED_ANY, (self.namespace,)))  # set aside


def _initial_statuses(tasks: Sequence[NewTask], dep_status: dict[str, str]) -> list[TaskStatus]:
    """Each new task's status from its dependencies' (``dep_status`` holds the stored ones;
    earlier tasks of the batch are added as they are decided)."""
    known = dict(dep_status)
    statuses = []
    for task in tasks:
        status = _PENDING
        if task.depends_on:
            deps = [known[d] for d in task.depends_on]
            if any(s in FAILED_STATUSES for s in deps):
                status = _IMPOSSIBLE
            elif any(s != _COMPLETE for s in deps):
                status = _DEFERRED
        known[task.id] = status
        statuses.append(status)
    return statuses
