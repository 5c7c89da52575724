"""``runq.Executor``: the ``concurrent.futures.Executor`` contract on runq's workers.

- ``submit(fn, /, *args, **kwargs)`` pickles the call and queues it at once (no prefetching: a
  task waits in the backend's queue until a worker is free, so ``cancel()`` and
  ``shutdown(cancel_futures=True)`` really unqueue it) and returns a ``concurrent.futures.Future``
  (a subclass whose ``cancel()`` asks the backend).
- ONE background thread per executor completes the futures: it blocks in
  ``Backend.wait_change`` on the oldest outstanding ids, then reads their statuses and results
  in one batch each. On Redis, while few are outstanding (the backend listens for up to 64
  ids), the wait answers what finished with its status (a whole account since the previous
  wait): then only the ids it cannot account for are read (those submitted or come into view
  since), the finish order is the order announced, and a future completes one round trip
  sooner; at least every ``_FULL_READ_S`` every watched id is read anyway. A future is
  forgotten as soon as it is completed; the executor keeps no reference to a task's arguments
  (they are pickled at submission) nor to its result.
- A task that raised completes its future with the same built-in exception type when there is
  one (``ZeroDivisionError`` …), else with the ``TaskError``; either way the remote traceback
  text is attached as a note and the ``TaskError`` is the ``__cause__``.
- Completions reach their futures in the order the backend recorded them: each check reads
  the statuses of the oldest outstanding ids (up to ``_WATCH``) in one snapshot taken after
  the wait, and completes the finished ones by their finish time. So when a future completes,
  every future among those ids whose task finished earlier is already done
  (``wait(return_when=FIRST_EXCEPTION)`` never returns while an earlier-finished one is still
  "running").
- ``map(fn, *iterables, timeout=None, chunksize=1)`` queues everything in one bulk submission;
  with ``chunksize > 1`` each chunk is one task. Results are yielded in order. A ``timeout``
  (of ``map`` or of ``Future.result``/``exception``) that runs out raises ``WaitTimeout`` (a
  ``TimeoutError``) saying which task and how long.
- ``initializer(*initargs)`` (as ``ProcessPoolExecutor``'s) runs once in each worker process
  before the first task of this executor there: every call is submitted wrapped in a small
  picklable ``initializer.Initialized`` that keeps a per-process registry keyed by a token
  unique to the executor (so with several executors sharing workers, each one's initializer
  runs once per process, and ``separate_process=True`` tasks run it every time). If it raises,
  the task fails
  with ``InitializerFailed``; the executor then breaks as ``BrokenProcessPool`` does: queued
  tasks are unqueued, every outstanding future fails with ``BrokenExecutor`` (a
  ``concurrent.futures.BrokenExecutor``) naming the initializer and its exception, and new
  submissions raise it.
- ``Executor("ns", workers=N, url=...)`` opens its own controller and spawns N local workers,
  stopped (and the controller closed) when it shuts down.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from typing import TYPE_CHECKING, Any, TypeVar

from runq import serialize
from runq.exceptions import ConfigError, RunqError, TaskError
from runq.futures import TaskFuture, exception_of, results_in_order
from runq.initializer import (
    BrokenExecutor,
    Initialized,
    InitializerFailed,
    broken_error,
    check_initializer,
)
from runq.models import FINISHED_STATUSES, TaskStatus
from runq.options import TaskOptions
from runq.serialize import Call
from runq.submission import function_label

if TYPE_CHECKING:
    from runq.controller import Controller
    from runq.workers import WorkerManager

__all__ = ["BrokenExecutor", "Executor", "InitializerFailed"]

T = TypeVar("T")

_WATCH = 2000  # ids watched per wait (the oldest outstanding ones)
_WAIT_S = 0.05  # longest block per wait: newly submitted ids are watched from the next one
_PACE_PER_TASK_S = 5e-6  # pause between checks per watched id …
_PACE_MAX_S = 0.02  # … capped
_RETRY_S = 0.5  # pause after a backend error
#: Longest time between two reads of every watched id's status: a safety net under the waits'
#: accounts (whole since this thread's previous wait; after done callbacks, which run in this
#: thread and may wait for tasks themselves, every id is read anyway).
_FULL_READ_S = 0.5
_QUEUED = (TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.SCHEDULED)
_log = logging.getLogger("runq.executor")


def _run_chunk(fn: Callable[..., Any], chunk: list[tuple[Any, ...]]) -> list[Any]:
    """One ``map`` chunk: ``fn(*args)`` for each tuple of arguments."""
    return [fn(*args) for args in chunk]


def _chunks(items: Iterator[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    while chunk := list(itertools.islice(items, size)):
        yield chunk


def _check_max_workers(max_workers: object) -> None:
    """``max_workers`` as the stdlib's executors take it: None or an int > 0."""
    if max_workers is None:
        return
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise ConfigError(f"max_workers must be an int greater than 0, got {max_workers!r}")
    if max_workers <= 0:
        # ConfigError is a ValueError; the words are the stdlib's (its tests match them)
        raise ConfigError(f"max_workers must be greater than 0, got {max_workers!r}")


