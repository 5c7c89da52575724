"""Reads of tasks on Redis: statuses, records, payloads, results, times, the task and queue
listings, the DEFERRED tasks, progress values, and ``wait_change`` (``base.Backend``'s
"inspection" section).

Many ids cost a bounded number of round trips: ``HMGET`` in chunks, in one pipeline
(``core.RedisCore._hmget``). Every read is made once more on a fresh connection after a
connection error (``errors.read_retried``). ``wait_change`` listens for the ids that finishing
transitions publish (``listen.DoneListener``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from runq.backends.redis.core import RedisCore
from runq.backends.redis.errors import read_retried, translated
from runq.backends.redis.replies import (
    STATUS,
    decode_status,
    id_list,
    optional_text,
    record,
    text,
)
from runq.models import FINISHED_STATUSES, TaskRecord, TaskStatus, TaskTimes

__all__ = ["RedisInspection"]

#: Above this many ids, wait_change pauses instead of listening for announcements: hearing
#: them costs the controller about as much as the reads it spares (a 2,000-id window of the
#: Executor, measured: no gain; ``Controller.wait`` of 20,000 ids in a drain: 10-20 us more
#: of the controller's CPU per task).
_WATCH_MAX = 64
_MANY_PAUSE_S = 0.01
#: Tasks per task_page.lua call of list_tasks.
_LIST_PAGE = 10_000
#: The statuses an announcement may carry (anything else: read it).
_FINISHED = {s.value: s for s in FINISHED_STATUSES}


class RedisInspection(RedisCore):
    """The reads of ``RedisBackend``."""

    @read_retried
    def _status(self, ids: Sequence[str]) -> list[TaskStatus]:
        missing = TaskStatus.MISSING
        return [missing if v is None else STATUS[v] for v in self._statuses(ids)]

    @read_retried
    def _records(self, ids: Sequence[str]) -> list[TaskRecord | None]:
        fields = ["status", "task", "worker", "pid", "deps", "dependants", "attempt"]
        status, rec, worker, pid, deps, dependants, attempt, started, finished = self._hmget(
            [*fields, "started", "finished"], ids
        )
        self._fill_pending(ids, status, rec)
        children = self._dependants(ids, dependants)
        parsed: dict[bytes, dict[str, Any]] = {}  # a batch's tasks often share their options
        out: list[TaskRecord | None] = []
        for i, task_id in enumerate(ids):
            if status[i] is None:
                out.append(None)
                continue
            parts = record(rec[i])
            raw = parts.options or b"{}"
            if raw not in parsed:
                parsed[raw] = json.loads(raw)
            times = (parts.submitted, started[i], finished[i])
            out.append(
                TaskRecord(
                    id=task_id,
                    status=STATUS[status[i]],
                    queue=parts.queue,
                    options=dict(parsed[raw]),
                    worker_id=optional_text(worker[i]),
                    pid=None if pid[i] is None else int(pid[i]),
                    depends_on=id_list(deps[i]),
                    dependants=children[i],
                    attempt=int(attempt[i] or 0),
                    times=TaskTimes(*(None if t is None else float(t) for t in times)),
                )
            )
        return out

    def _dependants(self, ids: Sequence[str], heads: list[Any]) -> list[tuple[str, ...]]:
        """Each task's dependants, oldest first, given the newest chunk of each (``heads``):
        older chunks sit in fields ``<id>\\n1``, ``<id>\\n2`` … counted by ``<id>\\n0``."""
        out = [id_list(head) for head in heads]
        having = [i for i, head in enumerate(heads) if head is not None]
        if not having:
            return out
        (counts,) = self._hmget(["dependants"], [f"{ids[i]}\n0" for i in having])
        older = [(i, int(n)) for i, n in zip(having, counts, strict=True) if n]
        if not older:
            return out
        fields = [f"{ids[i]}\n{k}" for i, n in older for k in range(1, n + 1)]
        (chunks,) = self._hmget(["dependants"], fields)
        start = 0
        for i, n in older:
            out[i] = (*(x for chunk in chunks[start : start + n] for x in id_list(chunk)), *out[i])
            start += n
        return out

    @read_retried
    def _payloads(self, ids: Sequence[str]) -> list[bytes | None]:
        status, values = self._hmget(["status", "task"], ids)
        self._fill_pending(ids, status, values)  # staged: no status
        return [
            None if s is None else record(v).payload for s, v in zip(status, values, strict=True)
        ]

    @translated
    @read_retried
    def _progress_get(self, task_id: str) -> bytes | None:
        value = self._r.hget(self._k.key("progress"), task_id)
        return value.encode() if isinstance(value, str) else value

    @read_retried
    def _results(self, ids: Sequence[str]) -> list[bytes | None]:
        (values,) = self._hmget(["result"], ids)
        return values

    @read_retried
    def _outcomes(self, ids: Sequence[str]) -> tuple[list[TaskStatus], list[bytes | None]]:
        status, values = self._hmget(["status", "result"], ids)  # in this order: see outcomes
        self._fill_pending(ids, status)  # a finished task's status is stored: no extra read
        missing = TaskStatus.MISSING
        return [missing if v is None else STATUS[v] for v in status], values

    @read_retried
    def _times(self, ids: Sequence[str]) -> list[TaskTimes]:
        status, rec, started, finished = self._hmget(["status", "task", "started", "finished"], ids)
        self._fill_pending(ids, status, rec)
        return [
            TaskTimes(
                None if s is None else record(r).submitted,  # staged (no status): not yet
                None if b is None else float(b),
                None if f is None else float(f),
            )
            for s, r, b, f in zip(status, rec, started, finished, strict=True)
        ]

    @read_retried
    def list_tasks(self) -> list[str]:
        ids: list[str] = []  # newest first, page by page (the order is kept in blocks)
        after: int | None = None
        while True:
            page, after = self._task_page(after, _LIST_PAGE, _LIST_PAGE, None, None, None)
            ids += page
            if after is None:
                return ids[::-1]

    @translated
    @read_retried
    def _task_page(
        self,
        after: int | None,
        limit: int,
        scan: int,
        status: TaskStatus | None,
        queue: str | None,
        name: str | None,
    ) -> tuple[list[str], int | None]:
        cursor = "+inf" if after is None else f"({after}"
        wanted = ("" if x is None else str(x) for x in (status, queue, name))
        reply = self._run("task_page", [], [cursor, limit, scan, *wanted])
        last = text(reply[0])
        return [text(i) for i in reply[1:]], (int(float(last)) if last else None)

    @read_retried
    def overview(self) -> dict[TaskStatus, int]:
        # PENDING is not stored: every other task has a record, and so does a staged one
        pipe = self._r.pipeline(transaction=True)
        pipe.hvals(self._k.status)
        pipe.hlen(self._k.key("task"))
        pipe.zrange(self._k.key("stage:lease"), 0, -1, withscores=True)
        stored, records, leases = pipe.execute()
        counts = Counter(decode_status(s) for s in stored)
        staging = [text(b) for b, score in leases if score != -1]
        if staging:
            lengths = self._r.pipeline(transaction=True)
            for batch in staging:
                lengths.llen(self._k.stage(batch)[0])
            records -= sum(lengths.execute())
        if records > len(stored):
            counts[TaskStatus.PENDING] = records - len(stored)
        return dict(counts)

    @read_retried
    def queue_tasks(self, queue: str) -> list[str]:
        return [text(i) for i in self._r.lrange(self._k.queue(queue), 0, -1)]

    @read_retried
    def queue_lengths(self) -> dict[str, int]:
        names = sorted(text(n) for n in self._r.smembers(self._k.queues))
        pipe = self._r.pipeline(transaction=True)
        for name in names:
            pipe.llen(self._k.queue(name))
        return dict(zip(names, pipe.execute(), strict=True))

    @read_retried
    def deferred(self) -> dict[str, list[str]]:
        ids = [text(i) for i in self._r.hkeys(self._k.waiting)]
        held = self._held_duplicates(set(ids))
        if not ids:
            return held
        (raw,) = self._hmget(["deps"], ids)
        deps = {i: id_list(d) for i, d in zip(ids, raw, strict=True)}
        parents = list(dict.fromkeys(d for ds in deps.values() for d in ds))
        # a deleted dependency was COMPLETE (else its dependant would be IMPOSSIBLE by now)
        met = (TaskStatus.COMPLETE, TaskStatus.MISSING)
        done = {p for p, s in zip(parents, self.status(parents), strict=True) if s in met}
        return {**{i: [d for d in ds if d not in done] for i, ds in deps.items()}, **held}

    def _held_duplicates(self, waiting: set[str]) -> dict[str, list[str]]:
        """The DEFERRED tasks held back by a duplicate policy (they wait for no dependency)."""
        lists = self._r.hvals(self._k.key("dedup:active"))
        active = [i for raw in lists for i in text(raw).split("\n") if i]
        candidates = [i for i in dict.fromkeys(active) if i not in waiting]
        if not candidates:
            return {}
        statuses = self.status(candidates)
        return {
            i: [] for i, st in zip(candidates, statuses, strict=True) if st is TaskStatus.DEFERRED
        }

    @translated  # its reads retry on their own; the listener re-subscribes on its own
    def wait_change(self, ids: Sequence[str], timeout_s: float) -> dict[str, TaskStatus]:
        if len(ids) > _WATCH_MAX:
            # Many outstanding tasks: some finish all the time, and a short pause between
            # re-checks costs less than hearing about every single one.
            time.sleep(min(timeout_s, _MANY_PAUSE_S))
            return {}

        def finished_already() -> bool:
            return bool(ids) and any(s in FINISHED_STATUSES for s in self.status(ids))

        heard = self._listener.wait(ids, timeout_s, finished_already)
        if any(st not in _FINISHED for st in heard.values()):
            return {}  # a status this version does not know: the account is not whole
        return {i: _FINISHED[st] for i, st in heard.items()}

    def watches(self, ids: Sequence[str]) -> bool:
        return len(ids) <= _WATCH_MAX and self._listener.watches(ids)
