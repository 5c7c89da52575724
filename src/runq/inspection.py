"""Inspecting tasks, waiting for them and collecting their results: the read side of
``Controller`` (``TaskInspection``, mixed into it).

Methods taking ``ids`` accept one id (answering a scalar) or a sequence (answering a list);
each costs a bounded number of backend round trips. With ``follow`` (default: the
controller's), a retried (MOVED) id answers for its newest retry.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar, overload

from runq import serialize
from runq.backends import Backend
from runq.exceptions import ConfigError, TaskError, TaskStateError, UnknownTaskError
from runq.models import (
    FINISHED_STATUSES,
    TaskInfo,
    TaskPage,
    TaskStatus,
    TaskSummary,
    TaskTimes,
)
from runq.options import as_id_list, seconds, with_defaults
from runq.serialize import Kind
from runq.session import Session
from runq.submission import Submitter
from runq.waiting import wait_finished

__all__ = ["Ids", "TaskInspection", "scalar_or_list"]

T = TypeVar("T")
Ids = str | Sequence[str]


def scalar_or_list(ids: Ids, values: list[T]) -> T | list[T]:
    """One answer for one id, a list for many (SPEC: one id -> scalar)."""
    return values[0] if isinstance(ids, str) else values


class TaskInspection:
    """Status, waiting, results, info and the other reads of a controller's tasks."""

    queue_id: str
    session: Session
    submitter: Submitter
    backend: Backend
    follow: bool
    timeout_task_wait: float | None

    @overload
    def status(self, ids: str, follow: bool | None = None) -> TaskStatus: ...  # type: ignore[overload-overlap]
    @overload
    def status(self, ids: Sequence[str], follow: bool | None = None) -> list[TaskStatus]: ...
    def status(self, ids: Ids, follow: bool | None = None) -> TaskStatus | list[TaskStatus]:
        """Each task's ``TaskStatus`` (MISSING for an unknown id). With ``follow`` (default:
        the controller's), a retried (MOVED) id answers for its newest retry."""
        id_list = as_id_list(ids)
        return scalar_or_list(ids, self._statuses(id_list, follow)[1])

    def _following(self, follow: bool | None) -> bool:
        return self.follow if follow is None else follow

    def _resolve(self, ids: list[str], follow: bool | None) -> list[str]:
        """``ids``, each followed to its newest retry when following."""
        return self.backend.resolve(ids) if self._following(follow) and ids else ids

    def _statuses(self, ids: list[str], follow: bool | None) -> tuple[list[str], list[TaskStatus]]:
        """(resolved ids, their statuses): one round trip unless some id was MOVED."""
        statuses = self.backend.status(ids)
        if not self._following(follow) or TaskStatus.MOVED not in statuses:
            return ids, statuses
        resolved = self.backend.resolve(ids)
        return resolved, self.backend.status(resolved)

    @overload
    def exists(self, ids: str) -> bool: ...  # type: ignore[overload-overlap]
    @overload
    def exists(self, ids: Sequence[str]) -> list[bool]: ...
    def exists(self, ids: Ids) -> bool | list[bool]:
        """Whether each task id is known."""
        found = [s is not TaskStatus.MISSING for s in self.backend.status(as_id_list(ids))]
        return scalar_or_list(ids, found)

    def wait(
        self,
        ids: Ids,
        timeout: float | timedelta | None = None,
        poll: float = 1.0,
        progress: bool | None = None,
        follow: bool | None = None,
    ) -> bool:
        """Block until every task has finished; True iff all COMPLETE.

        ``timeout`` (default: the controller's ``timeout_task_wait``; None = for ever) raises
        ``WaitTimeout`` if reached. ``poll`` is how long each blocking request may last, not a
        sleep: a completion is noticed within milliseconds. ``progress``: a progress bar
        (default: when stderr is a terminal)."""
        timeout_s = (
            seconds("timeout", timeout, allow_inf=True)
            if timeout is not None
            else self.timeout_task_wait
        )
        poll_s = seconds("poll", poll) or 1.0
        id_list, final = self._wait_final(as_id_list(ids), timeout_s, poll_s, progress, follow)
        return all(final.get(i) is TaskStatus.COMPLETE for i in id_list)

    def _wait_final(
        self,
        id_list: list[str],
        timeout_s: float | None,
        poll_s: float,
        progress: bool | None,
        follow: bool | None,
    ) -> tuple[list[str], dict[str, TaskStatus]]:
        """Wait for ``id_list``; (the ids followed to their newest retries, final statuses).
        MOVED counts as finished to the wait, so ids are resolved only when one was met: a
        wait costs no extra round trip when nothing was retried."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            final = wait_finished(self.backend, id_list, timeout_s, poll_s, progress)
            if not self._following(follow) or TaskStatus.MOVED not in final.values():
                return id_list, final
            id_list = self.backend.resolve(id_list)  # retried before or while we waited
            if deadline is not None:
                timeout_s = max(0.0, deadline - time.monotonic())

    def result(
        self,
        tid: str,
        error: bool = False,
        follow: bool | None = None,
        timeout: float | timedelta | None = 0,
    ) -> Any:
        """The task's result. A task that did not COMPLETE gives a ``TaskError`` value (raised
        instead with ``error=True``). ``timeout`` > 0 waits that long for it to finish first
        (None: for ever); an unfinished task is a ``TaskStateError``."""
        if not isinstance(tid, str):
            raise ConfigError(f"result() takes one task id; use results() for many, got {tid!r}")
        if timeout is None or timeout:
            timeout_s = seconds("timeout", timeout)
            ids, final = self._wait_final([tid], timeout_s, 1.0, False, follow)
            return self._collect(ids, [final[ids[0]]], error)[0]
        return self.results([tid], error=error, follow=follow)[0]

    def results(
        self, ids: Sequence[str], error: bool = False, follow: bool | None = None
    ) -> list[Any]:
        """The results of many tasks, in order (see ``result``); the statuses and the values
        are read together (one round trip on Redis), again for the newest retries when some
        id was MOVED."""
        id_list = as_id_list(ids)
        statuses, blobs = self.backend.outcomes(id_list)
        if self._following(follow) and TaskStatus.MOVED in statuses:
            id_list = self.backend.resolve(id_list)  # retried: read the newest attempts
            statuses, blobs = self.backend.outcomes(id_list)
        return self._collect(id_list, statuses, error, blobs)

    def _collect(
        self,
        id_list: list[str],
        statuses: list[TaskStatus],
        error: bool,
        blobs: list[bytes | None] | None = None,
    ) -> list[Any]:
        """The outcomes of tasks whose statuses are known (one round trip for the values,
        unless ``blobs`` holds them already)."""
        for tid, status in zip(id_list, statuses, strict=True):
            if status is TaskStatus.MISSING:
                raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
            if status not in FINISHED_STATUSES:
                raise TaskStateError(
                    f"task {tid} is {status}, not finished: wait() for it or pass a timeout"
                )
        if blobs is None:
            blobs = self.backend.results(id_list)
        out = [
            self.submitter.outcome(t, s, b)
            for t, s, b in zip(id_list, statuses, blobs, strict=True)
        ]
        if error:
            for value in out:
                if isinstance(value, TaskError):
                    raise value
        return out

    def info(self, tid: str) -> TaskInfo:
        """Everything known about one task (status, queue, worker, pid, options, dependencies,
        retry chain, times)."""
        record = self.backend.records([tid])[0]
        if record is None:
            raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
        chain = self.backend.chain(tid)
        at = chain.ids.index(tid)
        return TaskInfo(
            id=record.id,
            status=record.status,
            queue=record.queue,
            worker_id=record.worker_id,
            pid=record.pid,
            options=with_defaults(record.options),
            depends_on=record.depends_on,
            dependants=record.dependants,
            moved_from=chain.ids[at - 1] if at > 0 else None,
            moved_to=chain.ids[at + 1] if at + 1 < len(chain.ids) else None,
            chain=chain.ids,
            times=record.times,
            attempts=record.attempt,
            extra=_extra(record.status, chain.retry_at),
        )

    def progress(self, tid: str) -> Any:
        """The last value the task posted with ``runq.progress_update(value)`` (or a bound
        task's ``ctx.progress(value)``); None before it posted any."""
        blob = self.backend.progress_get(tid)
        if blob is None:
            return None
        return self.session.codec.loads(blob, Kind.PROGRESS, tid, f"progress of task {tid}")

    def log(self, tid: str) -> list[str] | None:
        """The lines the task wrote to stdout/stderr, kept when its worker's config has a
        ``logdir``: None before the task started, ``[]`` if it wrote nothing. A
        ``ConfigError`` if its worker keeps no task logs."""
        record = self.backend.records([tid])[0]
        if record is None:
            raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
        if record.worker_id is None:
            return None
        found = [w for w in self.backend.workers(True) if w.worker_id == record.worker_id]
        logdir = found[0].info.get("logdir") if found else None
        if not logdir:
            raise ConfigError(
                f"task {tid} ran on worker {record.worker_id}, which keeps no task logs: give "
                "its WorkerConfig a logdir"
            )
        path = Path(logdir) / tid
        if not path.exists():
            return None
        return path.read_text(errors="replace").splitlines()

    def data(self, tid: str) -> dict[str, Any]:
        """The stored call, unpickled (expert use): ``kind``, ``fn``, ``args``, ``kwargs``,
        ``expr``, ``env``."""
        call = self.submitter.call(tid)
        fn = serialize.loads(call.fn_bytes, "the function") if call.fn_bytes else None
        return {
            "kind": call.kind,
            "fn": fn,
            "args": call.args,
            "kwargs": call.kwargs,
            "expr": call.expr,
            "env": call.env,
            "retry_on": call.retry_on,
        }

    @overload
    def times(self, ids: str, follow: bool | None = None) -> TaskTimes: ...  # type: ignore[overload-overlap]
    @overload
    def times(self, ids: Sequence[str], follow: bool | None = None) -> list[TaskTimes]: ...
    def times(self, ids: Ids, follow: bool | None = None) -> TaskTimes | list[TaskTimes]:
        """Each task's submitted/started/finished times (backend clock; None if not reached)."""
        return scalar_or_list(ids, self.backend.times(self._resolve(as_id_list(ids), follow)))

    def list_tasks(self) -> list[str]:
        """Every task id of the namespace, in submission order."""
        return self.backend.list_tasks()

    def task_page(
        self,
        status: TaskStatus | str | None = None,
        queue: str | None = None,
        name: str | None = None,
        after: int | None = None,
        limit: int = 50,
        scan: int = 10_000,
    ) -> TaskPage:
        """One page of the namespace's tasks, newest first, filtered by ``status``, ``queue``
        and ``name`` (each an exact match; None: any), starting below the cursor ``after``
        (None: the newest; else the ``after`` of the previous page). Its cost does not grow
        with the number of tasks: at most ``scan`` tasks are examined per call, so a rare
        filter may answer a page shorter than ``limit`` whose ``after`` is not None; keep
        paging until ``after`` is None to see every match."""
        if status is not None and status not in set(TaskStatus):
            names = ", ".join(TaskStatus)
            raise ConfigError(f"status must be one of {names}, got {status!r}")
        wanted = None if status is None else TaskStatus(status)
        ids, cursor = self.backend.task_page(after, limit, scan, wanted, queue, name)
        records = self.backend.records(ids) if ids else []
        tasks = [
            TaskSummary(
                id=r.id,
                status=r.status,
                queue=r.queue,
                name=r.options.get("name"),
                worker_id=r.worker_id,
                attempts=r.attempt,
                times=r.times,
                fn=r.options.get("fn"),
            )
            for r in records
            if r is not None  # deleted meanwhile
        ]
        return TaskPage(tasks, cursor)

    def overview(self, ids: Sequence[str] | None = None) -> dict[TaskStatus, int]:
        """How many tasks are in each status (of ``ids``, or of the whole namespace)."""
        if ids is None:
            return self.backend.overview()
        counts: dict[TaskStatus, int] = {}
        for status in self.backend.status(as_id_list(ids)):
            counts[status] = counts.get(status, 0) + 1
        return counts

    def deferred(self) -> dict[str, list[str]]:
        """Each DEFERRED task -> the dependencies it still waits for."""
        return self.backend.deferred()

    @overload
    def position(  # type: ignore[overload-overlap]
        self, ids: str, missing: int = 0, queue: str | None = None, follow: bool | None = None
    ) -> int: ...
    @overload
    def position(
        self,
        ids: Sequence[str],
        missing: int = 0,
        queue: str | None = None,
        follow: bool | None = None,
    ) -> list[int]: ...
    def position(
        self, ids: Ids, missing: int = 0, queue: str | None = None, follow: bool | None = None
    ) -> int | list[int]:
        """Each task's place in its queue (or in ``queue``): 1 = next to run; ``missing`` for
        a task that is not waiting there."""
        id_list = self._resolve(as_id_list(ids), follow)
        queues = [queue] * len(id_list) if queue else self._queues_of(id_list)
        places: dict[str, dict[str, int]] = {}
        for name in {q for q in queues if q}:
            places[name] = {t: i for i, t in enumerate(self.backend.queue_tasks(name), 1)}
        found = [
            places.get(q or "", {}).get(t, missing) for t, q in zip(id_list, queues, strict=True)
        ]
        return scalar_or_list(ids, found)

    def preceding(
        self, tid: str, queue: str | None = None, follow: bool | None = None
    ) -> list[str] | None:
        """The ids ahead of ``tid`` in its queue (or ``queue``); None if it is not waiting."""
        (tid,) = self._resolve([tid], follow)
        name = queue or self._queues_of([tid])[0]
        if not name:
            return None
        waiting = self.backend.queue_tasks(name)
        return waiting[: waiting.index(tid)] if tid in waiting else None

    def _queues_of(self, ids: list[str]) -> list[str | None]:
        return [r.queue if r is not None else None for r in self.backend.records(ids)]

    def summary(self) -> dict[str, int]:
        """Counts in mirai's style: ``online`` workers, ``queued``, ``assigned`` (running),
        ``complete``, ``error`` (every failed status), plus ``deferred``, ``scheduled`` and
        ``total``."""
        counts = self.backend.overview()
        failed = (
            TaskStatus.ERROR,
            TaskStatus.TIMEOUT,
            TaskStatus.DIED,
            TaskStatus.IMPOSSIBLE,
            TaskStatus.CANCELLED,
        )
        return {
            "online": len(self.backend.workers()),
            "queued": counts.get(TaskStatus.PENDING, 0),
            "assigned": counts.get(TaskStatus.RUNNING, 0),
            "complete": counts.get(TaskStatus.COMPLETE, 0),
            "error": sum(counts.get(s, 0) for s in failed),
            "deferred": counts.get(TaskStatus.DEFERRED, 0),
            "scheduled": counts.get(TaskStatus.SCHEDULED, 0),
            "total": sum(counts.values()),
        }


def _extra(status: TaskStatus, due: float | None) -> dict[str, float]:
    """``TaskInfo.extra``: the due time of a SCHEDULED task (``run_at``) or of a delayed
    retry (``retry_at``), on the backend's clock."""
    if due is None:
        return {}
    return {"run_at" if status is TaskStatus.SCHEDULED else "retry_at": due}
