"""The ``@task`` front end (after dispatcherd): decorated functions, their refs and registries.

Decorating a function records metadata only (no I/O, no controller): the controller is
resolved when a task is submitted, from ``@task(controller=...)`` or else
``runq.get_default_controller()``.

- ``Task[P, R]``: the decorated function. A plain call runs it locally; ``.delay(*args,
  **kwargs)`` submits it with the decorator's options; ``.apply_async(args, kwargs, **options)``
  overrides them for one call.
- ``TaskRef[R]``: a submitted task: ``id``, ``status()``, ``wait()``, ``result()``,
  ``cancel()``, ``discarded``; ``await ref`` gives the result in asyncio.
- ``TaskRegistry``: name -> Task. Every decorated task joins the global default registry
  unless ``registry=`` names another (``runq.TaskRegistry()`` for isolated tests).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload

from runq.composition import Signature
from runq.context import CurrentTask, current_task
from runq.defaults import get_default_controller
from runq.exceptions import ConfigError
from runq.models import FINISHED_STATUSES, TaskStatus
from runq.options import TaskOptions

if TYPE_CHECKING:
    from runq.controller import Controller

__all__ = ["Task", "TaskRef", "TaskRegistry", "task"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

QueueSpec = str | Callable[[], str] | None

#: Options a submission may override (``apply_async``); the decorator also takes ``bind``,
#: ``registry``, ``controller`` and ``name``.
CALL_OPTIONS = frozenset(
    {
        "queue",
        "timeout",
        "on_duplicate",
        "retries",
        "retry_on",
        "retry_backoff",
        "separate_process",
        "seed",
        "limit",
        "depends_on",
        "controller",
        "result_ttl",
        "failure_ttl",
    }
)


class TaskRegistry:
    """Tasks by name. The global default one gets every task decorated without
    ``registry=``; make your own (``runq.TaskRegistry()``) to keep tests isolated."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task[Any, Any]] = {}

    def register(self, task: Task[Any, Any]) -> None:
        """Add ``task`` under its name (a later task of the same name replaces it)."""
        self._tasks[task.name] = task

    def get(self, name: str) -> Task[Any, Any]:
        """The task called ``name``; ``KeyError`` naming it if there is none."""
        try:
            return self._tasks[name]
        except KeyError:
            raise KeyError(f"no task named {name!r} in this registry") from None

    def names(self) -> list[str]:
        """Every registered name, in registration order."""
        return list(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[Task[Any, Any]]:
        return iter(list(self._tasks.values()))

    def __len__(self) -> int:
        return len(self._tasks)


default_registry = TaskRegistry()


class _LocalContext:
    """What a ``bind=True`` task receives when called locally (outside a worker)."""

    uuid = None
    id = None
    worker_id = None
    attempt = 0

    def progress(self, value: Any) -> None:
        """Progress has nowhere to go in a local call: ignored."""


class TaskRef(Generic[R_co]):
    """A submitted task. ``await ref`` waits for it and gives its result (in a thread, so
    the event loop keeps running)."""

    __slots__ = ("_ctl", "id")

    def __init__(self, controller: Controller, task_id: str) -> None:
        self._ctl = controller
        self.id = task_id

    def __repr__(self) -> str:
        return f"TaskRef({self.id!r})"

    @property
    def controller(self) -> Controller:
        """The controller the task was submitted through."""
        return self._ctl

    def status(self) -> TaskStatus:
        """The task's current status."""
        return self._ctl.status(self.id)

    @property
    def discarded(self) -> bool:
        """True if an ``on_duplicate`` policy refused this submission (it never runs)."""
        return self.status() is TaskStatus.DISCARDED

    def done(self) -> bool:
        """Whether the task has finished (in any way)."""
        return self.status() in FINISHED_STATUSES

    def wait(self, timeout: float | timedelta | None = None) -> bool:
        """Block until it finishes (``WaitTimeout`` past ``timeout``); True iff COMPLETE."""
        return self._ctl.wait(self.id, timeout=timeout, progress=False)

    def result(self, timeout: float | timedelta | None = None, error: bool = True) -> R_co:
        """Wait for it (for ever if ``timeout`` is None) and return its result. A task that
        did not COMPLETE raises its ``TaskError`` (with ``error=False``: returns it)."""
        self.wait(timeout)
        value: R_co = self._ctl.result(self.id, error=error)
        return value

    def cancel(self) -> bool:
        """Unqueue the task if it is PENDING or DEFERRED (see ``Controller.cancel``); False if
        it had already finished."""
        if self.status() in FINISHED_STATUSES:
            return False
        return self._ctl.cancel(self.id)

    def __await__(self) -> Generator[Any, None, R_co]:
        return asyncio.to_thread(self.result).__await__()


class Task(Generic[P, R]):
    """A function decorated with ``@runq.task``: call it to run it here, ``delay`` or
    ``apply_async`` to run it on a worker."""

    def __init__(
        self,
        fn: Callable[..., R],
        *,
        name: str,
        bind: bool,
        options: dict[str, Any],
        controller: Controller | None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.bind = bind
        self.options = options  # validated call options (CALL_OPTIONS minus controller)
        self.controller = controller
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<runq task {self.name}>"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self.bind:
            context: CurrentTask | _LocalContext = current_task() or _LocalContext()
            return self.fn(context, *args, **kwargs)
        return self.fn(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        """By reference when the task is importable under its name, else by value."""
        module, _, qualname = self.name.rpartition(".")
        if module and module != "__main__" and "<locals>" not in qualname:
            try:
                if _lookup(module, qualname) is self:
                    return (_lookup, (module, qualname))
            except (ImportError, AttributeError):
                pass
        return (_rebuild, (self.fn, self.name, self.bind))

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskRef[R]:
        """Submit ``self(*args, **kwargs)`` with the decorator's options."""
        return self._submit(args, kwargs, self.options, self.controller)

    def s(self, *args: P.args, **kwargs: P.kwargs) -> Signature:
        """A signature of ``self(*args, **kwargs)`` with the decorator's options, for
        ``ctl.chain``, ``ctl.group`` and ``ctl.chord`` (see ``runq.sig``)."""
        options = {**self.options, "name": self.name}
        return Signature(self, tuple(args), dict(kwargs), options)

    def apply_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> TaskRef[R]:
        """Submit ``self(*args, **kwargs)``; ``options`` (any of ``queue``, ``timeout``,
        ``on_duplicate``, ``retries``, ``retry_on``, ``retry_backoff``, ``separate_process``,
        ``seed``, ``depends_on``, ``controller``, ``result_ttl``, ``failure_ttl``) override
        the decorator's. ``countdown=`` (seconds or timedelta) or ``eta=`` (a datetime or
        seconds since the epoch) make it SCHEDULED until then, as Celery's do."""
        _check_names(options, CALL_OPTIONS | {"countdown", "eta"}, "apply_async")
        if "countdown" in options:  # Celery's names for delay= and at=
            options["delay"] = options.pop("countdown")
        if "eta" in options:
            options["at"] = options.pop("eta")
        controller = options.pop("controller", None) or self.controller
        merged = {**self.options, **_validated(options)}
        return self._submit(tuple(args), dict(kwargs or {}), merged, controller)

    def _submit(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        controller: Controller | None,
    ) -> TaskRef[R]:
        ctl = controller or get_default_controller()
        opts = dict(options)
        queue = opts.pop("queue", None)
        if callable(queue):
            queue = queue()
        tid = ctl.enqueue(self, args, kwargs, queue=queue, name=self.name, **opts)
        return TaskRef(ctl, tid)


def _lookup(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _rebuild(fn: Callable[..., Any], name: str, bind: bool) -> Task[Any, Any]:
    return Task(fn, name=name, bind=bind, options={}, controller=None)


def _check_names(options: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {where}; "
            f"valid options are {', '.join(sorted(allowed))}"
        )


def _validated(options: dict[str, Any]) -> dict[str, Any]:
    """Check the call options eagerly (``ConfigError`` names the bad one); a callable
    ``queue`` is kept as is and called at each submission."""
    checked = {k: v for k, v in options.items() if k not in ("queue", "depends_on")}
    TaskOptions.build(**checked)
    queue = options.get("queue")
    if queue is not None and not callable(queue):
        TaskOptions.build(queue=queue)
    return dict(options)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(
    *,
    bind: Literal[True],
    queue: QueueSpec = None,
    timeout: float | timedelta | None = None,
    on_duplicate: str = "parallel",
    retries: int = 0,
    separate_process: bool = False,
    registry: TaskRegistry | None = None,
    controller: Controller | None = None,
    name: str | None = None,
    **more: Any,
) -> Callable[[Callable[Concatenate[Any, P], R]], Task[P, R]]: ...
@overload
def task(
    *,
    queue: QueueSpec = None,
    timeout: float | timedelta | None = None,
    bind: Literal[False] = False,
    on_duplicate: str = "parallel",
    retries: int = 0,
    separate_process: bool = False,
    registry: TaskRegistry | None = None,
    controller: Controller | None = None,
    name: str | None = None,
    **more: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Make a function a runq task (``@task`` or ``@task(queue=..., ...)``).

    Options: ``queue`` (a name, or a callable returning one at each submission),
    ``timeout``, ``bind`` (pass the running task's context — ``.uuid``, ``.worker_id``,
    ``.progress(value)`` — as first argument), ``on_duplicate`` (``parallel``, ``discard``,
    ``serial``, ``queue_one``), ``retries``, ``separate_process``, ``registry``,
    ``controller``, ``name`` (default: ``module.qualname``), and ``retry_on``,
    ``retry_backoff``, ``seed``. An unknown option is a ``ConfigError`` naming it.
    ``fn`` may be an ``async def`` function.

    ``retries=N`` alone does NOT retry on exceptions (Celery and RQ users often expect it
    to): the task is retried when its worker dies, when it raises one of ``retry_on``
    (``retry_on=Exception``: any exception), or when it raises ``runq.Retry(delay=...)``.
    """
    allowed = (CALL_OPTIONS - {"depends_on"}) | {"bind", "registry", "name"}
    _check_names(options, allowed, "@runq.task")
    bind = options.pop("bind", False)
    if not isinstance(bind, bool):
        raise ConfigError(f"bind must be True or False, got {bind!r}")
    registry = options.pop("registry", None)
    if registry is not None and not isinstance(registry, TaskRegistry):
        raise ConfigError(f"registry must be a runq.TaskRegistry, got {registry!r}")
    controller = options.pop("controller", None)
    name = options.pop("name", None)
    call_options = _validated(options)

    def decorate(func: Callable[..., Any]) -> Task[Any, Any]:
        if not callable(func):
            raise ConfigError(f"@runq.task decorates functions, got {func!r}")
        task_name = name or f"{func.__module__}.{func.__qualname__}"
        made: Task[Any, Any] = Task(
            func, name=task_name, bind=bind, options=call_options, controller=controller
        )
        (registry if registry is not None else default_registry).register(made)
        return made

    return decorate(fn) if fn is not None else decorate
