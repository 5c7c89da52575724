"""Worker hooks: ``WorkerConfig(hooks=("pkg.mod:obj", ...))``, loaded and called safely.

Each name is ``module:attribute`` (dotted on both sides); the object it names — an instance, a
module, or a class (instantiated once, with no arguments) — may define any of:

- ``on_worker_start(worker_info)`` / ``on_worker_stop(worker_info)``: when a task process of
  the worker starts / ends (see below);
- ``before_task(ctx)``: before each task, with the running task's ``runq.current_task()``;
- ``after_task(ctx, status, result_or_error)``: after each task that reached its
  ``before_task``: the ``TaskStatus`` it ends with, and its return value or the exception.

Where they run: in the worker's task process (``worker/child.py``), the process that runs the
tasks, so that a resource opened in ``on_worker_start`` (a database connection, an HTTP
session) is there for the tasks and for ``before_task``/``after_task``. A task process is
replaced after a task was stopped (cancel, timeout) or died, and each new one calls
``on_worker_start`` again; ``on_worker_stop`` runs when a task process ends normally (the
worker exits), not when it is killed. A ``separate_process=True`` task gets a fresh process of
its own, with its own start and stop calls.

Failures: a hook that raises is logged (logger ``runq.worker``) and the worker goes on, except
that a ``before_task`` that raises fails its task: the task is not run and ends ERROR with a
``TaskError`` of type ``"HookError"`` naming the hook. Hooks are called in the order given.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from runq.config import check_hook_names
from runq.exceptions import ConfigError

__all__ = ["HOOK_METHODS", "HookFailed", "Hooks", "check_importable"]

log = logging.getLogger("runq.worker")

#: The methods a hook object may define.
HOOK_METHODS = ("on_worker_start", "on_worker_stop", "before_task", "after_task")


class HookFailed(Exception):
    """A ``before_task`` hook raised (the task is failed with this, its cause chained)."""


@dataclass(frozen=True, slots=True)
class _Hook:
    name: str
    obj: Any


class Hooks:
    """The loaded hooks of one process (empty: every call is a no-op)."""

    def __init__(self, names: Sequence[str] = ()) -> None:
        self._broken: str | None = None  # why the hooks could not be loaded
        self._hooks = [_Hook(name, _load(name)) for name in names]
        self._before = [(h.name, h.obj.before_task) for h in self._with("before_task")]
        self._after = [(h.name, h.obj.after_task) for h in self._with("after_task")]
        #: Whether any hook runs around tasks (the runner skips the calls otherwise).
        self.around_tasks = bool(self._before or self._after)

    @classmethod
    def load(cls, names: Sequence[str]) -> Hooks:
        """The hooks ``names`` stand for; if one cannot be loaded, hooks that fail every
        task (at ``before_task``) with the reason, so that no task runs without its hooks."""
        try:
            return cls(names)
        except ConfigError as exc:
            log.error("runq hooks: %s", exc)
            hooks = cls()
            hooks._broken = str(exc)
            hooks.around_tasks = True
            return hooks

    def _with(self, method: str) -> list[_Hook]:
        return [h for h in self._hooks if callable(getattr(h.obj, method, None))]

    def worker_start(self, info: dict[str, Any]) -> None:
        """Call every ``on_worker_start(info)``; failures are logged."""
        for hook in self._with("on_worker_start"):
            _logged(hook.name, "on_worker_start", hook.obj.on_worker_start, info)

    def worker_stop(self, info: dict[str, Any]) -> None:
        """Call every ``on_worker_stop(info)``; failures are logged."""
        for hook in self._with("on_worker_stop"):
            _logged(hook.name, "on_worker_stop", hook.obj.on_worker_stop, info)

    def before_task(self, ctx: Any) -> None:
        """Call every ``before_task(ctx)``; raise ``HookFailed`` at the first that raises."""
        if self._broken is not None:
            raise HookFailed(f"{self._broken}; the task was not run")
        for name, fn in self._before:
            try:
                fn(ctx)
            except BaseException as exc:  # a hook never kills the worker: the task fails
                log.error("runq hook %s.before_task raised %s: %s", name, type(exc).__name__, exc)
                raise HookFailed(
                    f"hook {name}.before_task raised {type(exc).__name__}: {exc}; "
                    "the task was not run"
                ) from exc

    def after_task(self, ctx: Any, status: Any, result_or_error: Any) -> None:
        """Call every ``after_task(ctx, status, result_or_error)``; failures are logged."""
        for name, fn in self._after:
            _logged(name, "after_task", fn, ctx, status, result_or_error)


def check_importable(names: Sequence[str]) -> None:
    """Import each hook's object (without instantiating a class): a ``ConfigError`` names
    one that cannot be imported (the worker checks this at start)."""
    for name in names:
        _resolve(name)


def _resolve(name: str) -> Any:
    module_name, _, attr = check_hook_names((name,))[0].partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise ConfigError(
            f"WorkerConfig.hooks: cannot import {name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return obj


def _load(name: str) -> Any:
    """The object ``name`` ('module:attr.path') stands for; a class is instantiated."""
    obj = _resolve(name)
    if isinstance(obj, type):
        try:
            obj = obj()
        except Exception as exc:
            raise ConfigError(
                f"WorkerConfig.hooks: {name!r} is a class and {name}() raised "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    if not any(callable(getattr(obj, m, None)) for m in HOOK_METHODS):
        raise ConfigError(f"WorkerConfig.hooks: {name!r} defines none of {', '.join(HOOK_METHODS)}")
    return obj


def _logged(name: str, method: str, fn: Callable[..., object], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # a hook never kills the worker
        log.exception("runq hook %s.%s raised (ignored)", name, method)
