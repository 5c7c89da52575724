"""Waiting for tasks to finish: one loop shared by ``Controller.wait`` and ``result(timeout)``.

The loop asks the backend for statuses in bounded chunks (tasks finish roughly in submission
order, so it checks the oldest unfinished ones first) and blocks in ``Backend.wait_change``
between checks, which wakes within milliseconds of a completion. With many tasks outstanding
it paces its re-checks so that a controller waiting on 100k tasks does not steal the CPU from
the workers it waits for.
"""

from __future__ import annotations

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


class _Bar(Protocol):
    def advance(self, n: int) -> None: ...
    def close(self) -> None: ...


class _NoBar:
    def advance(self, n: int) -> None:
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
    try:
        while pending:
            head = pending[:_CHUNK]
            statuses = backend.status(head)
            still = [i for i, s in zip(head, statuses, strict=True) if s not in FINISHED_STATUSES]
            final.update(
                (i, s) for i, s in zip(head, statuses, strict=True) if s in FINISHED_STATUSES
            )
            bar.advance(len(head) - len(still))
            pending = still + pending[_CHUNK:]
            if not still:
                continue  # the whole chunk finished: look further along at once
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise WaitTimeout(
                    f"{len(pending)} of {len(final) + len(pending)} tasks not finished "
                    f"after {timeout_s:g} s (first: {pending[0]})"
                )
            wait_s = poll_s if remaining is None else min(poll_s, remaining)
            backend.wait_change(still, wait_s)
            pace = min(_PACE_MAX_S, _PACE_PER_TASK_S * len(pending))
            if pace > 0.001:
                time.sleep(pace)  # pacing, not synchronisation: see module docstring
    finally:
        bar.close()
    return final
