"""The runner: turn a claimed task's payload into an outcome (in the worker's warm child).

It never lets a task's failure escape: an exception (``SystemExit`` and ``KeyboardInterrupt``
included), a bad or unsigned payload, a task id that is not runq's, or a result that cannot be
pickled all become an ERROR outcome carrying a ``TaskError`` (type, message, traceback text).

``prepare`` checks and opens the payload (its signature is bound to the task id) before
anything of the task runs or any file is opened for it; ``execute`` runs the call, between the
worker's ``before_task`` and ``after_task`` hooks (``hooks.py``). A ``runq.Retry`` raised by
the task, or an exception of its ``retry_on`` (``Exception`` there means any exception), makes
a retry outcome (``Outcome.retry``; ``delay``: the wait ``Retry`` asked for). Backend
calls made for the task's large values go through ``retrying``, which the child sets to retry
while the backend is unreachable, so an outage never turns into a task's ERROR.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from runq import context
from runq._blobs import BlobStore, Packed
from runq.exceptions import PayloadError, PayloadRejected, Retry, TaskError
from runq.models import ClaimedTask, TaskStatus
from runq.options import RESULTS_AS, RESULTS_FROM, is_task_id
from runq.serialize import Call, Codec, Kind, dumps, loads
from runq.worker.hooks import HookFailed, Hooks
from runq.worker.retrying import Retrying

__all__ = ["Outcome", "Runner", "task_error"]

T = TypeVar("T")

_FN_CACHE_SIZE = 256
#: ``dumps(None)``, the result of most tasks, pickled once.
_PICKLED_NONE = dumps(None)
#: Types whose values are never awaitable (exact types: a subclass may be).
_NEVER_AWAITABLE = frozenset(
    {type(None), bool, int, float, complex, str, bytes, bytearray, tuple, list, dict, set}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running a task gave: its final status and the sealed result (or TaskError)."""

    status: TaskStatus
    result: bytes
    retry: bool = False  # the task raised runq.Retry or one of its ``retry_on`` types
    delay: float | None = None  # the wait runq.Retry asked for (None: the back-off schedule)


def task_error(exc: BaseException, skip_frames: int = 0) -> TaskError:
    """The ``TaskError`` value describing ``exc``, its traceback without the first
    ``skip_frames`` frames (the runner's own)."""
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return TaskError(type(exc).__name__, str(exc), text)


