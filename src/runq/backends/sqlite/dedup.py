"""Duplicate policies (``on_duplicate``) on SQLite, inside the caller's ``BEGIN IMMEDIATE``
transaction, so admission and release are atomic across every process sharing the file.

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

(``checks.check_new_tasks`` has refused a task with both a duplicate key and dependencies.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runq.backends.sqlite import sql
from runq.backends.sqlite.core import decode_status, ids_json, push
from runq.models import NewTask, TaskStatus

__all__ = ["admit", "release"]


def admit(
    conn: sqlite3.Connection, ns: str, tasks: Sequence[NewTask], statuses: list[TaskStatus]
) -> list[TaskStatus]:
    """Each new task's status after its duplicate policy; the admitted ones join their key's
    active list (in batch order)."""
    out = list(statuses)
    for i, task in enumerate(tasks):
        if task.dedup_key is None:
            continue
        (busy,) = conn.execute(sql.DEDUP_COUNT, (ns, task.dedup_key)).fetchone()
        policy = task.options.get("on_duplicate", "parallel")
        if busy and (policy == "discard" or (policy == "queue_one" and busy >= 2)):
            out[i] = TaskStatus.DISCARDED
            continue
        if busy:
            out[i] = TaskStatus.DEFERRED
        conn.execute(sql.DEDUP_JOIN, (ns, task.dedup_key, task.id))
    return out


def release(conn: sqlite3.Connection, ns: str, task_ids: Sequence[str]) -> None:
    """``task_ids`` leave their active lists; a held task that becomes first is queued."""
    if len(task_ids) == 1:  # finish: the hot path, one indexed lookup
        keys = [k for (k,) in conn.execute(sql.DEDUP_KEY_OF, (ns, task_ids[0]))]
    else:
        keys = [k for (k,) in conn.execute(sql.DEDUP_KEYS_OF, (ns, ids_json(task_ids)))]
    if not keys:
        return
    conn.execute(sql.DEDUP_LEAVE, (ns, ids_json(task_ids)))
    released: list[tuple[str, str]] = []
    for key in keys:
        head = conn.execute(sql.DEDUP_HEAD, (ns, key)).fetchone()
        if head is not None and decode_status(head[1]) is TaskStatus.DEFERRED:
            conn.execute(sql.RELEASE, (ns, head[0]))
            released.append((head[2], head[0]))
    if released:
        push(conn, ns, released)
