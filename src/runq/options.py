"""Validation of per-task options, shared by ``Controller.enqueue*`` and the ``@task`` front end.

Every bad value is a ``ConfigError`` that names the option and the value."""

from __future__ import annotations

import inspect
import math
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runq.exceptions import ConfigError

__all__ = [
    "DUPLICATE_POLICIES",
    "MAX_RETRIES",
    "OPTION_NAMES",
    "RESULTS_AS",
    "RESULTS_FROM",
    "STORED_DEFAULTS",
    "TASK_ID",
    "TaskOptions",
    "as_id_list",
    "call_arguments",
    "check_name",
    "delay_from",
    "is_task_id",
    "keyword_arguments",
    "new_task_id",
    "seconds",
    "with_defaults",
]

DUPLICATE_POLICIES = ("parallel", "discard", "serial", "queue_one")


#: Task option set by chains and chords: the ids whose results the task gets as its first
#: argument, read by the worker just before the call.
RESULTS_FROM = "results_from"
#: Task option: "value" (one result is the first argument) or "list" (the list of them).
RESULTS_AS = "results_as"

#: Every task id runq makes: 32 lowercase hex characters (``new_task_id``).
TASK_ID = re.compile(r"[0-9a-f]{32}")
#: The most retries a task may ask for.
MAX_RETRIES = 1_000_000
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def new_task_id() -> str:
    """A fresh task id: 32 hex characters."""
    return os.urandom(16).hex()


def is_task_id(value: object) -> bool:
    """Whether ``value`` has the form of a runq task id (it may still be unknown)."""
    return isinstance(value, str) and TASK_ID.fullmatch(value) is not None


def seconds(name: str, value: float | timedelta | None, *, allow_inf: bool = False) -> float | None:
    """``value`` in seconds (None stays None; with ``allow_inf``, infinity means None: no
    limit); a ``ConfigError`` naming ``name`` if it is not a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be seconds (a number or timedelta), got {value!r}")
    if allow_inf and value == math.inf:
        return None
    if math.isnan(value) or math.isinf(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def as_id_list(ids: str | Iterable[str] | None, what: str = "ids") -> list[str]:
    """One id or many, as a list of str; anything else is a ``ConfigError`` naming ``what``."""
    if ids is None:
        return []
    if isinstance(ids, str):
        return [ids]
    if isinstance(ids, bytes | Mapping) or not isinstance(ids, Iterable):
        raise ConfigError(f"{what} must be a task id string or a list of them, got {ids!r}")
    out = list(ids)
    for item in out:
        if not isinstance(item, str):
            raise ConfigError(f"{what} must be task id strings, got {item!r}")
    return out


def call_arguments(args: object, kwargs: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A call's ``args`` (a list or tuple) and ``kwargs`` (a mapping with string keys), checked
    at submission so that a mistake is not found only on the worker."""
    if isinstance(args, str | bytes | Mapping) or not isinstance(args, Sequence):
        raise ConfigError(
            f"args must be a list or tuple of positional arguments, got {_short(args)} "
            "(for one argument x, write args=(x,))"
        )
    return tuple(args), keyword_arguments(kwargs, "kwargs")


def keyword_arguments(kwargs: object, what: str) -> dict[str, Any]:
    """``kwargs`` as a dict of keyword arguments (None: empty); a ``ConfigError`` if it is
    not a mapping with string keys."""
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"{what} must be a mapping of keyword arguments, got {_short(kwargs)}")
    for key in kwargs:
        if not isinstance(key, str):
            raise ConfigError(f"{what} keys must be argument names (strings), got {key!r}")
    return dict(kwargs)


def check_name(what: str, value: object, max_len: int = 200) -> str:
    """A name (queue, task name …): a non-empty string of printable characters."""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise ConfigError(
            f"{what} must be a non-empty string of up to {max_len} characters, got {value!r}"
        )
    if _CONTROL_CHARS.search(value):
        raise ConfigError(f"{what} must not contain control characters, got {value!r}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """The validated options of one submission."""

    queue: str = "default"
    timeout_s: float | None = None
    #: How many more runs the task may get. Alone it does NOT retry on exceptions (unlike
    #: Celery/RQ habits): it is used when the worker dies, for ``retry_on`` exceptions
    #: (``Exception``: any) and for ``runq.Retry``.
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = ()
    retry_backoff_s: float = 1.0
    separate_process: bool = False
    name: str | None = None
    on_duplicate: str = "parallel"
    seed: int | None = None
    #: Seconds until the task is due (from ``delay=`` or ``at=``); None: at once.
    delay_s: float | None = None
    #: Seconds a finished task is kept (``result_ttl=``; ``failure_ttl=`` for a failed one).
    result_ttl_s: float | None = None
    failure_ttl_s: float | None = None
    #: The named limit the task runs under (``ctl.limits``); None: no limit.
    limit: str | None = None

    @classmethod
    def build(cls, **options: Any) -> TaskOptions:
        """Validate every option; ``ConfigError`` names the first bad one, or the unknown
        ones with the list of valid options."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(map(repr, unknown))}; valid options: "
                f"{', '.join(sorted(OPTION_NAMES))}"
            )
        return _checked(**options)

    def to_json(self) -> dict[str, Any]:
        """The JSON-able options stored with the task (``retry_on`` travels in the payload):
        only those that differ from their defaults, so that a queued task stores no more than
        it needs (a task with every default stores none; ``with_defaults`` restores them)."""
        full = {
            "timeout": self.timeout_s,
            "retries": self.retries,
            "retry_on": [t.__qualname__ for t in self.retry_on],
            "retry_backoff": self.retry_backoff_s,
            "separate_process": self.separate_process,
            "name": self.name,
            "on_duplicate": self.on_duplicate,
            "seed": self.seed,
            **({} if self.result_ttl_s is None else {"result_ttl": self.result_ttl_s}),
            **({} if self.failure_ttl_s is None else {"failure_ttl": self.failure_ttl_s}),
            # only when set: a claim looks for this key before it decodes the options
            **({} if self.limit is None else {"limit": self.limit}),
        }
        return {
            k: v for k, v in full.items() if k not in STORED_DEFAULTS or v != STORED_DEFAULTS[k]
        }


