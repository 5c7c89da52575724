"""What a running task can know about itself: ``current_task()``, ``progress_update()``,
``task_rng()``. Outside a worker these answer None (or raise, for ``progress_update``)."""

from __future__ import annotations

import random
import sys
import threading
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


_state = threading.local()


def set_current(task: CurrentTask | None) -> None:
    """Set (or clear) the task the calling thread is running. Used by the worker's runner."""
    _state.task = task
    _state.rng = None


def current_task() -> CurrentTask | None:
    """The task this code runs in (id, worker id, attempt), or None outside a worker."""
    task: CurrentTask | None = getattr(_state, "task", None)
    return task


def task_rng() -> random.Random | None:
    """The running task's ``random.Random`` (seeded when the task has a seed), or None
    outside a task. Made on first use: most tasks never ask for one."""
    task = current_task()
    if task is None:
        return None
    rng: random.Random | None = getattr(_state, "rng", None)
    if rng is None:
        rng = _state.rng = random.Random(task.seed)
    return rng


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
