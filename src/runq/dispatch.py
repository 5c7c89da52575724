"""Batched dispatch (after the Luau parallel Dispatcher): one logical job of ``count`` items.

``ctl.dispatch(fn, count, *extra)`` runs ``fn(i, *extra)`` for ``i in range(count)``, split
into batches of consecutive indices, one task per batch, all queued in one bulk submission.
Results are gathered into one list in index order (``job.results``); an item that raised
leaves its ``TaskError`` at its index and the other items keep their values; a batch that
failed as a whole (its worker died, …) leaves its error at each of its indices.
``callback(results)`` runs once, in a background thread, when every batch has finished.

``ctl.dispatch_detached`` keeps no results at all: each batch returns None (an item that
raised makes its batch ERROR once the batch's other items have run).

``deferred=True`` returns the job at once and submits from a background thread, one per
controller, so the deferred jobs of a controller are queued in the order they were made.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from runq.exceptions import ConfigError, TaskError, WaitTimeout
from runq.models import FINISHED_STATUSES, TaskStatus
from runq.options import TaskOptions, seconds
from runq.serialize import Call

if TYPE_CHECKING:
    from datetime import timedelta

    from runq.controller import Controller

__all__ = ["DispatchJob", "dispatch"]

R = TypeVar("R")

_BATCHES_PER_WORKER = 4  # default: enough batches to even out uneven items
_MAX_BATCH = 10_000  # default batch size cap
_IDLE_S = 2.0  # a deferred-submission thread ends after this long without work


def run_batch(
    fn: Callable[..., Any], start: int, stop: int, extra: tuple[Any, ...], keep: bool
) -> list[Any] | None:
    """Worker side: ``fn(i, *extra)`` for ``i`` in ``range(start, stop)``; with ``keep`` the
    list of results (an item that raised gives its ``TaskError``), else None (the first error
    is raised once every item has run). For an ``async def`` ``fn``: a coroutine, which the
    worker awaits, that runs the batch's items side by side."""
    from runq.worker.runner import task_error

    if _is_async(fn):
        return _run_batch_async(fn, start, stop, extra, keep)  # type: ignore[return-value]
    if not keep:
        first: BaseException | None = None
        for i in range(start, stop):
            try:
                fn(i, *extra)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first
        return None
    out: list[Any] = []
    for i in range(start, stop):
        try:
            out.append(fn(i, *extra))
        except Exception as exc:
            out.append(task_error(exc, skip_frames=1))
    return out


async def _run_batch_async(
    fn: Callable[..., Any], start: int, stop: int, extra: tuple[Any, ...], keep: bool
) -> list[Any] | None:
    """``run_batch`` for an ``async def`` ``fn``: its items run concurrently."""
    from runq.worker.runner import task_error

    values = await asyncio.gather(
        *(fn(i, *extra) for i in range(start, stop)), return_exceptions=True
    )
    errors = [v for v in values if isinstance(v, BaseException)]
    if not keep:
        if errors:
            raise errors[0]
        return None
    return [task_error(v) if isinstance(v, BaseException) else v for v in values]


