"""``runq.Executor``: the ``concurrent.futures.Executor`` contract on runq's workers.

- ``submit(fn, /, *args, **kwargs)`` pickles the call and queues it at once (no prefetching: a
  task waits in the backend's queue until a worker is free, so ``cancel()`` and
  ``shutdown(cancel_futures=True)`` really unqueue it) and returns a ``concurrent.futures.Future``
  (a subclass whose ``cancel()`` asks the backend).
- ONE background thread per executor completes the futures: it blocks in
  ``Backend.wait_change`` on the oldest outstanding ids, then reads their statuses and results
  in one batch each. A future is forgotten as soon as it is completed; the executor keeps no
  reference to a task's arguments (they are pickled at submission) nor to its result.
- A task that raised completes its future with the same built-in exception type when there is
  one (``ZeroDivisionError`` …), else with the ``TaskError``; either way the remote traceback
  text is attached as a note and the ``TaskError`` is the ``__cause__``.
- ``map(fn, *iterables, timeout=None, chunksize=1)`` queues everything in one bulk submission;
  with ``chunksize > 1`` each chunk is one task. Results are yielded in order.
- ``Executor("ns", workers=N, url=...)`` opens its own controller and spawns N local workers,
  stopped (and the controller closed) when it shuts down.
"""

from __future__ import annotations

import builtins
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from concurrent.futures._base import PENDING as _FUTURE_PENDING
from typing import TYPE_CHECKING, Any, TypeVar

from runq.exceptions import ConfigError, RunqError, TaskError
from runq.models import FINISHED_STATUSES, TaskStatus
from runq.options import TaskOptions
from runq.serialize import Call

if TYPE_CHECKING:
    from runq.controller import Controller
    from runq.workers import WorkerManager

__all__ = ["Executor"]

T = TypeVar("T")

_WATCH = 2000  # ids watched per wait (the oldest outstanding ones)
_WAIT_S = 0.05  # longest block per wait: newly submitted ids are watched from the next one
_PACE_PER_TASK_S = 5e-6  # pause between checks per watched id …
_PACE_MAX_S = 0.02  # … capped
_RETRY_S = 0.5  # pause after a backend error
_QUEUED = (TaskStatus.PENDING, TaskStatus.DEFERRED)
_log = logging.getLogger("runq.executor")


class _Future(futures.Future[Any]):
    """A ``concurrent.futures.Future`` whose ``cancel()`` unqueues its runq task."""

    def __init__(self, executor: Executor, task_id: str) -> None:
        super().__init__()
        self._runq_executor: Executor | None = executor
        self.task_id = task_id

    def cancel(self) -> bool:
        executor = self._runq_executor
        if executor is None or self.done() or self.running():
            return super().cancel()
        return executor._cancel(self)

    def _cancel_here(self) -> bool:
        """Mark cancelled and notify waiters (the task is already unqueued)."""
        self._runq_executor = None
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()
        return True


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """One ``map`` chunk: ``fn(*args)`` for each tuple of arguments."""
    return [fn(*args) for args in chunk]


