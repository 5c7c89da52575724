"""Value types shared by every layer: statuses, task records, and what crosses the backend seam."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = [
    "FAILED_STATUSES",
    "FINISHED_STATUSES",
    "Blob",
    "ClaimedTask",
    "Limit",
    "LogEntry",
    "Message",
    "NewTask",
    "Schedule",
    "TaskInfo",
    "TaskPage",
    "TaskRecord",
    "TaskStatus",
    "TaskSummary",
    "TaskTimes",
    "WorkerStatus",
]


class TaskStatus(enum.StrEnum):
    """A task's status; each value equals its name (``TaskStatus.COMPLETE == "COMPLETE"``)."""

    PENDING = "PENDING"  # queued, waiting for a worker
    DEFERRED = "DEFERRED"  # waiting for its dependencies to COMPLETE
    RUNNING = "RUNNING"  # a worker holds it
    COMPLETE = "COMPLETE"  # finished, result stored
    ERROR = "ERROR"  # the function raised
    CANCELLED = "CANCELLED"  # cancelled by the controller
    DIED = "DIED"  # its worker died while running it
    TIMEOUT = "TIMEOUT"  # ran past its timeout
    IMPOSSIBLE = "IMPOSSIBLE"  # a dependency can never complete
    MOVED = "MOVED"  # retried by hand: see its newer id
    MISSING = "MISSING"  # unknown id
    DISCARDED = "DISCARDED"  # refused by an on_duplicate policy, never run
    SCHEDULED = "SCHEDULED"  # waiting for its due time (delay=, at=), then queued


class WorkerStatus(enum.StrEnum):
    """A worker's status."""

    IDLE = "IDLE"
    BUSY = "BUSY"
    PAUSED = "PAUSED"
    EXITED = "EXITED"
    LOST = "LOST"


#: Statuses after which a task will never change again by itself.
FINISHED_STATUSES = frozenset(
    {
        TaskStatus.COMPLETE,
        TaskStatus.ERROR,
        TaskStatus.CANCELLED,
        TaskStatus.DIED,
        TaskStatus.TIMEOUT,
        TaskStatus.IMPOSSIBLE,
        TaskStatus.MOVED,
        TaskStatus.MISSING,
        TaskStatus.DISCARDED,
    }
)

#: Statuses that make every dependant IMPOSSIBLE.
FAILED_STATUSES = frozenset(
    {
        TaskStatus.ERROR,
        TaskStatus.CANCELLED,
        TaskStatus.DIED,
        TaskStatus.TIMEOUT,
        TaskStatus.IMPOSSIBLE,
    }
)


class TaskTimes(NamedTuple):
    """Seconds since the epoch on the backend's clock; None where not reached."""

    submitted: float | None
    started: float | None
    finished: float | None


class LogEntry(NamedTuple):
    """One worker log event."""

    worker_id: str
    child: int | None
    time: float
    command: str
    message: str


class Blob(NamedTuple):
    """A value of the object store as it crosses the backend seam: its BLAKE2b-256 ``hash``
    (hex), its serialized bytes ``data`` (None when the value is offloaded: its bytes are in
    the file ``<offload_path>/<hash>``), and its ``size`` in bytes."""

    hash: str
    data: bytes | None
    size: int


class Limit(NamedTuple):
    """A named limit (``ctl.limits``): at most ``rate`` task starts (``"100/m"``: 100 in any
    minute) and at most ``concurrency`` tasks RUNNING at once, across every worker; None
    where it does not limit."""

    name: str
    rate: str | None
    concurrency: int | None


class Message(NamedTuple):
    """A message waiting for a worker (``ctl.messages.send``); ``args`` is the sealed value."""

    id: str
    command: str
    args: bytes


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task as the controller hands it to ``Backend.enqueue``.

    ``options`` is JSON-able; the backend stores it as is and reads only ``retries`` from it.
    ``payload`` is the signed, serialized call, opaque to the backend. ``blobs`` are the
    object-store values the payload refers to by hash (large arguments): ``enqueue`` stores
    them (a value already stored is kept, not written again) and tags them with the task id,
    in the same transition.
    """

    id: str
    queue: str
    payload: bytes
    options: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    blobs: tuple[Blob, ...] = ()
    #: Set when ``options["on_duplicate"]`` is not "parallel": the digest of (task name, args,
    #: kwargs) that makes two submissions duplicates (see ``Backend.enqueue``).
    dedup_key: str | None = None
    #: Seconds from now (the backend's clock) until the task is due (``enqueue(delay=)``):
    #: it is SCHEDULED until then. None: due at once. Every task of a batch has the same.
    delay_s: float | None = None


@dataclass(frozen=True, slots=True)
class ClaimedTask:
    """A task a worker has claimed: it is RUNNING and recorded against that worker."""

    id: str
    queue: str
    payload: bytes
    options: dict[str, Any]
    attempt: int  # 1 for the first run


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """Everything the backend stores about a task except its payload and result."""

    id: str
    status: TaskStatus
    queue: str
    options: dict[str, Any]
    worker_id: str | None
    pid: int | None
    depends_on: tuple[str, ...]
    dependants: tuple[str, ...]
    attempt: int
    times: TaskTimes


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """What ``Controller.info`` tells about a task."""

    id: str
    status: TaskStatus
    queue: str
    worker_id: str | None
    pid: int | None
    options: dict[str, Any]
    depends_on: tuple[str, ...]
    dependants: tuple[str, ...]
    moved_from: str | None
    moved_to: str | None
    chain: tuple[str, ...]
    times: TaskTimes
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class TaskSummary(NamedTuple):
    """One line of a task listing (``Controller.task_page``)."""

    id: str
    status: TaskStatus
    queue: str
    name: str | None  # the ``name=`` it was submitted with
    worker_id: str | None
    attempts: int
    times: TaskTimes
    fn: str | None = None  # what it runs: ``module.qualname`` (``eval …`` for an expression)


class TaskPage(NamedTuple):
    """One page of a namespace's tasks, newest first (``Controller.task_page``): pass
    ``after`` back for the next page; ``after`` is None once the oldest task was reached."""

    tasks: list[TaskSummary]
    after: int | None


@dataclass(frozen=True, slots=True)
class Schedule:
    """A periodic schedule (``ctl.schedules``): ``cron`` (a 5-field expression in
    ``timezone``) or ``every`` (seconds); its ``next_run`` and ``last_run`` (seconds since the
    epoch on the backend's clock; ``last_run`` None before its first tick), whether it is
    ``paused``, the id of the last task it created, its ``queue`` and the ``task`` it runs
    (the function's name)."""

    name: str
    cron: str | None
    every: float | None
    timezone: str
    next_run: float
    last_run: float | None
    paused: bool
    last_task_id: str | None
    queue: str = "default"
    task: str = ""
