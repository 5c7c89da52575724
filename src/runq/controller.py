"""The controller: submit tasks to one namespace, inspect them, change them.

``Controller`` is the public entry point. Its submission methods are here; the reads
(status, wait, results, info …) are ``inspection.TaskInspection`` and the changes (cancel,
retry, delete, destroy) ``changes.TaskChanges``, both mixed into it. Calls become tasks
through the submission seam (``submission.Submitter``); the sub-APIs ``ctl.queues``,
``ctl.workers``, ``ctl.store``, ``ctl.messages`` and ``ctl.schedules`` get the namespace's
``Session``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from runq import composition, serialize
from runq import settings as _settings
from runq.backends import Backend
from runq.changes import TaskChanges
from runq.exceptions import ConfigError, TaskError
from runq.inspection import Ids, TaskInspection
from runq.limits import LimitsAPI
from runq.messages import MessagesAPI
from runq.options import TaskOptions, call_arguments, keyword_arguments, seconds
from runq.queues import QueuesAPI
from runq.schedules import SchedulesAPI
from runq.serialize import Call
from runq.session import Session
from runq.settings import PasswordSource, SecretSource
from runq.store import StoreAPI
from runq.submission import (
    Submitter,
    check_expr,
    dedup_key,
    derive_seed,
    function_label,
    rows,
)
from runq.workers import WorkersAPI

if TYPE_CHECKING:
    from runq.dispatch import DispatchJob

__all__ = ["Controller", "dedup_key", "derive_seed"]

R = TypeVar("R")


class Controller(TaskInspection, TaskChanges):
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
        self.timeout_task_wait = seconds("timeout_task_wait", timeout_task_wait)
        self.follow = follow
        self.seed = seed
        #: The open namespace (settings, backend, codec, object store): the narrow context
        #: the sub-APIs, the Executor and dispatch work with.
        self.session = Session.open(
            queue_id,
            _settings.resolve(url, secret, password),
            check_version=check_version,
            create=create,
        )
        #: The submission seam: calls in, tasks stored, outcomes decoded.
        self.submitter = Submitter(self.session, seed)
        self.backend: Backend = self.session.backend
        self.settings = self.session.settings
        self.codec = self.session.codec
        self.queues = QueuesAPI(self.session)
        self.messages = MessagesAPI(self.session)
        self.workers = WorkersAPI(self.session, self.messages)
        self.store = StoreAPI(self.session)
        self.limits = LimitsAPI(self.session)
        self.schedules = SchedulesAPI(self.session)

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
        self.session.close()

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
        ``retry_on``, ``retry_backoff``, ``name``, ``on_duplicate``, ``seed``, ``limit`` (a
        named limit of ``ctl.limits``). An argument or function that cannot be pickled is a
        ``SerializationError`` naming it; nothing is queued then. Unknown ``depends_on`` ids
        are an ``UnknownTaskError``. ``fn`` may be an ``async def`` function: the worker runs
        it on an event loop.

        ``retries=N`` alone does NOT retry a task that raises (unlike Celery's autoretry or
        RQ's ``Retry``): it is how many more runs the task may get, used when its worker dies
        (DIED), when it raises an exception of ``retry_on`` (``retry_on=Exception``: any
        exception; a timeout counts as ``TimeoutError``), or when it raises
        ``runq.Retry(delay=...)``.
        """
        opts = TaskOptions.build(**options)
        call_args, call_kwargs = call_arguments(args, kwargs)
        fn_bytes = self.submitter.function_bytes(fn)
        call = Call("call", fn_bytes, call_args, call_kwargs, retry_on=opts.retry_on)
        return self.submitter.submit([call], opts, depends_on, function_label(fn))[0]

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
            expr=check_expr(expr),
            env=keyword_arguments(env, "env"),
            retry_on=opts.retry_on,
        )
        return self.submitter.submit([call], opts, depends_on, function_label(expr))[0]

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
        fn_bytes = self.submitter.function_bytes(fn)
        calls = [
            Call("call", fn_bytes, (), {**row, **common}, retry_on=opts.retry_on)
            if as_kwargs
            else Call("call", fn_bytes, (row,), common, retry_on=opts.retry_on)
            for row, as_kwargs in rows(data)
        ]
        return self.submitter.submit(calls, opts, depends_on, function_label(fn))

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
        expr = check_expr(expr)
        base = keyword_arguments(env, "env")
        calls = []
        for row, as_kwargs in rows(data):
            if not as_kwargs:
                raise ConfigError(
                    "enqueue_bulk_expr needs rows of names: a list of dicts or a DataFrame, "
                    f"got an item {serialize.describe(row)}"
                )
            calls.append(
                Call("expr", None, (), {}, expr=expr, env={**base, **row}, retry_on=opts.retry_on)
            )
        return self.submitter.submit(calls, opts, depends_on, function_label(expr))

    # ------------------------------------------------------------------ composition
    def chain(self, *signatures: composition.Signature) -> list[str]:
        """Submit ``signatures`` as a chain, atomically, and return their ids in order: each
        task depends on the one before and gets its result as its first argument. A failed
        task makes the rest IMPOSSIBLE."""
        return composition.chain(self.submitter, signatures)

    def group(self, *signatures: composition.Signature) -> list[str]:
        """Submit ``signatures`` as independent tasks, atomically; their ids in order."""
        return composition.group(self.submitter, signatures)

    def chord(
        self, header: Sequence[composition.Signature], body: composition.Signature
    ) -> tuple[list[str], str]:
        """Submit the ``header`` tasks and ``body``, atomically: ``body`` runs once every
        header task COMPLETEs and gets the list of their results (header order) as its first
        argument; it is IMPOSSIBLE if one fails. Answers (header ids, body id)."""
        return composition.chord(self.submitter, header, body)

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
