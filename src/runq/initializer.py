"""The initializer of a ``runq.Executor`` (``initializer=``/``initargs=``, as
``ProcessPoolExecutor``'s): run once per worker process, and what happens when it fails.

Every call an executor with an initializer submits is wrapped in an ``Initialized`` (picklable
by reference to this module, its fields by value) that runs the initializer first, once per
process and executor (a registry keyed by a token unique to the executor), so the workers
need nothing special. If it raises, the task fails with ``InitializerFailed``; the executor
then breaks with ``BrokenExecutor``, as ``BrokenProcessPool`` does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent import futures
from typing import Any

from runq import serialize
from runq.exceptions import ConfigError, RunqError, TaskError

__all__ = [
    "BrokenExecutor",
    "Initialized",
    "InitializerFailed",
    "broken_error",
    "check_initializer",
    "qualname",
    "run_initializer",
]


class BrokenExecutor(RunqError, futures.BrokenExecutor):
    """The executor cannot run tasks any more: its ``initializer`` failed in a worker process
    (as ``concurrent.futures.process.BrokenProcessPool``). Outstanding futures fail with it and
    ``submit``/``map`` raise it; the message names the initializer and what it raised."""


class InitializerFailed(RunqError):
    """Raised in a worker process instead of running a task, when the executor's initializer
    failed there (the original exception is the ``__cause__``). The executor recognises it by
    name in the task's ``TaskError`` and breaks (``BrokenExecutor``)."""


# ---------------------------------------------------------------------------- initializer
#: Tokens of the executors whose initializer has run in this process (a worker's warm child
#: is reused across tasks, so this lives as long as that process).
_initialized: set[str] = set()
_initialized_lock = threading.Lock()


def qualname(fn: object) -> str:
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    return f"{module}.{name}" if module else name


class Initialized:
    """``fn`` after the executor's ``initializer(*initargs)`` has run once in this process.

    Every call an executor with an initializer submits is this wrapper (picklable by reference
    to this module, its fields by value), so the workers need nothing special."""

    def __init__(
        self,
        token: str,
        initializer: Callable[..., object],
        initargs: tuple[Any, ...],
        fn: Callable[..., Any],
    ) -> None:
        self.token = token
        self.initializer = initializer
        self.initargs = initargs
        self.fn = fn

    def __repr__(self) -> str:
        return f"<{qualname(self.fn)} after initializer {qualname(self.initializer)}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        run_initializer(self.token, self.initializer, self.initargs)
        return self.fn(*args, **kwargs)


def run_initializer(
    token: str, initializer: Callable[..., object], initargs: tuple[Any, ...]
) -> None:
    """Run the initializer of executor ``token`` unless it already ran in this process; a
    failure raises ``InitializerFailed`` (and it is tried again at the next task)."""
    with _initialized_lock:  # tasks may run in threads of one process
        if token in _initialized:
            return
        try:
            initializer(*initargs)
        except KeyboardInterrupt:  # the worker being stopped hard: not the initializer's fault
            raise
        except BaseException as exc:  # SystemExit too, as ProcessPoolExecutor
            raise InitializerFailed(
                f"its initializer {qualname(initializer)} raised "
                f"{type(exc).__name__}: {exc} (in worker process {os.getpid()})"
            ) from exc
        _initialized.add(token)


def check_initializer(
    initializer: Callable[..., object] | None, initargs: Iterable[Any]
) -> tuple[Callable[..., object], tuple[Any, ...]] | None:
    """The validated ``(initializer, initargs)``, or None without an initializer; both must
    be picklable (checked now, so no task is queued that cannot run)."""
    if isinstance(initargs, str | bytes) or not isinstance(initargs, Iterable):
        raise ConfigError(f"initargs must be a tuple of arguments, got {initargs!r}")
    args = tuple(initargs)
    if initializer is None:
        if args:
            raise ConfigError("initargs were given without an initializer")
        return None
    if not callable(initializer):
        raise ConfigError(f"initializer must be callable, got {serialize.describe(initializer)}")
    serialize.dumps(
        (initializer, args), f"the initializer {qualname(initializer)} with its initargs"
    )
    return initializer, args


def broken_error(message: str, error: TaskError) -> BrokenExecutor:
    """A ``BrokenExecutor`` for one future: the initializer's ``TaskError`` is its cause and
    the remote traceback a note."""
    broken = BrokenExecutor(message)
    broken.__cause__ = error
    if error.traceback:
        broken.add_note(f"remote traceback (runq):\n{error.traceback.rstrip()}")
    return broken