#: The stored options' defaults: a stored option equal to its default is left out.
STORED_DEFAULTS: dict[str, Any] = {
    "timeout": None,
    "retries": 0,
    "retry_on": [],
    "retry_backoff": 1.0,
    "separate_process": False,
    "name": None,
    "on_duplicate": "parallel",
    "seed": None,
}


def with_defaults(stored: dict[str, Any]) -> dict[str, Any]:
    """A task's stored options with the defaults it left out filled in."""
    return {**STORED_DEFAULTS, "retry_on": [], **stored}  # a fresh list: callers may change it


def _checked(
    *,
    queue: str | None = None,
    timeout: float | timedelta | None = None,
    retries: int = 0,
    retry_on: type[BaseException] | Sequence[type[BaseException]] = (),
    retry_backoff: float | timedelta = 1.0,
    separate_process: bool = False,
    name: str | None = None,
    on_duplicate: str = "parallel",
    seed: int | None = None,
    delay: float | timedelta | None = None,
    at: datetime | float | None = None,
    result_ttl: float | timedelta | None = None,
    failure_ttl: float | timedelta | None = None,
    limit: str | None = None,
) -> TaskOptions:
    """``TaskOptions.build`` once the option names are known to be valid."""
    queue = check_name("queue", "default" if queue is None else queue)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise ConfigError(f"retries must be an int from 0 to {MAX_RETRIES}, got {retries!r}")
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if not isinstance(retry_on, tuple | list):
        raise ConfigError(
            f"retry_on must be an exception type or a tuple of them, got {retry_on!r}"
        )
    retry_on = tuple(retry_on)
    for exc_type in retry_on:
        if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
            raise ConfigError(f"retry_on must hold exception types, got {exc_type!r}")
    backoff = seconds("retry_backoff", retry_backoff)
    if not isinstance(separate_process, bool):
        raise ConfigError(f"separate_process must be True or False, got {separate_process!r}")
    if name is not None:
        check_name("name", name)
    if on_duplicate not in DUPLICATE_POLICIES:
        raise ConfigError(
            f"on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}; got {on_duplicate!r}"
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"seed must be an int, got {seed!r}")
    if limit is not None:
        check_name("limit", limit)
    return TaskOptions(
        queue=queue,
        timeout_s=seconds("timeout", timeout),
        retries=retries,
        retry_on=retry_on,
        retry_backoff_s=backoff if backoff is not None else 1.0,
        separate_process=separate_process,
        name=name,
        on_duplicate=on_duplicate,
        seed=seed,
        delay_s=delay_from(delay, at),
        result_ttl_s=seconds("result_ttl", result_ttl),
        failure_ttl_s=seconds("failure_ttl", failure_ttl),
        limit=limit,
    )


def delay_from(delay: float | timedelta | None, at: datetime | float | None) -> float | None:
    """Seconds from now until a task given ``delay`` (seconds or timedelta, >= 0) or ``at`` (a
    datetime — naive means local time — or seconds since the epoch) is due; None when it is
    due at once (no delay, 0, or a time in the past)."""
    if delay is not None and at is not None:
        raise ConfigError("give delay or at, not both")
    if at is not None:
        if isinstance(at, datetime):
            when = at.timestamp()
        elif isinstance(at, int | float) and not isinstance(at, bool) and math.isfinite(at):
            when = float(at)
        else:
            raise ConfigError(f"at must be a datetime or seconds since the epoch, got {at!r}")
        left = when - time.time()
        return left if left > 0 else None
    if delay is None:
        return None
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not math.isfinite(delay):
        raise ConfigError(f"delay must be seconds (a number or timedelta), got {delay!r}")
    if delay < 0:
        raise ConfigError(f"delay must be >= 0 seconds, got {delay!r}")
    return float(delay) if delay > 0 else None


#: The options ``TaskOptions.build`` takes (``enqueue``'s keyword options).
OPTION_NAMES = frozenset(inspect.signature(_checked).parameters)
