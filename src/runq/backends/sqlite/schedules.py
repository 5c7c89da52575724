"""Periodic schedules on SQLite (``base.Backend``'s "schedules" section): the ``schedules``
table, its ``(ns, paused, next_run)`` index for the due ones. ``schedule_fire`` is one
``BEGIN IMMEDIATE`` transaction: a compare-and-set of ``next_run`` and the enqueue of the
tick's task, so each tick creates one task whoever fires it.
"""

from __future__ import annotations

import time
from typing import Any

from runq.backends.records import ScheduleRecord
from runq.backends.sqlite import sql
from runq.backends.sqlite.tasks import SqliteTasks
from runq.models import NewTask

__all__ = ["SqliteSchedules"]


class SqliteSchedules(SqliteTasks):
    """The schedule verbs of ``SqliteBackend``."""

    def schedules(self) -> list[ScheduleRecord]:
        return [_record(row) for row in self._fetchall(sql.SCHED_LIST, (self.namespace,))]

    def _schedule_save(
        self, name: str, spec: str, payload: bytes, next_run: float, replace: bool
    ) -> bool:
        statement = sql.SCHED_REPLACE if replace else sql.SCHED_INSERT
        with self._write() as conn:
            return bool(
                conn.execute(statement, (self.namespace, name, spec, payload, next_run)).rowcount
            )

    def _schedule_remove(self, name: str) -> bool:
        with self._write() as conn:
            return bool(conn.execute(sql.SCHED_DELETE, (self.namespace, name)).rowcount)

    def _schedule_pause(self, name: str, paused: bool, next_run: float) -> bool:
        with self._write() as conn:
            params = (int(paused), next_run, self.namespace, name)
            return bool(conn.execute(sql.SCHED_PAUSE, params).rowcount)

    def _schedule_fire(self, name: str, due: float, next_run: float, task: NewTask) -> bool:
        ns = self.namespace
        with self._write() as conn:
            now = time.time()
            params = (next_run, now, task.id, ns, name, due)
            if not conn.execute(sql.SCHED_FIRE, params).rowcount:
                return False
            self._enqueue_in(conn, [task], now)
        return True

    def _schedules_due(self, limit: int) -> tuple[list[ScheduleRecord], float | None]:
        ns, now = self.namespace, time.time()
        with self._read() as conn:
            rows = conn.execute(sql.SCHED_DUE, (ns, now, limit)).fetchall()
            (nxt,) = conn.execute(sql.SCHED_NEXT, (ns, now)).fetchone()
        return [_record(row) for row in rows], None if nxt is None else float(nxt)


def _record(row: Any) -> ScheduleRecord:
    name, spec, next_run, last_run, last_task_id, paused, *payload = row
    return ScheduleRecord(
        name,
        spec,
        float(next_run),
        None if last_run is None else float(last_run),
        last_task_id,
        bool(paused),
        bytes(payload[0]) if payload else None,
    )
