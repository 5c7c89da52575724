"""Workers on SQLite: registration, the worker log, the list of workers (``base.Backend``'s
"workers" section). Table ``workers`` (one row per worker id) and ``worker_log`` (its events,
oldest first by rowid)."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from runq.backends.records import WorkerRecord
from runq.backends.sqlite import sql
from runq.backends.sqlite.core import ACTIVE_WORKER, SqliteCore
from runq.exceptions import ConfigError
from runq.models import LogEntry

__all__ = ["SqliteWorkers", "worker_state"]


def worker_state(
    conn: sqlite3.Connection, ns: str, worker_id: str
) -> tuple[str | None, str | None]:
    """(status, task_id) of a worker; (None, None) for an unknown id."""
    row = conn.execute(sql.WORKER_STATE, (ns, worker_id)).fetchone()
    return (None, None) if row is None else (row[0], row[1])


class SqliteWorkers(SqliteCore):
    """The worker verbs of ``SqliteBackend``."""

    def _register_worker(self, worker_id: str, info: dict[str, Any]) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            if worker_state(conn, ns, worker_id)[0] in ACTIVE_WORKER:
                raise ConfigError(
                    f"worker id {worker_id!r} is already in use by an active worker of queue "
                    f"{ns!r}: choose another id"
                )
            conn.execute(sql.WORKER_REGISTER, (ns, worker_id, json.dumps(info), now, now))
            conn.execute(sql.LOG, (ns, worker_id, now, "ALIVE", ""))

    def _worker_log(self, worker_id: str, command: str, message: str) -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(sql.LOG, (ns, worker_id, now, command, message))
            conn.execute(sql.WORKER_SEEN, (now, ns, worker_id))

    def _worker_exit(self, worker_id: str, message: str = "") -> None:
        ns, now = self.namespace, time.time()
        with self._write() as conn:
            conn.execute(sql.WORKER_EXIT, (now, ns, worker_id))
            conn.execute(sql.LOG, (ns, worker_id, now, "STOP", message))

    def workers(self, include_exited: bool = False) -> list[WorkerRecord]:
        rows = self._fetchall(sql.WORKERS, (self.namespace, include_exited))
        return [
            WorkerRecord(worker_id, status, json.loads(info), task_id, started, last_seen)
            for worker_id, status, info, task_id, started, last_seen in rows
        ]

    def worker_log_tail(self, worker_id: str, n: int) -> list[LogEntry]:
        limit = n if n > 0 else -1
        rows = self._fetchall(sql.LOG_TAIL, (self.namespace, worker_id, limit))
        return [LogEntry(*r) for r in rows]