class Executor(futures.Executor):
    """Run calls on runq workers through the standard ``concurrent.futures`` interface.

    ``target``: a ``Controller``, a namespace (a controller is opened on ``url``), or None
    (the default controller). ``workers=N`` spawns N local workers for the executor's
    lifetime. ``max_workers`` is accepted for drop-in compatibility (an int > 0, else
    ``ValueError`` as the stdlib's executors; it is the number of workers spawned when
    ``workers`` is not given and ``target`` is a namespace). ``initializer(*initargs)`` runs
    once in each worker process before the first task of this executor there (see the module
    docstring); if it raises, the executor is broken (``BrokenExecutor``). Other keyword
    ``options`` (``queue``, ``timeout``, ``retries``, ``separate_process``, ``seed`` …) apply
    to every task it submits.
    """

    def __init__(
        self,
        target: Controller | str | None = None,
        workers: int | None = None,
        *,
        url: str | None = None,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Iterable[Any] = (),
        **options: Any,
    ) -> None:
        from runq.controller import Controller
        from runq.defaults import get_default_controller

        _check_max_workers(max_workers)
        if workers is not None and (not isinstance(workers, int) or workers < 0):
            raise ConfigError(f"workers must be an int >= 0, got {workers!r}")
        self._opts = TaskOptions.build(**options)
        self._options = options
        self._init = check_initializer(initializer, initargs)
        self._token = uuid.uuid4().hex  # this executor's key in the workers' registries
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
        self._pending: dict[str, TaskFuture] = {}  # task id -> its future, oldest first
        self._shutdown = False
        self._broken: str | None = None  # why the executor is broken (as ProcessPoolExecutor)
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
    ) -> list[TaskFuture]:
        """Queue many calls of ``fn`` in one backend round trip."""
        ctl = self._ctl
        label = function_label(fn) if callable(fn) else None
        if self._init is not None:
            if not callable(fn):
                raise ConfigError(f"fn must be callable, got {serialize.describe(fn)}")
            fn = Initialized(self._token, *self._init, fn)
        with self._lock:
            if self._broken:
                raise BrokenExecutor(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot schedule new futures after shutdown")
            fn_bytes = ctl.submitter.function_bytes(fn)
            retry_on = self._opts.retry_on
            sealed = [
                Call("call", fn_bytes, tuple(a), dict(k), retry_on=retry_on) for a, k in calls
            ]
            ids = ctl.submitter.submit(sealed, self._opts, None, label)
            made = [TaskFuture(self._cancel, tid) for tid in ids]
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
        else:
            fs = self._submit_calls(_run_chunk, (((fn, c), {}) for c in _chunks(rows, chunksize)))
        return results_in_order(fs, timeout, end_time, chunked=chunksize > 1)

    # ------------------------------------------------------------------ cancel and shutdown
    def _cancel(self, fut: TaskFuture) -> bool:
        with self._lock:
            if fut.done():
                return fut.cancelled()
            before = self._ctl.backend.cancel_queued([fut.task_id])[0]
            unqueued = before in _QUEUED
            if unqueued:
                self._pending.pop(fut.task_id, None)
            elif before is TaskStatus.RUNNING and fut.waiting():
                fut.set_running_or_notify_cancel()
        # done callbacks run outside the lock: they may submit more work
        return fut.cancel_here() if unqueued else False

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more submissions; with ``cancel_futures``, unqueue every task not yet started
        (one backend round trip); with ``wait``, block until the others are done. Workers
        this executor spawned are stopped once its tasks are done."""
        cancelled: list[TaskFuture] = []
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
            fut.cancel_here()
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
        unfinished: set[str] = set()  # ids known unfinished when the previous wait returned
        read_at = 0.0  # when every watched id was last read
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._shutdown:
                        self._wake.wait()
                    if not self._pending:
                        break
                    watched = self._oldest()
                try:
                    heard = self._ctl.backend.wait_change(watched, _WAIT_S)
                    # with many outstanding, let completions accumulate a little between
                    # checks, so the checks do not steal the CPU from local workers
                    time.sleep(min(_PACE_MAX_S, _PACE_PER_TASK_S * len(watched)))
                    if not heard or time.monotonic() - read_at > _FULL_READ_S:
                        heard, read_at = {}, time.monotonic()  # every watched id is read
                    unfinished = self._complete(watched, heard, unfinished)
                except RunqError as exc:  # e.g. the backend is briefly unreachable: retry
                    _log.warning("runq executor: %s; retrying", exc)
                    unfinished = set()
                    time.sleep(_RETRY_S)
        finally:
            self._finish()

    def _oldest(self) -> list[str]:
        """The ids of the oldest outstanding futures, up to ``_WATCH`` (caller holds the lock)."""
        return list(itertools.islice(self._pending, _WATCH))

    def _complete(
        self, watched: list[str], heard: dict[str, TaskStatus], unfinished: set[str]
    ) -> set[str]:
        """Complete the futures of the finished tasks among the oldest outstanding ones, in
        the order the backend recorded them (one snapshot of statuses, one batch of results);
        answers the ids among them known unfinished as of the wait's return.

        ``heard``: the wait's answer for ``watched`` (nothing, or a whole account since the
        previous wait, in finish order); ``unfinished``: the ids known unfinished when the
        previous wait returned. An id of both that was not heard is still unfinished; every
        other id is read. The ids are taken now, not before the wait, so a task submitted
        during the wait that already finished is in the same snapshot as every other one."""
        backend = self._ctl.backend
        with self._lock:
            ids = self._oldest()
        if heard:
            seen = unfinished.intersection(watched)
            unread = [t for t in ids if t not in heard and t not in seen]
        else:
            unread = ids
        statuses = backend.status(unread) if unread else []
        read = [(t, s) for t, s in zip(unread, statuses, strict=True) if s in FINISHED_STATUSES]
        with self._lock:
            done = [(t, s) for t, s in heard.items() if t in self._pending] + read
            for tid, status in zip(unread, statuses, strict=True):
                fut = self._pending.get(tid)
                if status is TaskStatus.RUNNING and fut is not None and fut.waiting():
                    fut.set_running_or_notify_cancel()
        finished = {t for t, _ in done}
        still = {t for t in ids if t not in finished}
        if not done:
            return still
        if read:  # in the order announced already, unless some were read
            done = self._in_finish_order(done)
        blobs = backend.results([t for t, _ in done])
        for (tid, status), blob in zip(done, blobs, strict=True):
            with self._lock:
                fut = self._pending.pop(tid, None)
            if fut is None or fut.done():
                continue
            if fut.has_callbacks:  # it may wait for tasks in this thread: the next wait's
                still = set()  # account starts after that wait, so read every id next time
            fut.unqueue = None
            if status is TaskStatus.CANCELLED and fut.cancel_here():
                continue
            try:
                value = self._ctl.submitter.outcome(tid, status, blob)
            except Exception as exc:  # a result that cannot be read
                fut.set_exception(exc)
                continue
            if status is not TaskStatus.COMPLETE and isinstance(value, TaskError):
                if value.type == InitializerFailed.__name__:
                    self._break(fut, value)
                    return still  # every other outstanding future failed with it
                fut.set_exception(exception_of(value))
            else:
                fut.set_result(value)
            del value
        return still

    def _in_finish_order(self, done: list[tuple[str, TaskStatus]]) -> list[tuple[str, TaskStatus]]:
        """``done`` sorted by the time the backend recorded each task as finished (ties, and
        tasks without one, keep their submission order): one more round trip, only when
        several finished at once."""
        if len(done) < 2:
            return done
        times = self._ctl.backend.times([t for t, _ in done])
        order = sorted(
            range(len(done)),
            key=lambda i: (times[i].finished is None, times[i].finished or 0.0, i),
        )
        return [done[i] for i in order]

    def _break(self, first: TaskFuture, error: TaskError) -> None:
        """The initializer failed in a worker: fail ``first`` and every outstanding future
        with ``BrokenExecutor``, refuse new submissions, and unqueue what has not started
        (tasks already running finish on their own; their results are dropped)."""
        message = f"runq.Executor is broken: {error.message}"
        with self._lock:
            self._broken = message
            outstanding = [first, *self._pending.values()]
            self._pending.clear()
            self._wake.notify()
        _log.error("%s\n%s", message, error.traceback.rstrip())
        try:  # before the futures fail: whoever sees BrokenExecutor sees them unqueued
            self._ctl.backend.cancel_queued([f.task_id for f in outstanding])
        except RunqError as exc:  # they stay queued; each fails the same way if it runs
            _log.warning("runq executor: could not unqueue the broken executor's tasks: %s", exc)
        for fut in outstanding:  # done callbacks run outside the lock
            fut.unqueue = None
            if not fut.done():
                fut.set_exception(broken_error(message, error))