def _is_async(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is an ``async def`` function (or wraps one)."""
    try:
        return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(inspect.unwrap(fn))
    except ValueError:  # a __wrapped__ cycle
        return False


def default_batch_size(count: int, workers: int) -> int:
    """About ``_BATCHES_PER_WORKER`` batches per active worker, at most ``_MAX_BATCH`` items."""
    per = math.ceil(count / (max(workers, 1) * _BATCHES_PER_WORKER))
    return max(1, min(per, _MAX_BATCH))


class DispatchJob(Generic[R]):
    """One dispatched job: ``wait()``, ``results``, ``status()``, ``batch_ids``."""

    def __init__(
        self,
        controller: Controller,
        count: int,
        bounds: list[tuple[int, int]],
        callback: Callable[[list[R | TaskError]], Any] | None,
        keep: bool,
    ) -> None:
        self._ctl = controller
        self.count = count
        self._bounds = bounds
        self._callback = callback
        self._keep = keep
        self._ids: list[str] = []
        self._submitted = threading.Event()
        self._submit_error: BaseException | None = None
        self._lock = threading.Lock()
        self._results: list[R | TaskError] | None = None
        self._finished = False

    def __repr__(self) -> str:
        return f"<DispatchJob {self.count} items in {len(self._bounds)} batches>"

    @property
    def batch_ids(self) -> list[str]:
        """The task id of each batch, in index order (waits for a deferred submission)."""
        self._wait_submitted(None)
        return list(self._ids)

    def _wait_submitted(self, timeout_s: float | None) -> None:
        if not self._submitted.wait(timeout_s):
            raise WaitTimeout("the dispatch job was not submitted in time")
        if self._submit_error is not None:
            raise self._submit_error

    def status(self) -> TaskStatus:
        """The job's status: PENDING until submitted and while no batch started; RUNNING
        while some batch is unfinished; then COMPLETE if every batch completed, else the
        first failed batch's status (an item error inside a batch still counts as COMPLETE
        for the batch: see ``results``)."""
        if not self._submitted.is_set():
            return TaskStatus.PENDING
        self._wait_submitted(0)
        statuses = self._ctl.status(self._ids)
        if all(s in FINISHED_STATUSES for s in statuses):
            failed = [s for s in statuses if s is not TaskStatus.COMPLETE]
            return failed[0] if failed else TaskStatus.COMPLETE
        queued = (TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.SCHEDULED)
        if all(s in queued for s in statuses):
            return TaskStatus.PENDING
        return TaskStatus.RUNNING

    def wait(self, timeout: float | timedelta | None = None) -> bool:
        """Block until every batch finished (``WaitTimeout`` past ``timeout``), gather the
        results and run the callback (once). True iff no item failed."""
        timeout_s = seconds("timeout", timeout)
        self._wait_submitted(timeout_s)
        all_complete = self._ctl.wait(self._ids, timeout=timeout_s, progress=False)
        self._finish()
        if not self._keep:
            return all_complete
        return not any(isinstance(v, TaskError) for v in self._results or [])

    @property
    def results(self) -> list[R | TaskError]:
        """The ordered buffer: ``count`` values, a ``TaskError`` where an item failed
        (waits for the job if needed). A detached job keeps no results: an error."""
        if not self._keep:
            raise ConfigError("a detached dispatch keeps no results: use ctl.dispatch")
        if self._results is None:
            self.wait()
        assert self._results is not None
        return self._results

    def _finish(self) -> None:
        with self._lock:
            if self._finished:
                return
            if self._keep:
                self._results = self._gather()
            self._finished = True
        if self._callback is not None:
            self._callback(self._results if self._results is not None else [])

    def _gather(self) -> list[R | TaskError]:
        out: list[R | TaskError] = []
        values = self._ctl.results(self._ids)
        for (start, stop), value in zip(self._bounds, values, strict=True):
            if isinstance(value, list) and len(value) == stop - start:
                out.extend(value)
            else:  # the batch failed as a whole
                out.extend([value] * (stop - start))
        return out

    def submit_batches(self, fn: Callable[..., Any], extra: tuple[Any, ...]) -> None:
        """Queue every batch in one bulk submission."""
        try:
            ctl = self._ctl
            fn_bytes = ctl.submitter.function_bytes(run_batch)
            calls = [
                Call("call", fn_bytes, (fn, start, stop, extra, self._keep), {})
                for start, stop in self._bounds
            ]
            self._ids = ctl.submitter.submit(calls, TaskOptions.build(), None)
        except BaseException as exc:
            self._submit_error = exc
            raise
        finally:
            self._submitted.set()
        if self._callback is not None:
            threading.Thread(target=self._wait_quietly, name="runq-dispatch", daemon=True).start()

    def _wait_quietly(self) -> None:
        self.wait()


_Deferred = tuple["DispatchJob[Any]", Callable[..., Any], tuple[Any, ...]]


class _DeferredSubmitter:
    """One background thread per controller submits its deferred jobs, in order; it ends
    after ``_IDLE_S`` without work (the next deferred job starts another)."""

    def __init__(self, ctl: Controller) -> None:
        self._ctl = weakref.ref(ctl)
        self._jobs: queue.SimpleQueue[_Deferred] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="runq-dispatch-submit", daemon=True).start()

    def put(self, job: DispatchJob[Any], fn: Callable[..., Any], extra: tuple[Any, ...]) -> None:
        self._jobs.put((job, fn, extra))

    def _run(self) -> None:
        while True:
            try:
                job, fn, extra = self._jobs.get(timeout=_IDLE_S)
            except queue.Empty:
                with _submitters_lock:
                    if not self._jobs.empty():
                        continue
                    ctl = self._ctl()
                    if ctl is not None and _submitters.get(ctl) is self:
                        del _submitters[ctl]
                    return
            with contextlib.suppress(BaseException):  # kept on the job: its wait() raises it
                job.submit_batches(fn, extra)
            del job, fn, extra


_submitters: weakref.WeakKeyDictionary[Controller, _DeferredSubmitter] = weakref.WeakKeyDictionary()
_submitters_lock = threading.Lock()


def dispatch(
    ctl: Controller,
    fn: Callable[..., R],
    count: int,
    extra: Sequence[Any],
    *,
    callback: Callable[[list[R | TaskError]], Any] | None = None,
    batch_size: int | None = None,
    deferred: bool = False,
    keep: bool = True,
) -> DispatchJob[R]:
    """Make and submit a dispatch job (see the module docstring)."""
    if not callable(fn):
        raise ConfigError(f"fn must be callable, got {fn!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"count must be an int >= 0, got {count!r}")
    if batch_size is None:
        batch_size = default_batch_size(count, len(ctl.backend.workers()))
    elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if callback is not None and not callable(callback):
        raise ConfigError(f"callback must be callable, got {callback!r}")
    bounds = [(s, min(s + batch_size, count)) for s in range(0, count, batch_size)]
    job: DispatchJob[R] = DispatchJob(ctl, count, bounds, callback, keep)
    if deferred:
        with _submitters_lock:
            submitter = _submitters.get(ctl)
            if submitter is None:
                submitter = _submitters[ctl] = _DeferredSubmitter(ctl)
        submitter.put(job, fn, tuple(extra))
    else:
        job.submit_batches(fn, tuple(extra))
    return job
