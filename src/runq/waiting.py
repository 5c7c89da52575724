"""Waiting for tasks to finish: one loop shared by ``Controller.wait`` and ``result(timeout)``.

The loop asks the backend for statuses in bounded chunks (tasks finish roughly in submission
order, so it checks the oldest unfinished ones first) and blocks in ``Backend.wait_change``
between checks, which wakes within milliseconds of a completion. With many tasks outstanding
it paces its re-checks so that a controller waiting on 100k tasks does not steal the CPU from
the workers it waits for.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from typing import Protocol

from runq.backends import Backend
from runq.exceptions import WaitTimeout
from runq.models import FINISHED_STATUSES, TaskStatus

__all__ = ["wait_finished"]

_CHUNK = 2000
_PACE_PER_TASK_S = 2e-6  # pause between re-checks per outstanding task …
_PACE_MAX_S = 0.05  # … capped: at most 50 ms late when 25k+ tasks are outstanding


#: After this long without every task done, a wait checks that workers serve their queues,
#: and again as often while it lasts.
WORKER_CHECK_S = 5.0
_ACTIVE = ("IDLE", "BUSY")
_QUEUES_LOOKED_AT = 200  # pending tasks whose queues a check reads

log = logging.getLogger("runq")


class _Bar(Protocol):
    def advance(self, n: int) -> None: ...
    def describe(self, text: str) -> None: ...
    def close(self) -> None: ...


class _NoBar:
    def advance(self, n: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


class _RichBar:
    def __init__(self, total: int, label: str) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._progress.add_task(label, total=total)
        self._progress.start()

    def advance(self, n: int) -> None:
        if n:
            self._progress.advance(self._task, n)

    def describe(self, text: str) -> None:
        self._progress.update(self._task, description=text)

    def close(self) -> None:
        self._progress.stop()


def make_bar(total: int, progress: bool | None, label: str = "waiting") -> _Bar:
    """A progress bar when asked, or by default when stderr is a terminal."""
    show = progress if progress is not None else sys.stderr.isatty()
    return _RichBar(total, label) if show and total > 0 else _NoBar()


def wait_finished(
    backend: Backend,
    ids: Sequence[str],
    timeout_s: float | None,
    poll_s: float,
    progress: bool | None = None,
) -> dict[str, TaskStatus]:
    """Block until every task of ``ids`` has a finished status; return the final statuses.

    Raises ``WaitTimeout`` if ``timeout_s`` passes first (``None``: wait for ever)."""
    pending = list(dict.fromkeys(ids))
    final: dict[str, TaskStatus] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    bar = make_bar(len(pending), progress)
    watch = _WorkerWatch(backend, bar)
    # The backend is sure to wake us for every finish of these since their submission: the
    # first status read is not needed (the wait below returns at once if one was heard).
    unread = timeout_s != 0 and backend.watches(pending)
    try:
        while pending:
            if unread:  # nothing read yet: no timeout before the first read, as without
                unread = False
                still = pending
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                wait_s = poll_s if left is None else min(poll_s, left)
            else:
                head = pending[:_CHUNK]
                statuses = backend.status(head)
                still = [
                    i for i, s in zip(head, statuses, strict=True) if s not in FINISHED_STATUSES
                ]
                final.update(
                    (i, s) for i, s in zip(head, statuses, strict=True) if s in FINISHED_STATUSES
                )
                bar.advance(len(head) - len(still))
                pending = still + pending[_CHUNK:]
                if not still:
                    continue  # the whole chunk finished: look further along at once
                watch.check(still)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    hint = f": {watch.hint}" if watch.hint else ""
                    raise WaitTimeout(
                        f"{len(pending)} of {len(final) + len(pending)} tasks not finished "
                        f"after {timeout_s:g} s (first: {pending[0]}){hint}"
                    )
                wait_s = poll_s if remaining is None else min(poll_s, remaining)
            heard = backend.wait_change(still, wait_s)
            if heard:  # announced with their final statuses: no need to read them again
                final.update(heard)
                bar.advance(len(heard))
                pending = [i for i in pending if i not in heard]
            pace = min(_PACE_MAX_S, _PACE_PER_TASK_S * len(pending))
            if pace > 0.001:
                time.sleep(pace)  # pacing, not synchronisation: see module docstring
    finally:
        bar.close()
    return final


class _WorkerWatch:
    """Notices a wait that no worker can end: pending tasks in queues that no live worker
    listens on. It says so in the progress bar and, once per queue, in a log warning."""

    def __init__(self, backend: Backend, bar: _Bar) -> None:
        self._backend = backend
        self._bar = bar
        self._next = time.monotonic() + WORKER_CHECK_S
        self._warned: set[str] = set()
        self.hint = ""  # what the last check found wrong ("" if nothing)

    def check(self, unfinished: Sequence[str]) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + WORKER_CHECK_S
        records = self._backend.records(list(unfinished[:_QUEUES_LOOKED_AT]))
        waiting = {r.queue for r in records if r is not None and r.status is TaskStatus.PENDING}
        live = [w for w in self._backend.workers() if w.status in _ACTIVE]
        served = {q for w in live for q in w.info.get("queues", ())}
        unserved = sorted(waiting - served)
        self.hint = (
            f"no live worker listens on queue(s) {', '.join(map(repr, unserved))} of "
            f"{self._backend.namespace!r}: start one (runq worker {self._backend.namespace})"
            if unserved
            else ""
        )
        self._bar.describe(f"waiting ({self.hint})" if unserved else "waiting")
        for queue in unserved:
            if queue not in self._warned:
                self._warned.add(queue)
                log.warning("runq: %s", self.hint, extra={"event": "NO_WORKER"})
