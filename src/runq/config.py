"""Worker configs: ``WorkerConfig`` (how a worker runs, validated when it is made) and the
name of the config a worker uses unless told otherwise (``DEFAULT_CONFIG_NAME``).

Shared by both sides: the controller saves, reads and passes configs (``ctl.workers``, the
CLI) and the worker runs by one (``runq.worker``), so it lives outside both.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from runq.exceptions import ConfigError

__all__ = ["DEFAULT_CONFIG_NAME", "MAX_CONCURRENCY", "WorkerConfig", "check_hook_names"]

DEFAULT_CONFIG_NAME = "localhost"
#: The most tasks one worker may run at once (``WorkerConfig.concurrency``).
MAX_CONCURRENCY = 10_000
_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_HOOK_NAME = re.compile(rf"{_DOTTED}:{_DOTTED}")


def check_hook_names(value: object) -> tuple[str, ...]:
    """Hook names (``WorkerConfig.hooks``) as a tuple; a ``ConfigError`` names a bad one."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple):
        raise ConfigError(
            f"WorkerConfig.hooks must be a tuple of 'pkg.mod:obj' names, got {value!r}"
        )
    for name in value:
        if not isinstance(name, str) or not _HOOK_NAME.fullmatch(name):
            raise ConfigError(
                f"WorkerConfig.hooks: {name!r} is not an importable name: write 'pkg.mod:obj' "
                "(a module, a colon, an object of that module)"
            )
    return tuple(value)


def _seconds(
    name: str, value: object, *, allow_none: bool, allow_inf: bool = False
) -> float | None:
    if value is None:
        if allow_none:
            return None
        raise ConfigError(f"WorkerConfig.{name} must be a number of seconds, not None")
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"WorkerConfig.{name} must be seconds (float or timedelta), got {value!r}"
        )
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (math.isinf(seconds) and not allow_inf):
        raise ConfigError(f"WorkerConfig.{name} must be a non-negative number, got {value!r}")
    return seconds


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerConfig:
    """How a worker runs.

    ``queues`` are listened to in the order given (earlier = higher priority); "default" is
    appended when missing. ``logdir`` keeps each task's stdout/stderr (``ctl.log``).
    Times are seconds (or ``timedelta``): ``timeout_idle`` is how long the worker may sit idle
    before it exits, ``walltime`` how long it may live (never exiting mid-task), ``max_tasks``
    how many tasks it runs. An idle worker does not poll: it blocks on a wake-up (a task pushed
    to its queues, a message, the controller's kill or cancel, a signal) and sends nothing
    meanwhile but its heartbeat. ``poll_queue`` no longer paces that wait: the longest an idle
    worker waits before it looks at its queues anyway (a safety net against a lost wake-up) is
    ``max(poll_queue, 60 s)``; longer times here do not increase the time a worker takes to
    see a new task, a message or a request.
    ``heartbeat_period`` (default 5 s): the worker keeps a heartbeat that lapses after
    3 x period, so a worker killed by SIGKILL or the OOM killer is judged LOST and its task
    re-queued or DIED within about 15 s; ``None`` turns heartbeats off explicitly (the worker
    is then never judged lost, and a task it held when it died stays RUNNING).
    ``poll_process``: how often a running task is looked at without a wake-up (its timeout, a
    cancel or kill request, a signal wake the worker at once, so longer times here do not
    delay them), and, without heartbeats, how often the control thread does the fleet-wide
    duties; ``timeout_process_die``: how long a task's process gets between SIGTERM and
    SIGKILL when it is stopped. Every period and poll must be > 0.
    ``concurrency`` (default 1): how many ``async def`` tasks the worker runs at once on the
    event loop of its task process; every one is claimed against this worker. ``hooks``:
    ``"pkg.mod:obj"`` names of objects whose ``on_worker_start(worker_info)``,
    ``on_worker_stop(worker_info)``, ``before_task(ctx)`` and
    ``after_task(ctx, status, result_or_error)`` the worker calls (names, not objects, so that
    a saved config stays JSON; see ``runq.worker.hooks`` for where and when they run).
    """

    queues: tuple[str, ...] = ("default",)
    verbose: bool = True
    logdir: str | None = None
    poll_queue: float = 1.0
    timeout_idle: float = math.inf
    poll_process: float = 1.0
    timeout_process_die: float = 2.0
    heartbeat_period: float | None = 5.0
    max_tasks: int | None = None
    walltime: float | None = None
    allow_eval: bool = False
    concurrency: int = 1
    hooks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        queues = self.queues
        if isinstance(queues, str):
            queues = (queues,)
        if not all(isinstance(q, str) and q for q in queues):
            raise ConfigError(f"WorkerConfig.queues must be non-empty strings, got {queues!r}")
        queues = tuple(dict.fromkeys(queues))
        if "default" not in queues:
            queues = (*queues, "default")
        set_ = object.__setattr__
        set_(self, "queues", queues)
        set_(self, "poll_queue", _seconds("poll_queue", self.poll_queue, allow_none=False))
        set_(
            self,
            "timeout_idle",
            _seconds("timeout_idle", self.timeout_idle, allow_none=False, allow_inf=True),
        )
        set_(self, "poll_process", _seconds("poll_process", self.poll_process, allow_none=False))
        set_(
            self,
            "timeout_process_die",
            _seconds("timeout_process_die", self.timeout_process_die, allow_none=False),
        )
        set_(
            self,
            "heartbeat_period",
            _seconds("heartbeat_period", self.heartbeat_period, allow_none=True),
        )
        set_(self, "walltime", _seconds("walltime", self.walltime, allow_none=True))
        for name in ("poll_queue", "poll_process", "heartbeat_period", "walltime"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                hint = " (None turns heartbeats off)" if name == "heartbeat_period" else ""
                raise ConfigError(f"WorkerConfig.{name} must be > 0 seconds, got {value!r}{hint}")
        if self.max_tasks is not None and (
            isinstance(self.max_tasks, bool)
            or not isinstance(self.max_tasks, int)
            or self.max_tasks < 1
        ):
            raise ConfigError(
                f"WorkerConfig.max_tasks must be a positive int, got {self.max_tasks!r}"
            )
        if (
            isinstance(self.concurrency, bool)
            or not isinstance(self.concurrency, int)
            or not 1 <= self.concurrency <= MAX_CONCURRENCY
        ):
            raise ConfigError(
                f"WorkerConfig.concurrency must be an int from 1 to {MAX_CONCURRENCY}, "
                f"got {self.concurrency!r}"
            )
        set_(self, "hooks", check_hook_names(self.hooks))
        for flag in ("verbose", "allow_eval"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"WorkerConfig.{flag} must be True or False")
        if self.logdir is not None and not isinstance(self.logdir, str):
            set_(self, "logdir", str(self.logdir))

    def to_json(self) -> str:
        """The config as JSON (``math.inf`` as null for ``timeout_idle``)."""
        data: dict[str, Any] = dataclasses.asdict(self)
        if math.isinf(data["timeout_idle"]):
            data["timeout_idle"] = None
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        """Rebuild a config from ``to_json``; unknown fields are a ``ConfigError``."""
        data = json.loads(text)
        if data.get("timeout_idle") is None:
            data["timeout_idle"] = math.inf
        data["queues"] = tuple(data.get("queues", ("default",)))
        if "hooks" in data and isinstance(data["hooks"], list):
            data["hooks"] = tuple(data["hooks"])
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"bad worker config: {exc}") from exc
