"""The controller: submit tasks, inspect them, wait for them and collect their results.

Its sub-APIs are ``ctl.queues`` (``queues.QueuesAPI``), ``ctl.workers``
(``workers.WorkersAPI``) and ``ctl.store`` (``store.StoreAPI``). Methods taking ``ids`` accept
one id (answering a scalar) or a sequence (answering a list); each costs a bounded number of
backend round trips.
"""

from __future__ import annotations

import hashlib
import ipaddress
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from runq import serialize
from runq import settings as _settings
from runq._blobs import BlobStore, Packed
from runq.backends import Backend, connect
from runq.exceptions import (
    ConfigError,
    SerializationError,
    TaskError,
    TaskStateError,
    UnknownTaskError,
)
from runq.messages import MessagesAPI
from runq.models import (
    FINISHED_STATUSES,
    NewTask,
    TaskInfo,
    TaskStatus,
    TaskTimes,
)
from runq.options import (
    TaskOptions,
    as_id_list,
    call_arguments,
    keyword_arguments,
    new_task_id,
    seconds,
)
from runq.queues import QueuesAPI
from runq.serialize import Call, Codec, Kind
from runq.settings import PasswordSource, SecretSource
from runq.store import StoreAPI
from runq.waiting import wait_finished
from runq.workers import WorkersAPI

if TYPE_CHECKING:
    from runq.dispatch import DispatchJob

__all__ = ["Controller", "dedup_key", "derive_seed"]

T = TypeVar("T")
R = TypeVar("R")
Ids = str | Sequence[str]


def _scalar_or_list(ids: Ids, values: list[T]) -> T | list[T]:
    return values[0] if isinstance(ids, str) else values


