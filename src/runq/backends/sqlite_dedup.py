"""Duplicate policies (``on_duplicate``) for the SQLite backend, inside the caller's
``BEGIN IMMEDIATE`` transaction, so admission and release are atomic across every process
sharing the file.

Table ``dedup`` (``schema.sql``) holds each duplicate key's *active* submissions in order: the
first is queued or running, the rest are held (DEFERRED, in no queue). When an active task
finishes, is cancelled or deleted it leaves the list, and a held task that becomes first is
released (PENDING, tail of its queue). Admission of a new submission whose key has ``busy``
active tasks:

=========== ===================== ============================================
policy      busy == 0             busy > 0
=========== ===================== ============================================
discard     PENDING, joins        DISCARDED (finished, never run)
serial      PENDING, joins        DEFERRED, joins (held until its turn)
queue_one   PENDING, joins        busy == 1: DEFERRED, joins; else DISCARDED
=========== ===================== ============================================
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence

from runq.exceptions import ConfigError
from runq.models import NewTask, TaskStatus

__all__ = ["SqliteDedupMixin"]

_ACTIVE_COUNT = "SELECT count(*) FROM dedup WHERE ns = ? AND key = ?"
_JOIN = "INSERT INTO dedup (ns, key, task_id) VALUES (?, ?, ?)"
_KEYS_OF = """
SELECT DISTINCT key FROM dedup WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"""
_KEY_OF = "SELECT key FROM dedup WHERE ns = ? AND task_id = ?"
_LEAVE = "DELETE FROM dedup WHERE ns = ?1 AND task_id IN (SELECT value FROM json_each(?2))"
_HEAD = """
SELECT d.task_id, t.status, t.queue FROM dedup d
JOIN tasks t ON t.ns = d.ns AND t.id = d.task_id
WHERE d.ns = ? AND d.key = ? ORDER BY d.seq LIMIT 1"""
_RELEASE = "UPDATE tasks SET status = 'PENDING' WHERE ns = ? AND id = ? AND status = 'DEFERRED'"


class SqliteDedupMixin:
    """Admission and release of tasks under a duplicate policy (mixed into SqliteBackend)."""

    namespace: str
    _push: Callable[[sqlite3.Connection, list[tuple[str, str]]], None]  # SqliteBackend's

    def _dedup_admit(
        self, conn: sqlite3.Connection, tasks: Sequence[NewTask], statuses: list[TaskStatus]
    ) -> list[TaskStatus]:
        """Each new task's status after its duplicate policy; the admitted ones join their
        key's active list (in batch order)."""
        out = list(statuses)
        ns = self.namespace
        for i, task in enumerate(tasks):
            if task.dedup_key is None:
                continue
            if task.depends_on:
                raise ConfigError(f"task {task.id!r}: a duplicate policy excludes depends_on")
            (busy,) = conn.execute(_ACTIVE_COUNT, (ns, task.dedup_key)).fetchone()
            policy = task.options.get("on_duplicate")
            if busy and (policy == "discard" or (policy == "queue_one" and busy >= 2)):
                out[i] = TaskStatus.DISCARDED
                continue
            if busy:
                out[i] = TaskStatus.DEFERRED
            conn.execute(_JOIN, (ns, task.dedup_key, task.id))
        return out

    def _dedup_release(self, conn: sqlite3.Connection, task_ids: Sequence[str]) -> None:
        """``task_ids`` leave their active lists; a held task that becomes first is queued."""
        ns = self.namespace
        if len(task_ids) == 1:  # finish: the hot path, one indexed lookup
            keys = [k for (k,) in conn.execute(_KEY_OF, (ns, task_ids[0]))]
        else:
            keys = [k for (k,) in conn.execute(_KEYS_OF, (ns, json.dumps(list(task_ids))))]
        if not keys:
            return
        ids = json.dumps(list(task_ids))
        conn.execute(_LEAVE, (ns, ids))
        released: list[tuple[str, str]] = []
        for key in keys:
            head = conn.execute(_HEAD, (ns, key)).fetchone()
            if head is not None and head[1] == TaskStatus.DEFERRED:
                conn.execute(_RELEASE, (ns, head[0]))
                released.append((head[2], head[0]))
        if released:
            self._push(conn, released)
