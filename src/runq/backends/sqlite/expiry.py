"""Result expiry on SQLite (``base.Backend``'s "expiry" section): ``finish`` records a finished
task with ``result_ttl`` / ``failure_ttl`` in the ``expiring`` table (``expire_later``, in its
transaction); ``expire_take`` takes those due, under a lease, for the caller to delete
(``delete`` drops their rows). One ``BEGIN IMMEDIATE`` transaction each."""

from __future__ import annotations

import json
import sqlite3
import time

from runq.backends.sqlite import sql
from runq.backends.sqlite.core import SqliteCore
from runq.models import TaskStatus

__all__ = ["SqliteExpiry", "expire_later"]


def expire_later(
    conn: sqlite3.Connection, ns: str, task_id: str, status: TaskStatus, options: str, now: float
) -> None:
    """Record when a task that just finished is deleted, if its options give a ttl for its
    status (``result_ttl`` for COMPLETE, else ``failure_ttl``)."""
    try:
        opts = json.loads(options)
    except ValueError:
        return
    ttl = opts.get("result_ttl" if status is TaskStatus.COMPLETE else "failure_ttl")
    if isinstance(ttl, int | float) and not isinstance(ttl, bool):
        conn.execute(sql.EXPIRING_SET, (ns, task_id, now + ttl))


class SqliteExpiry(SqliteCore):
    """The expiry verbs of ``SqliteBackend``."""

    def _expire_take(
        self, limit: int, lease_s: float, postpone_s: float
    ) -> tuple[list[str], float | None]:
        ns = self.namespace
        (nxt,) = self._fetchall(sql.EXPIRING_NEXT, (ns,))[0]
        if nxt is None or nxt > time.time():  # a read: idle workers never take the lock
            return [], None if nxt is None else float(nxt)
        taken: list[str] = []
        with self._write() as conn:
            now = time.time()
            for task_id, exists in conn.execute(sql.EXPIRING_DUE, (ns, now, limit)).fetchall():
                if not exists:
                    conn.execute(sql.EXPIRING_DELETE, (ns, json.dumps([task_id])))
                elif conn.execute(sql.UNSTARTED_DEPENDANT, (ns, task_id)).fetchone():
                    conn.execute(sql.EXPIRING_SET, (ns, task_id, now + postpone_s))
                else:
                    conn.execute(sql.EXPIRING_SET, (ns, task_id, now + lease_s))
                    taken.append(task_id)
            (nxt,) = conn.execute(sql.EXPIRING_NEXT, (ns,)).fetchone()
        return taken, None if nxt is None else float(nxt)