class Controller:
    """Submits and inspects the tasks of one namespace (``queue_id``).

    ``url`` picks the backend (``sqlite:///file.db``, ``redis://host:port/db``, …); without
    one, ``$RUNQ_URL`` or the embedded default ``sqlite:///.runq/runq.db``.
    ``timeout_task_wait`` is the default timeout of ``wait``; ``follow`` whether ids of
    retried tasks resolve to their newest retry; ``secret`` (else ``$RUNQ_SECRET``) signs
    every stored value (HMAC-SHA256, bound to its namespace, task and kind); ``seed`` makes
    seeded tasks' randomness reproducible. ``password`` (Redis: a value, or a callable asked
    at each new connection) is used instead of one in the URL or ``RUNQ_REDIS_PASSWORD``;
    spawned workers get it in that variable. See ``runq.settings`` for the resolution order.
    ``create=False`` opens only a namespace that exists (``runq.namespaces``): else it writes
    nothing and raises ``UnknownNamespaceError``.
    """

    def __init__(
        self,
        queue_id: str,
        url: str | None = None,
        *,
        timeout_task_wait: float | timedelta | None = None,
        follow: bool = True,
        check_version: bool = True,
        secret: SecretSource = None,
        seed: int | None = None,
        password: PasswordSource = None,
        create: bool = True,
    ) -> None:
        self.queue_id = queue_id
        self.settings = _settings.resolve(url, secret, password)
        self.backend: Backend = connect(
            self.settings.url,
            queue_id,
            check_version=check_version,
            password=self.settings.password,
            create=create,
        )
        self.timeout_task_wait = seconds("timeout_task_wait", timeout_task_wait)
        self.follow = follow
        self.seed = seed
        self._seed_index = 0  # submission index of the next seeded task
        self._seed_lock = threading.Lock()
        self.codec = Codec(self.settings.secret, queue_id)
        if not self.codec.signed:
            _warn_if_remote(self.settings.url)
        self._blobs = BlobStore(self.backend)
        self.queues = QueuesAPI(self)
        self.workers = WorkersAPI(self)
        self.store = StoreAPI(self)
        self.messages = MessagesAPI(self)

    @property
    def url(self) -> str:
        """The backend URL (with credentials; never printed — see ``address``)."""
        return self.settings.url

    @property
    def address(self) -> str:
        """The backend's address for display, without any password."""
        return self.backend.address

    def __repr__(self) -> str:
        return f"Controller({self.queue_id!r}, {self.address!r})"

    def close(self) -> None:
        """Release the backend connections."""
        self.backend.close()

    def __enter__(self) -> Controller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ submission
    def enqueue(
        self,
        fn: Callable[..., Any],
        /,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        depends_on: Ids | None = None,
        **options: Any,
    ) -> str:
        """Queue ``fn(*args, **kwargs)`` and return its task id (32 hex characters).

        Options: ``queue``, ``depends_on``, ``separate_process``, ``timeout``, ``retries``,
        ``retry_on``, ``retry_backoff``, ``name``, ``on_duplicate``, ``seed``. An argument or
        function that cannot be pickled is a ``SerializationError`` naming it; nothing is
        queued then. Unknown ``depends_on`` ids are an ``UnknownTaskError``.
        """
        opts = TaskOptions.build(**options)
        call_args, call_kwargs = call_arguments(args, kwargs)
        fn_bytes = self._pickle_function(fn)
        call = Call("call", fn_bytes, call_args, call_kwargs, retry_on=opts.retry_on)
        return self._submit([self._new_task(call, opts, depends_on)])[0]

    def enqueue_expr(
        self,
        expr: str,
        env: Mapping[str, Any] | None = None,
        *,
        depends_on: Ids | None = None,
        **options: Any,
    ) -> str:
        """Queue a Python expression. It sees ``env``, then the worker environment
        (``workers.envir_set``), then builtins."""
        opts = TaskOptions.build(**options)
        call = Call(
            "expr",
            None,
            (),
            {},
            expr=_check_expr(expr),
            env=keyword_arguments(env, "env"),
            retry_on=opts.retry_on,
        )
        return self._submit([self._new_task(call, opts, depends_on)])[0]

    def enqueue_bulk(
        self,
        fn: Callable[..., Any],
        /,
        data: Iterable[Any],
        args: Mapping[str, Any] | None = None,
        *,
        depends_on: Ids | None = None,
        **options: Any,
    ) -> list[str]:
        """Queue one task per element of ``data`` and return their ids in ``data``'s order:
        ``fn(x, **args)`` for each item, or ``fn(**row, **args)`` when ``data`` is a list of
        dicts or a pandas DataFrame. The whole batch is queued atomically."""
        opts = TaskOptions.build(**options)
        common = keyword_arguments(args, "args (the keyword arguments every call gets)")
        fn_bytes = self._pickle_function(fn)
        calls = [
            Call("call", fn_bytes, (), {**row, **common}, retry_on=opts.retry_on)
            if as_kwargs
            else Call("call", fn_bytes, (row,), common, retry_on=opts.retry_on)
            for row, as_kwargs in _rows(data)
        ]
        return self._submit(self._new_tasks(calls, opts, depends_on))

    def enqueue_bulk_expr(
        self,
        expr: str,
        data: Iterable[Any],
        env: Mapping[str, Any] | None = None,
        *,
        depends_on: Ids | None = None,
        **options: Any,
    ) -> list[str]:
        """Queue one expression task per row of ``data`` (a list of dicts or a DataFrame):
        each row's names are added to ``env``."""
        opts = TaskOptions.build(**options)
        expr = _check_expr(expr)
        base = keyword_arguments(env, "env")
        calls = []
        for row, as_kwargs in _rows(data):
            if not as_kwargs:
                raise ConfigError(
                    "enqueue_bulk_expr needs rows of names: a list of dicts or a DataFrame, "
                    f"got an item {serialize.describe(row)}"
                )
            calls.append(
                Call("expr", None, (), {}, expr=expr, env={**base, **row}, retry_on=opts.retry_on)
            )
        return self._submit(self._new_tasks(calls, opts, depends_on))

    def _pickle_function(self, fn: Callable[..., Any]) -> bytes:
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {serialize.describe(fn)}")
        return serialize.dumps(fn, f"the function {getattr(fn, '__qualname__', fn)!r}")

    def _new_task(self, call: Call, opts: TaskOptions, depends_on: Ids | None) -> NewTask:
        return self._new_tasks([call], opts, depends_on)[0]

    def _new_tasks(
        self, calls: Iterable[Call], opts: TaskOptions, depends_on: Ids | None
    ) -> list[NewTask]:
        """Seal each call; the tasks share one options dict (a backend encodes it once).
        Large values go to the object store, each stored once per batch (``_blobs``)."""
        deps = tuple(as_id_list(depends_on, "depends_on"))
        options = opts.to_json()
        dedup = opts.on_duplicate != "parallel"
        if dedup and deps:
            raise ConfigError(
                f"on_duplicate={opts.on_duplicate!r} cannot be combined with depends_on: "
                "a duplicate policy already decides when the task is queued"
            )
        seeded = self.seed is not None or opts.seed is not None
        tasks = []
        memo: dict[int, Any] = {}
        for call in calls:
            try:
                data, blobs = self._blobs.pack_call(call, memo)
            except SerializationError as exc:
                culprit = serialize.find_unpicklable(call.args, {**(call.env or {}), **call.kwargs})
                raise SerializationError(f"cannot pickle {culprit}") from exc
            task_id = new_task_id()
            payload = self.codec.seal(data, Kind.CALL, task_id)
            key = dedup_key(opts.name, call) if dedup else None
            task_options = {**options, "seed": self._task_seed(opts.seed)} if seeded else options
            tasks.append(
                NewTask(
                    task_id,
                    opts.queue,
                    payload,
                    task_options,
                    deps,
                    blobs=blobs,
                    dedup_key=key,
                )
            )
        return tasks

    def _task_seed(self, seed: int | None) -> int:
        """The seed stored with a task: from (namespace seed, the task's ``seed`` or else its
        submission index on this controller), so it never depends on worker or timing."""
        with self._seed_lock:
            index = self._seed_index
            self._seed_index += 1
        return derive_seed(self.seed, seed, index)

    def _submit(self, tasks: list[NewTask]) -> list[str]:
        if tasks:
            self.backend.enqueue(tasks)
        return [t.id for t in tasks]

    # ------------------------------------------------------------------ batched dispatch
    def dispatch(
        self,
        fn: Callable[..., R],
        count: int,
        /,
        *extra: Any,
        callback: Callable[[list[R | TaskError]], Any] | None = None,
        batch_size: int | None = None,
        deferred: bool = False,
    ) -> DispatchJob[R]:
        """Run ``fn(i, *extra)`` for ``i in range(count)`` in batches (one task each); see
        ``runq.dispatch``. ``job.results`` is the ordered buffer; ``callback(results)`` runs
        once when all finished; ``deferred=True`` submits in the background."""
        from runq.dispatch import dispatch

        return dispatch(
            self, fn, count, extra, callback=callback, batch_size=batch_size, deferred=deferred
        )

    def dispatch_detached(
        self,
        fn: Callable[..., Any],
        count: int,
        /,
        *extra: Any,
        batch_size: int | None = None,
        deferred: bool = False,
    ) -> DispatchJob[Any]:
        """As ``dispatch``, keeping no results at all (lowest overhead)."""
        from runq.dispatch import dispatch

        return dispatch(
            self, fn, count, extra, batch_size=batch_size, deferred=deferred, keep=False
        )

    # ------------------------------------------------------------------ inspection
    @overload
    def status(self, ids: str, follow: bool | None = None) -> TaskStatus: ...  # type: ignore[overload-overlap]
    @overload
    def status(self, ids: Sequence[str], follow: bool | None = None) -> list[TaskStatus]: ...
    def status(self, ids: Ids, follow: bool | None = None) -> TaskStatus | list[TaskStatus]:
        """Each task's ``TaskStatus`` (MISSING for an unknown id). With ``follow`` (default:
        the controller's), a retried (MOVED) id answers for its newest retry."""
        id_list = as_id_list(ids)
        return _scalar_or_list(ids, self._statuses(id_list, follow)[1])

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
        return _scalar_or_list(ids, found)

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
        """The results of many tasks, in order (see ``result``); one backend round trip for
        the statuses and one for the values."""
        id_list, statuses = self._statuses(as_id_list(ids), follow)
        return self._collect(id_list, statuses, error)

    def _collect(self, id_list: list[str], statuses: list[TaskStatus], error: bool) -> list[Any]:
        """The outcomes of tasks whose statuses are known (one round trip for the values)."""
        for tid, status in zip(id_list, statuses, strict=True):
            if status is TaskStatus.MISSING:
                raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
            if status not in FINISHED_STATUSES:
                raise TaskStateError(
                    f"task {tid} is {status}, not finished: wait() for it or pass a timeout"
                )
        blobs = self.backend.results(id_list)
        out = [self._outcome(t, s, b) for t, s, b in zip(id_list, statuses, blobs, strict=True)]
        if error:
            for value in out:
                if isinstance(value, TaskError):
                    raise value
        return out

    def _outcome(self, tid: str, status: TaskStatus, blob: bytes | None) -> Any:
        if blob is not None:
            value = self.codec.loads(blob, Kind.RESULT, tid, f"result of task {tid}")
            if isinstance(value, Packed):
                value = self._blobs.unpack(value, f"result of task {tid}")
            if status is TaskStatus.COMPLETE or isinstance(value, TaskError):
                return value
        if status is TaskStatus.COMPLETE:
            raise TaskStateError(f"task {tid} is COMPLETE but its result is missing")
        return TaskError(str(status), _STATUS_MESSAGES.get(status, f"task {tid} is {status}"))

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
            options=record.options,
            depends_on=record.depends_on,
            dependants=record.dependants,
            moved_from=chain.ids[at - 1] if at > 0 else None,
            moved_to=chain.ids[at + 1] if at + 1 < len(chain.ids) else None,
            chain=chain.ids,
            times=record.times,
            attempts=record.attempt,
            extra={} if chain.retry_at is None else {"retry_at": chain.retry_at},
        )

    def progress(self, tid: str) -> Any:
        """The last value the task posted with ``runq.progress_update(value)`` (or a bound
        task's ``ctx.progress(value)``); None before it posted any."""
        blob = self.backend.progress_get(tid)
        if blob is None:
            return None
        return self.codec.loads(blob, Kind.PROGRESS, tid, f"progress of task {tid}")

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
        blob = self.backend.payload(tid)
        if blob is None:
            raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
        call: Call = self.codec.loads(blob, Kind.CALL, tid, f"payload of task {tid}")
        if isinstance(call, Packed):
            call = self._blobs.unpack(call, f"payload of task {tid}")
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
        return _scalar_or_list(ids, self.backend.times(self._resolve(as_id_list(ids), follow)))

    def list_tasks(self) -> list[str]:
        """Every task id of the namespace, in submission order."""
        return self.backend.list_tasks()

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
        return _scalar_or_list(ids, found)

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
        ``complete``, ``error`` (every failed status), plus ``deferred`` and ``total``."""
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
            "total": sum(counts.values()),
        }

    # ------------------------------------------------------------------ changes
    def cancel(self, tid: str, wait: bool = True, timeout: float = 10) -> bool:
        """Cancel a task: a PENDING or DEFERRED one is unqueued and becomes CANCELLED; a
        RUNNING one is stopped by its worker (SIGTERM, then SIGKILL) and becomes CANCELLED.
        Its dependants become IMPOSSIBLE. With ``wait``, block until a running task is
        stopped (``WaitTimeout`` after ``timeout`` seconds). Returns True if it was (or, with
        ``wait=False``, is being) cancelled, False if it finished first. A task that had
        already finished is a ``TaskStateError``."""
        for _ in range(3):  # a task may move on between the two calls
            before = self.backend.cancel_queued([tid])[0]
            if before is TaskStatus.MISSING:
                raise UnknownTaskError(f"task {tid} does not exist in queue {self.queue_id!r}")
            if before in (TaskStatus.PENDING, TaskStatus.DEFERRED):
                return True
            if before is not TaskStatus.RUNNING:
                raise TaskStateError(f"task {tid} is {before}: it has already finished")
            now = self.backend.request_cancel(tid)
            if now is TaskStatus.RUNNING:
                if not wait:
                    return True
                self.backend.detect_lost()  # a dead worker's task is DIED, not waited for
                final = wait_finished(self.backend, [tid], seconds("timeout", timeout), 1.0, False)
                return final[tid] is TaskStatus.CANCELLED
            if now in FINISHED_STATUSES:
                return now is TaskStatus.CANCELLED
        return False

    @overload
    def retry(self, ids: str) -> str: ...  # type: ignore[overload-overlap]
    @overload
    def retry(self, ids: Sequence[str]) -> list[str]: ...
    def retry(self, ids: Ids) -> str | list[str]:
        """Run finished tasks again under new ids (one id -> one new id, many -> a list);
        each old id becomes MOVED and points to its new one. With the controller's
        ``follow``, an id retried before is retried from its newest retry. All or none: a
        task that has not finished is a ``TaskStateError``."""
        olds = self._resolve(as_id_list(ids), None)
        pairs = [(old, new_task_id()) for old in olds]
        self.backend.retry_tasks(pairs, self._resealed(pairs))
        return _scalar_or_list(ids, [new for _, new in pairs])

    def _resealed(self, pairs: list[tuple[str, str]]) -> list[bytes] | None:
        """Each old task's call sealed again for its new id (a signature is bound to its
        task id); None when nothing is signed (the backend copies the payloads)."""
        if not self.codec.signed:
            return None
        out = []
        blobs = self.backend.payloads([old for old, _ in pairs])
        for (old, new), blob in zip(pairs, blobs, strict=True):
            if blob is None:
                raise UnknownTaskError(f"task {old} does not exist in queue {self.queue_id!r}")
            data = self.codec.open(blob, Kind.CALL, old, f"payload of task {old}")
            out.append(self.codec.seal(data, Kind.CALL, new))
        return out

    def delete(self, ids: Ids, check: bool = True) -> None:
        """Delete tasks (their records, calls and results). With ``check``, a RUNNING task is
        a ``TaskStateError`` and nothing is deleted. Their large values leave the object
        store with them, unless something else still holds them."""
        self.backend.delete(as_id_list(ids), check)
        if self._blobs.settings().offload_path is not None:
            self.store._collect()

    def destroy(
        self,
        delete: bool | float = True,
        worker_stop_type: str = "message",
        timeout_worker_stop: float = 0,
    ) -> None:
        """Stop the namespace's workers and delete everything it stores: now (``delete=True``),
        never (``False``), or ``delete`` seconds from now (a number). Offload files go too;
        later, they are removed by this process if it still runs, else by the next runq
        process that reads or writes that offload directory (``runq._offload``)."""
        later = None if isinstance(delete, bool) else seconds("delete", delete)
        if self.backend.workers():
            self.workers.stop(type=worker_stop_type, timeout=timeout_worker_stop)
        if later is not None:
            self.store._destroy_later(later)
            self.backend.expire(later)
        elif delete:
            self.store.destroy()
            self.backend.destroy()


_STATUS_MESSAGES = {
    TaskStatus.CANCELLED: "the task was cancelled",
    TaskStatus.IMPOSSIBLE: "a dependency of the task failed, so it can never run",
    TaskStatus.DIED: "the worker running the task died",
    TaskStatus.TIMEOUT: "the task ran past its timeout",
    TaskStatus.MOVED: "the task was retried under a new id",
    TaskStatus.DISCARDED: "the submission was discarded by its on_duplicate policy",
}


def dedup_key(name: str | None, call: Call) -> str:
    """The digest that makes two submissions duplicates: task name (or function), args and
    kwargs (keyword order ignored). BLAKE2b-128, hex."""
    h = hashlib.blake2b(digest_size=16)
    if call.kind == "expr":
        h.update(b"expr\0" + (call.expr or "").encode())
        h.update(serialize.dumps(sorted((call.env or {}).items()), "the env"))
    else:
        h.update(b"name\0" + name.encode() if name else b"fn\0" + (call.fn_bytes or b""))
        h.update(b"\0")
        h.update(serialize.dumps((call.args, sorted(call.kwargs.items())), "the arguments"))
    return h.hexdigest()


def derive_seed(namespace_seed: int | None, task_seed: int | None, index: int) -> int:
    """A 63-bit seed from the namespace seed and the task's seed (or its submission index)."""
    source = (
        f"{namespace_seed}:s{task_seed}" if task_seed is not None else f"{namespace_seed}:i{index}"
    )
    digest = hashlib.blake2b(source.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _check_expr(expr: str) -> str:
    if not isinstance(expr, str):
        raise ConfigError(f"expr must be a string of Python, got {serialize.describe(expr)}")
    try:
        compile(expr, "<runq expr>", "eval")
    except SyntaxError as exc:
        raise ConfigError(f"expr is not a valid Python expression: {exc.msg} in {expr!r}") from exc
    return expr


def _rows(data: Iterable[Any]) -> Iterable[tuple[Any, bool]]:
    """Each element of ``data`` with whether it is a row of keyword arguments."""
    pd = sys.modules.get("pandas")  # a DataFrame means pandas is imported already
    if pd is not None and isinstance(data, pd.DataFrame):
        for record in data.to_dict("records"):
            yield {str(k): v for k, v in record.items()}, True
        return
    if isinstance(data, str | bytes | Mapping) or not isinstance(data, Iterable):
        raise ConfigError(f"data must be an iterable of items, got {serialize.describe(data)}")
    for item in data:
        if isinstance(item, Mapping):
            yield keyword_arguments(item, "a row of data (a dict of keyword arguments)"), True
        else:
            yield item, False


def _warn_if_remote(url: str) -> None:
    """Warn once when payloads travel unsigned to a backend that is not on loopback."""
    from urllib.parse import urlsplit

    from runq.urls import split_userinfo

    scheme = url.split(":", 1)[0]
    if scheme in ("sqlite", "unix"):
        return
    host = urlsplit(split_userinfo(url)[0]).hostname or "localhost"  # a password may hold '/'
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and host not in _WARNED:
        _WARNED.add(host)
        warnings.warn(
            f"runq backend at {host} is not on loopback and no secret is set: anyone who can "
            "write to it can run code on your workers. Pass secret= (or set RUNQ_SECRET).",
            stacklevel=3,
        )


_WARNED: set[str] = set()
