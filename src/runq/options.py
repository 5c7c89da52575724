"""Validation of per-task options, shared by ``Controller.enqueue*`` and the ``@task`` front end.

Every bad value is a ``ConfigError`` that names the option and the value."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runq.exceptions import ConfigError

__all__ = ["DUPLICATE_POLICIES", "TaskOptions", "as_id_list", "new_task_id", "seconds"]

DUPLICATE_POLICIES = ("parallel", "discard", "serial", "queue_one")


def new_task_id() -> str:
    """A fresh task id: 32 hex characters."""
    return os.urandom(16).hex()


def seconds(name: str, value: float | timedelta | None) -> float | None:
    """``value`` in seconds (None stays None); a ``ConfigError`` naming ``name`` if invalid."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be seconds (a number or timedelta), got {value!r}")
    if math.isnan(value) or value <= 0:
        raise ConfigError(f"{name} must be > 0 seconds, got {value!r}")
    return float(value)


def as_id_list(ids: str | Iterable[str] | None, what: str = "ids") -> list[str]:
    """One id or many, as a list of str."""
    if ids is None:
        return []
    if isinstance(ids, str):
        return [ids]
    out = list(ids)
    for item in out:
        if not isinstance(item, str):
            raise ConfigError(f"{what} must be task id strings, got {item!r}")
    return out


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """The validated options of one submission."""

    queue: str = "default"
    timeout_s: float | None = None
    retries: int = 0
    retry_on: tuple[type[BaseException], ...] = ()
    retry_backoff_s: float = 1.0
    separate_process: bool = False
    name: str | None = None
    on_duplicate: str = "parallel"
    seed: int | None = None

    @classmethod
    def build(
        cls,
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
    ) -> TaskOptions:
        """Validate every option; ``ConfigError`` names the first bad one."""
        queue = "default" if queue is None else queue
        if not isinstance(queue, str) or not queue or len(queue) > 200:
            raise ConfigError(f"queue must be a non-empty string, got {queue!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"retries must be an int >= 0, got {retries!r}")
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        retry_on = tuple(retry_on)
        for exc_type in retry_on:
            if not (isinstance(exc_type, type) and issubclass(exc_type, BaseException)):
                raise ConfigError(f"retry_on must hold exception types, got {exc_type!r}")
        backoff = seconds("retry_backoff", retry_backoff)
        if not isinstance(separate_process, bool):
            raise ConfigError(f"separate_process must be True or False, got {separate_process!r}")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"name must be a string, got {name!r}")
        if on_duplicate not in DUPLICATE_POLICIES:
            raise ConfigError(
                f"on_duplicate must be one of {', '.join(DUPLICATE_POLICIES)}; got {on_duplicate!r}"
            )
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed must be an int, got {seed!r}")
        return cls(
            queue=queue,
            timeout_s=seconds("timeout", timeout),
            retries=retries,
            retry_on=retry_on,
            retry_backoff_s=backoff if backoff is not None else 1.0,
            separate_process=separate_process,
            name=name,
            on_duplicate=on_duplicate,
            seed=seed,
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON-able options stored with the task (``retry_on`` travels in the payload)."""
        return {
            "timeout": self.timeout_s,
            "retries": self.retries,
            "retry_on": [t.__qualname__ for t in self.retry_on],
            "retry_backoff": self.retry_backoff_s,
            "separate_process": self.separate_process,
            "name": self.name,
            "on_duplicate": self.on_duplicate,
            "seed": self.seed,
        }