class Runner:
    """Runs tasks in the worker's own process, caching unpickled functions."""

    def __init__(
        self,
        codec: Codec,
        worker_id: str,
        envir: dict[str, Any],
        blobs: BlobStore | None = None,
    ) -> None:
        self.codec = codec
        self.worker_id = worker_id
        self.envir = envir  # the worker environment (workers.envir_set), seen by expressions
        self.blobs = blobs  # the object store, for large arguments and results
        self._functions: OrderedDict[bytes, Callable[..., Any]] = OrderedDict()
        #: Stores a task's progress value (task id, value); set where a backend is at hand.
        self.post_progress: Callable[[str, Any], None] | None = None
        #: Runs a backend operation, retrying while the backend is unreachable.
        self.retrying: Retrying = _call
        #: The worker's hooks (``WorkerConfig.hooks``), called around each task.
        self.hooks = Hooks()
        #: The stored outcomes of tasks (``Backend.results`` after ``resolve``), for tasks
        #: that take their dependencies' results (chains, chords); set where a backend is.
        self.fetch_results: Callable[[list[str]], list[tuple[str, bytes | None]]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # for async tasks run one at a time

    def run(self, task: ClaimedTask) -> Outcome:
        """``prepare`` then ``execute`` (never raises)."""
        prepared = self.prepare(task)
        return prepared if isinstance(prepared, Outcome) else self.execute(task, prepared)

    def prepare(self, task: ClaimedTask) -> Call | Outcome:
        """The task's verified call, or the ERROR outcome of a payload that cannot be used."""
        try:
            if not is_task_id(task.id):
                raise PayloadRejected(f"task id {task.id!r} is not a runq task id: refused")
            call = self.codec.loads(task.payload, Kind.CALL, task.id, f"task {task.id} payload")
            if isinstance(call, Packed) and self.blobs is not None:
                blobs = self.blobs
                call = self.retrying(lambda: blobs.unpack(call, f"task {task.id} payload"))
            if not isinstance(call, Call):
                raise PayloadError(f"task {task.id} payload is not a runq call")
            if task.options.get(RESULTS_FROM) is not None:
                call = self._with_results(task, call)
        except Exception as exc:
            return self._error(task.id, exc)
        return call

    def _with_results(self, task: ClaimedTask, call: Call) -> Call:
        """``call`` with its dependencies' results as first argument (a chain's previous
        result, or a chord's list of header results), read from the backend now."""
        ids = [str(i) for i in task.options[RESULTS_FROM]]
        fetch = self.fetch_results
        if fetch is None:
            raise PayloadError(f"task {task.id} takes results but the worker has no backend")
        values = []
        for dep, blob in self.retrying(lambda: fetch(ids)) if ids else []:
            if blob is None:
                raise PayloadError(f"task {task.id}: the result of task {dep} is not stored")
            what = f"result of task {dep}"
            value = self._unpacked(self.codec.loads(blob, Kind.RESULT, dep, what), what)
            if isinstance(value, TaskError):
                raise PayloadError(f"task {task.id}: task {dep} did not complete: {value}")
            values.append(value)
        first = values if task.options.get(RESULTS_AS) == "list" else values[0]
        return dataclasses.replace(call, args=(first, *call.args))

    def _unpacked(self, value: Any, what: str) -> Any:
        """``value``, fetched from the object store if it was stored there."""
        if isinstance(value, Packed) and self.blobs is not None:
            store = self.blobs
            return self.retrying(lambda: store.unpack(value, what))
        return value

    def _context(self, task: ClaimedTask) -> context.CurrentTask:
        """The running task's context (``runq.current_task()``); seeds the globals."""
        seed = task.options.get("seed")
        if seed is not None:
            context.seed_globals(seed)
        post = self.post_progress
        return context.CurrentTask(
            task.id,
            self.worker_id,
            task.attempt,
            seed,
            post_progress=None if post is None else functools.partial(post, task.id),
        )

    def execute(self, task: ClaimedTask, call: Call) -> Outcome:
        """Run a prepared call and return its outcome (never raises). An ``async def`` task
        runs to its end on this runner's event loop (kept across tasks)."""
        ctx = self._context(task)
        context.set_current(ctx)
        try:
            outcome, value = self._attempt(task, call, ctx)
            if self.hooks.around_tasks:
                self.hooks.after_task(ctx, outcome.status, value)
            return outcome
        finally:
            context.set_current(None)

    def _attempt(
        self, task: ClaimedTask, call: Call, ctx: context.CurrentTask
    ) -> tuple[Outcome, Any]:
        """The outcome, and the value or exception the task ended with."""
        try:
            if self.hooks.around_tasks:
                self.hooks.before_task(ctx)
            value = self._invoke(call)
            # An async def task, or one returning a coroutine (a plain builtin value skips
            # the checks, one of them an ABC's isinstance)
            if type(value) not in _NEVER_AWAITABLE and inspect.isawaitable(value):
                value = self._event_loop().run_until_complete(_awaited(value))
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: a task never kills
            return self.failed(task, call, exc), exc
        return self._completed(task, value)

    def _completed(self, task: ClaimedTask, value: Any) -> tuple[Outcome, Any]:
        try:
            return Outcome(TaskStatus.COMPLETE, self._seal_result(task.id, value)), value
        except Exception as exc:
            return self._error(task.id, exc), exc

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    async def execute_async(
        self, task: ClaimedTask, call: Call, stopped: Callable[[], Outcome]
    ) -> Outcome:
        """Run a prepared call on the running event loop, beside other tasks, and return its
        outcome (never raises). A coroutine function is awaited here; anything else runs
        in a thread (``asyncio.to_thread``) so that it cannot block the loop. Cancelled (the
        worker asked for a cancel or a timeout), the outcome is ``stopped()``."""
        ctx = self._context(task)
        context.set_current(ctx)  # this asyncio task's own context
        value: Any
        try:
            if self.hooks.around_tasks:
                self.hooks.before_task(ctx)
            if call.kind == "call" and _is_async(self._function(_fn_bytes(call))):
                value = await self._invoke(call)
            else:
                value = await asyncio.to_thread(self._invoke, call)
                if inspect.isawaitable(value):
                    value = await value
        except asyncio.CancelledError as exc:
            outcome, value = stopped(), exc
        except BaseException as exc:  # a task never kills the worker
            outcome, value = self.failed(task, call, exc), exc
        else:
            outcome, value = self._completed(task, value)
        if self.hooks.around_tasks:
            self.hooks.after_task(ctx, outcome.status, value)
        return outcome

    def failed(self, task: ClaimedTask, call: Call, exc: BaseException) -> Outcome:
        """The outcome of a task that raised ``exc`` (a retry outcome when it asked for one
        or ``exc`` is of its ``retry_on``)."""
        if isinstance(exc, HookFailed):
            text = "".join(traceback.format_exception(exc))
            return self._sealed_error(task.id, TaskError("HookError", str(exc), text))
        if isinstance(exc, Retry):
            retries = int(task.options.get("retries") or 0)
            if task.attempt > retries:
                message = (
                    f"{exc}, but it has no retries left (retries={retries}, this was attempt "
                    f"{task.attempt}): give the task retries=N for runq.Retry to run it again"
                )
                return self._sealed_error(task.id, TaskError("Retry", message, ""))
            outcome = self._sealed_error(task.id, TaskError("Retry", str(exc), ""))
            return Outcome(outcome.status, outcome.result, retry=True, delay=exc.delay)
        outcome = self._error(task.id, exc, skip_frames=2)  # _attempt(), _invoke()
        retry_on = call.retry_on
        if retry_on and (Exception in retry_on or isinstance(exc, retry_on)):
            return Outcome(outcome.status, outcome.result, retry=True)
        return outcome

    def _seal_result(self, task_id: str, value: Any) -> bytes:
        """The sealed result; a large one goes to the object store, tagged with the task id
        (one more round trip, for large results only)."""
        data = _PICKLED_NONE if value is None else dumps(value, "the task's result")
        if self.blobs is not None and not self.blobs.inline(len(data)):  # as pack_value's test
            blobs = self.blobs
            packed = self.retrying(lambda: blobs.pack_value(task_id, data, "the task's result"))
            data = packed or data
        return self.codec.seal(data, Kind.RESULT, task_id)

    def _invoke(self, call: Call) -> Any:
        if call.kind == "expr":
            assert call.expr is not None
            scope = dict(self.envir)
            return eval(call.expr, scope, dict(call.env or {}))
        assert call.fn_bytes is not None
        return self._function(call.fn_bytes)(*call.args, **call.kwargs)

    def _function(self, fn_bytes: bytes) -> Callable[..., Any]:
        fn = self._functions.get(fn_bytes)
        if fn is None:
            fn = loads(fn_bytes, "the task's function")
            self._functions[fn_bytes] = fn
            if len(self._functions) > _FN_CACHE_SIZE:
                self._functions.popitem(last=False)
        return fn

    def _error(self, task_id: str, exc: BaseException, skip_frames: int = 0) -> Outcome:
        return self._sealed_error(task_id, task_error(exc, skip_frames))

    def _sealed_error(self, task_id: str, error: TaskError) -> Outcome:
        return Outcome(
            TaskStatus.ERROR, self.codec.dumps(error, Kind.RESULT, task_id, "the task's error")
        )


def _call(op: Callable[[], T]) -> T:
    return op()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _fn_bytes(call: Call) -> bytes:
    assert call.fn_bytes is not None
    return call.fn_bytes


def _is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` gives a coroutine to await (an ``async def`` function, or a
    wrapper of one: ``functools.partial``, ``@runq.task``)."""
    if inspect.iscoroutinefunction(fn):
        return True
    try:
        return inspect.iscoroutinefunction(inspect.unwrap(fn))
    except ValueError:  # a __wrapped__ cycle
        return False