def _chunks(items: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _exception_of(error: TaskError) -> BaseException:
    """The exception a future raises for a task that failed remotely."""
    exc: BaseException = error
    kind = getattr(builtins, error.type, None)
    if isinstance(kind, type) and issubclass(kind, Exception) and kind is not TaskError:
        try:
            exc = kind(error.message)
        except Exception:
            exc = error
    if exc is not error:
        exc.__cause__ = error
    if error.traceback:
        exc.add_note(f"remote traceback (runq):\n{error.traceback.rstrip()}")
    return exc


def _result_or_cancel(fut: futures.Future[T], timeout: float | None = None) -> T:
    try:
        try:
            return fut.result(timeout)
        finally:
            fut.cancel()
    finally:
        del fut  # no reference to the result outlives the call


class Executor(futures.Executor):
    """Run calls on runq workers through the standard ``concurrent.futures`` interface.

    ``target``: a ``Controller``, a namespace (a controller is opened on ``url``), or None
    (the default controller). ``workers=N`` spawns N local workers for the executor's
    lifetime. ``max_workers`` is accepted for drop-in compatibility (must be > 0; it is the
    number of workers spawned when ``workers`` is not given and ``target`` is a namespace).
    Other keyword ``options`` (``queue``, ``timeout``, ``retries``, ``separate_process``,
    ``seed`` …) apply to every task it submits.
    """

    def __init__(
        self,
        target: Controller | str | None = None,
        workers: int | None = None,
        *,
        url: str | None = None,
        max_workers: int | None = None,
        **options: Any,
    ) -> None:
        from runq.controller import Controller
        from runq.defaults import get_default_controller

        if max_workers is not None and max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        if workers is not None and (not isinstance(workers, int) or workers < 0):
            raise ConfigError(f"workers must be an int >= 0, got {workers!r}")
        self._opts = TaskOptions.build(**options)
        self._options = options
        self._own_controller = isinstance(target, str)
        if isinstance(target, str):
            self._ctl = Controller(target, url)
            if workers is None:
                workers = max_workers
        elif target is None:
            self._ctl = get_default_controller()
        elif isinstance(target, Controller):
            self._ctl = target
        else:
            raise ConfigError(f"Executor needs a Controller or a namespace, got {target!r}")
        self._manager: WorkerManager | None = None
        if workers:
            try:
                self._manager = self._ctl.workers.spawn(workers, progress=False)
            except BaseException:
                self._close_own()
                raise
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: dict[str, _Future] = {}  # task id -> its future, oldest first
        self._shutdown = False
        self._thread: threading.Thread | None = None

    @property
    def controller(self) -> Controller:
        return self._ctl

    def __repr__(self) -> str:
        return f"runq.Executor({self._ctl.queue_id!r}, {self._ctl.address!r})"

    # ------------------------------------------------------------------ submission
    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> futures.Future[T]:
        """Queue ``fn(*args, **kwargs)`` and return its future."""
        return self._submit_calls(fn, [(args, kwargs)])[0]

    def _submit_calls(
        self, fn: Callable[..., Any], calls: Iterable[tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> list[_Future]:
        """Queue many calls of ``fn`` in one backend round trip."""
        ctl = self._ctl
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            fn_bytes = ctl._pickle_function(fn)
            retry_on = self._opts.retry_on
            sealed = [
                Call("call", fn_bytes, tuple(a), dict(k), retry_on=retry_on) for a, k in calls
            ]
            ids = ctl._submit(ctl._new_tasks(sealed, self._opts, None))
            made = [_Future(self, tid) for tid in ids]
            for fut in made:
                self._pending[fut.task_id] = fut
            self._start()
            self._wake.notify()
        return made

    def map(
        self,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """``fn`` over the zipped ``iterables``, results in order (all queued at once, in one
        round trip; with ``chunksize > 1`` each chunk runs as one task)."""
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        rows = zip(*iterables, strict=False)
        if chunksize == 1:
            fs = self._submit_calls(fn, ((row, {}) for row in rows))
            return self._results(fs, end_time, chunked=False)
        fs = self._submit_calls(_run_chunk, (((fn, c), {}) for c in _chunks(rows, chunksize)))
        return self._results(fs, end_time, chunked=True)

    @staticmethod
    def _results(fs: list[_Future], end_time: float | None, chunked: bool) -> Iterator[Any]:
        def result_iterator() -> Iterator[Any]:
            try:
                fs.reverse()
                while fs:
                    left = None if end_time is None else end_time - time.monotonic()
                    if not chunked:
                        yield _result_or_cancel(fs.pop(), left)
                        continue
                    values: list[Any] = _result_or_cancel(fs.pop(), left)
                    values.reverse()
                    while values:
                        yield values.pop()
            finally:
                for future in fs:
                    future.cancel()

        return result_iterator()

    # ------------------------------------------------------------------ cancel and shutdown
    def _cancel(self, fut: _Future) -> bool:
        with self._lock:
            if fut.done():
                return fut.cancelled()
            before = self._ctl.backend.cancel_queued([fut.task_id])[0]
            unqueued = before in _QUEUED
            if unqueued:
                self._pending.pop(fut.task_id, None)
            elif before is TaskStatus.RUNNING and fut._state == _FUTURE_PENDING:
                fut.set_running_or_notify_cancel()
        # done callbacks run outside the lock: they may submit more work
        return fut._cancel_here() if unqueued else False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submissions; with ``cancel_futures``, unqueue every task not yet started
        (one backend round trip); with ``wait``, block until the others are done. Workers
        this executor spawned are stopped once its tasks are done."""
        cancelled: list[_Future] = []
        with self._lock:
            self._shutdown = True
            if cancel_futures and self._pending:
                ids = list(self._pending)
                before = self._ctl.backend.cancel_queued(ids)
                for tid, status in zip(ids, before, strict=True):
                    if status in _QUEUED:
                        cancelled.append(self._pending.pop(tid))
            thread = self._thread
            self._wake.notify()
        for fut in cancelled:  # done callbacks run outside the lock
            fut._cancel_here()
        del cancelled
        if thread is None:
            self._finish()
        elif wait and thread is not threading.current_thread():  # not from a done callback
            thread.join()

    def _finish(self) -> None:
        """Stop spawned workers and close an own controller (once)."""
        with self._lock:
            manager, self._manager = self._manager, None
        if manager is not None:
            manager.stop(timeout=30)
        self._close_own()

    def _close_own(self) -> None:
        if self._own_controller:
            self._own_controller = False
            self._ctl.close()

    # ------------------------------------------------------------------ completion
    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._complete_loop, name="runq-executor", daemon=True
            )
            self._thread.start()

    def _complete_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._shutdown:
                        self._wake.wait()
                    if not self._pending:
                        break
                    watched = list(itertools.islice(self._pending, _WATCH))
                try:
                    self._ctl.backend.wait_change(watched, _WAIT_S)
                    # with many outstanding, let completions accumulate a little between
                    # checks, so the checks do not steal the CPU from local workers
                    time.sleep(min(_PACE_MAX_S, _PACE_PER_TASK_S * len(watched)))
                    self._complete(watched)
                except RunqError as exc:  # e.g. the backend is briefly unreachable: retry
                    _log.warning("runq executor: %s; retrying", exc)
                    time.sleep(_RETRY_S)
        finally:
            self._finish()

    def _complete(self, ids: list[str]) -> None:
        """Complete the futures of the finished tasks among ``ids`` (one batch of statuses,
        one of results)."""
        backend = self._ctl.backend
        statuses = backend.status(ids)
        done = [(t, s) for t, s in zip(ids, statuses, strict=True) if s in FINISHED_STATUSES]
        with self._lock:
            for tid, status in zip(ids, statuses, strict=True):
                fut = self._pending.get(tid)
                if (
                    status is TaskStatus.RUNNING
                    and fut is not None
                    and fut._state == _FUTURE_PENDING
                ):
                    fut.set_running_or_notify_cancel()
        if not done:
            return
        blobs = backend.results([t for t, _ in done])
        for (tid, status), blob in zip(done, blobs, strict=True):
            with self._lock:
                fut = self._pending.pop(tid, None)
            if fut is None or fut.done():
                continue
            fut._runq_executor = None
            if status is TaskStatus.CANCELLED and fut._cancel_here():
                continue
            try:
                value = self._ctl._outcome(tid, status, blob)
            except Exception as exc:  # a result that cannot be read
                fut.set_exception(exc)
                continue
            if status is not TaskStatus.COMPLETE and isinstance(value, TaskError):
                fut.set_exception(_exception_of(value))
            else:
                fut.set_result(value)
            del value
