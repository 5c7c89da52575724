"""Retries on SQLite: delayed retries, manual retry (MOVED) and the moves ``resolve`` and
``chain`` follow (``base.Backend``'s "retries" section).

Tables (``schema.sql``): ``delayed`` (PENDING tasks waiting for a retry and SCHEDULED tasks,
with their due time; they have no place in a queue (``qpos``) until ``promote_due`` pushes them: a
retry to the head of its queue, a SCHEDULED task to the tail), ``moves`` (old id ->
new id of a manual retry). Each transition is one ``BEGIN IMMEDIATE`` transaction; when
nothing is due, ``promote_due`` is answered by a read without the write lock.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from runq.backends.sqlite import sql
from runq.backends.sqlite.core import SqliteCore, decode_status, encode_status, ids_json, push
from runq.backends.sqlite.packing import pack
from runq.exceptions import ConfigError, TaskStateError, UnknownTaskError
from runq.models import FINISHED_STATUSES, TaskStatus

__all__ = ["SqliteRetries"]

_RETRYABLE = set(FINISHED_STATUSES) - {TaskStatus.MOVED, TaskStatus.MISSING}
_PENDING, _SCHEDULED = encode_status(TaskStatus.PENDING), encode_status(TaskStatus.SCHEDULED)


class SqliteRetries(SqliteCore):
    """The retry verbs of ``SqliteBackend``."""

    def _retry_later(self, worker_id: str, task_id: str, delay_s: float, result: bytes) -> bool:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if not conn.execute(sql.TASK_DELAY, (result, ns, task_id, worker_id)).rowcount:
                return False
            conn.execute(sql.DELAY_SET, (ns, task_id, now + max(0.0, delay_s)))
            conn.execute(sql.WORKER_IDLE, (now, ns, worker_id))
            conn.execute(sql.LOG, (ns, worker_id, now, "TASK_RETRY", task_id))
        return True

    def promote_due(self) -> float | None:
        ns = self.namespace
        (nxt,) = self._fetchall(sql.DELAY_NEXT, (ns,))[0]
        if nxt is None or nxt > time.time():
            return None if nxt is None else float(nxt)
        with self._write() as conn:
            now = time.time()
            due = conn.execute(sql.DELAY_DUE, (ns, now)).fetchall()
            conn.execute(sql.DELAY_DROP, (ns, ids_json([row[0] for row in due])))
            retried = [(queue, tid) for tid, queue, code in due if code == _PENDING]
            push(conn, ns, retried, head=True)
            scheduled = [tid for tid, _, code in due if code == _SCHEDULED]
            queue_of = {tid: queue for tid, queue, _ in due}
            push(conn, ns, [(queue_of[t], t) for t in _come_due(conn, ns, scheduled, now)])
            (nxt,) = conn.execute(sql.DELAY_NEXT, (ns,)).fetchone()
        return None if nxt is None else float(nxt)

    def _retry_tasks(
        self, pairs: Sequence[tuple[str, str]], payloads: Sequence[bytes] | None = None
    ) -> list[TaskStatus]:
        ns, now = self.namespace, time.time()
        olds = [old for old, _ in pairs]
        news = [new for _, new in pairs]
        with self._write() as conn:
            rows = conn.execute(sql.RETRY_SOURCES, (ns, ids_json(olds))).fetchall()
            _check_sources(ns, rows)
            taken = conn.execute(sql.EXISTING_IDS, (ns, ids_json(news))).fetchone()
            if taken is not None:
                raise ConfigError(f"task id {taken[0]!r} already exists in queue {ns!r}")
            sources = rows if payloads is None else _with_payloads(rows, map(pack, payloads))
            conn.executemany(
                sql.TASK_INSERT,
                (
                    (ns, new, queue, _PENDING, options, now, None, payload, None)
                    for (_, _, queue, options, payload), new in zip(sources, news, strict=True)
                ),
            )
            conn.executemany(sql.MOVE, ((ns, old) for old in olds))
            conn.executemany(sql.MOVE_RECORD, ((ns, old, new) for old, new in pairs))
            push(conn, ns, [(row[2], new) for row, new in zip(rows, news, strict=True)])
        return [decode_status(row[1]) for row in rows]

    def _moved_to(self, ids: Sequence[str]) -> dict[str, str]:
        return dict(self._fetchall(sql.MOVED_TO, (self.namespace, ids_json(ids))))

    def _moved_from(self, ids: Sequence[str]) -> dict[str, str]:
        return dict(self._fetchall(sql.MOVED_FROM, (self.namespace, ids_json(ids))))

    def _retry_at(self, task_id: str) -> float | None:
        rows = self._fetchall(sql.DELAY_OF, (self.namespace, task_id))
        return float(rows[0][0]) if rows else None


def _come_due(conn: sqlite3.Connection, ns: str, ids: list[str], now: float) -> list[str]:
    """SCHEDULED tasks whose time came, in due order: IMPOSSIBLE (their dependants too) if a
    dependency failed, DEFERRED if one is not yet COMPLETE, else PENDING. Answers the PENDING
    ones, for the caller to push to the tail of their queues."""
    ready = []
    for tid in ids:
        _, failed, other = conn.execute(sql.DEPS_STATE, (ns, tid)).fetchone()
        if failed:
            conn.execute(sql.SET_IMPOSSIBLE, (ns, tid, now))
            conn.execute(sql.MAKE_IMPOSSIBLE, (ns, json.dumps([tid]), now))
        elif other:
            conn.execute(sql.SET_STATUS, (ns, tid, encode_status(TaskStatus.DEFERRED)))
        else:
            conn.execute(sql.SET_STATUS, (ns, tid, _PENDING))
            ready.append(tid)
    return ready


def _check_sources(ns: str, rows: list[Any]) -> None:
    """Raise for the first old task that does not exist or cannot be retried (not finished,
    MOVED, or named twice)."""
    seen: set[str] = set()
    for old, code, *_ in rows:
        if code is None:
            raise UnknownTaskError(f"task {old} does not exist in queue {ns!r}")
        status = decode_status(code)
        if status not in _RETRYABLE or old in seen:
            raise TaskStateError(
                f"task {old} is {status}: only finished tasks can be retried (a MOVED "
                "one was retried already: retry its newest id)"
            )
        seen.add(old)


def _with_payloads(rows: list[Any], payloads: Iterable[bytes]) -> list[Any]:
    """``RETRY_SOURCES`` rows with each payload replaced by the re-sealed one (packed)."""
    return [(*row[:4], payload) for row, payload in zip(rows, payloads, strict=True)]
