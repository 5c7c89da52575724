"""Reads of tasks on SQLite: statuses, records, payloads, results, times, the task and queue
listings, the DEFERRED tasks, progress values, and ``wait_change`` (``base.Backend``'s
"inspection" section). A read of several statements runs in one read transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from runq.backends.sqlite import sql
from runq.backends.sqlite.core import (
    SqliteCore,
    decode_status,
    distinct,
    encode_status,
    ids_json,
)
from runq.backends.sqlite.packing import unpack
from runq.models import TaskRecord, TaskStatus, TaskTimes

__all__ = ["SqliteInspection"]

#: A cursor above every submission sequence (the newest page).
_NO_CURSOR = 2**62


class SqliteInspection(SqliteCore):
    """The reads of ``SqliteBackend``."""

    def _status(self, ids: Sequence[str]) -> list[TaskStatus]:
        rows = self._fetchall(sql.STATUS, (self.namespace, ids_json(ids)))
        return [decode_status(r[0]) for r in rows]

    def _records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        ns, unique = self.namespace, ids_json(distinct(ids))
        with self._read() as conn:
            rows = conn.execute(sql.RECORDS, (ns, ids_json(ids))).fetchall()
            depends_on = _group(conn.execute(sql.DEPENDS_ON, (ns, unique)))
            dependants = _group(conn.execute(sql.DEPENDANTS, (ns, unique)))
        options = iter(_loads_each([r[3] for r in rows if r[0] is not None]))
        return [
            None
            if r[0] is None
            else TaskRecord(
                id=r[0],
                status=decode_status(r[1]),
                queue=r[2],
                options=next(options),
                worker_id=r[4],
                pid=r[5],
                depends_on=depends_on.get(r[0], ()),
                dependants=dependants.get(r[0], ()),
                attempt=r[6],
                times=TaskTimes(r[7], r[8], r[9]),
            )
            for r in rows
        ]

    def _payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        rows = self._fetchall(sql.PAYLOADS, (self.namespace, ids_json(ids)))
        return [None if r[0] is None else unpack(r[0]) for r in rows]

    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        rows = self._fetchall(sql.RESULTS, (self.namespace, ids_json(ids)))
        return [r[0] for r in rows]

    def _times(self, ids: Sequence[str]) -> list[TaskTimes]:
        rows = self._fetchall(sql.TIMES, (self.namespace, ids_json(ids)))
        return [TaskTimes(*r) for r in rows]

    def _progress_get(self, task_id: str) -> bytes | None:
        rows = self._fetchall(sql.PROGRESS_GET, (self.namespace, task_id))
        return bytes(rows[0][0]) if rows else None

    def list_tasks(self) -> list[str]:
        return [r[0] for r in self._fetchall(sql.LIST_TASKS, (self.namespace,))]

    def _task_page(
        self,
        after: int | None,
        limit: int,
        scan: int,
        status: TaskStatus | None,
        queue: str | None,
        name: str | None,
    ) -> tuple[list[str], int | None]:
        below = _NO_CURSOR if after is None else after
        filtered = queue is not None or name is not None
        # without a filter every row examined is kept; with one, read growing chunks (a
        # common match fills the page from the first chunk, a rare one reaches `scan` soon)
        chunk = min(scan, limit if not filtered else max(4 * limit, 256))
        kept: list[str] = []
        examined = 0
        while examined < scan:
            take = min(chunk, scan - examined)
            if status is None:
                rows = self._fetchall(sql.TASK_PAGE, (self.namespace, below, take))
            else:
                params = (self.namespace, below, take, encode_status(status))
                rows = self._fetchall(sql.TASK_PAGE_STATUS, params)
            for seq, task_id, task_queue, task_name in rows:
                if (queue is None or task_queue == queue) and (name is None or task_name == name):
                    kept.append(task_id)
                    if len(kept) == limit:
                        return kept, seq
            if len(rows) < take:
                return kept, None
            examined += take
            below = rows[-1][0]
            chunk *= 4
        return kept, below

    def overview(self) -> dict[TaskStatus, int]:
        return {decode_status(s): n for s, n in self._fetchall(sql.OVERVIEW, (self.namespace,))}

    def queue_tasks(self, queue: str) -> list[str]:
        return [r[0] for r in self._fetchall(sql.QUEUE_TASKS, (self.namespace, queue))]

    def queue_lengths(self) -> dict[str, int]:
        return dict(self._fetchall(sql.QUEUE_LENGTHS, (self.namespace,)))

    def deferred(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for task_id, dep in self._fetchall(sql.DEFERRED, (self.namespace,)):
            waiting = out.setdefault(task_id, [])
            if dep is not None:
                waiting.append(dep)
        return out

    def wait_change(self, ids: Sequence[str], timeout_s: float) -> dict[str, TaskStatus]:
        unique = distinct(ids)
        if not unique:
            return {}
        params = (self.namespace, ids_json(unique))

        def some_finished() -> bool:  # or unknown (MISSING)
            (unfinished,) = self._fetchall(sql.COUNT_UNFINISHED, params)[0]
            return bool(unfinished < len(unique))

        self._poll(some_finished, timeout_s)
        return {}  # no status learnt without a read: the caller reads them


def _group(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """(key, value) pairs -> key: its values, in order."""
    groups: dict[str, list[str]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in groups.items()}


def _loads_each(texts: list[str]) -> list[Any]:
    """``[json.loads(t) for t in texts]`` in one parse (each text is one JSON value)."""
    return list(json.loads("[" + ",".join(texts) + "]"))
