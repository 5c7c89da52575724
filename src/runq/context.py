"""What a running task can know about itself: ``current_task()``, ``progress_update()``,
``task_rng()``. Outside a worker these answer None (or raise, for ``progress_update``)."""

from __future__ import annotations

import contextvars
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CurrentTask", "current_task", "progress_update", "task_rng"]


@dataclass(frozen=True, slots=True)
class CurrentTask:
    """The task a worker is running: ``id``, ``worker_id`` and ``attempt`` (1 for the first)."""

    id: str
    worker_id: str
    attempt: int
    seed: int | None = field(default=None, repr=False, compare=False)
    post_progress: Callable[[Any], None] | None = field(default=None, repr=False, compare=False)

    @property
    def uuid(self) -> str:
        """The task id (dispatcherd's name for it)."""
        return self.id

    def progress(self, value: Any) -> None:
        """Post a progress value for the controller's ``ctl.progress(tid)``."""
        progress_update(value)


#: The running task and its lazily made ``random.Random`` (a list: empty until asked for).
#: A context variable, not a thread local: the async tasks of one event loop each see their
#: own (every asyncio task runs in a copy of the context), and ``asyncio.to_thread`` carries it.
_current: contextvars.ContextVar[tuple[CurrentTask, list[random.Random]] | None] = (
    contextvars.ContextVar("runq_current_task", default=None)
)


def set_current(task: CurrentTask | None) -> None:
    """Set (or clear) the task the calling context runs. Used by the worker's runner."""
    _current.set(None if task is None else (task, []))


def current_task() -> CurrentTask | None:
    """The task this code runs in (id, worker id, attempt), or None outside a worker."""
    state = _current.get()
    return None if state is None else state[0]


def task_rng() -> random.Random | None:
    """The running task's ``random.Random`` (seeded when the task has a seed), or None
    outside a task. Made on first use: most tasks never ask for one."""
    state = _current.get()
    if state is None:
        return None
    task, rngs = state
    if not rngs:
        rngs.append(random.Random(task.seed))
    return rngs[0]


def seed_globals(seed: int) -> None:
    """Seed ``random`` (and ``numpy.random``, if numpy is installed) for a seeded task."""
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is None and not _NO_NUMPY:
        try:
            import numpy
        except ImportError:
            _NO_NUMPY.append(True)
    if numpy is not None:
        numpy.random.seed(seed & 0xFFFFFFFF)


_NO_NUMPY: list[bool] = []  # non-empty once numpy was found missing


def progress_update(value: Any) -> None:
    """Post ``value`` as the running task's progress (read with ``ctl.progress(tid)``)."""
    task = current_task()
    if task is None or task.post_progress is None:
        raise RuntimeError("runq.progress_update() can only be called inside a running task")
    task.post_progress(value)
