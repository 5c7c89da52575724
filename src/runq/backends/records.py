"""What the backend contract answers besides the task models of ``runq.models``: a worker's
record (``workers``), the controller's requests read by a heartbeat (``heartbeat``) and a
task's retry chain (``chain``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Chain", "Control", "ScheduleRecord", "WorkerRecord"]


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """What the backend stores about a worker."""

    worker_id: str
    status: str  # a WorkerStatus value
    info: dict[str, Any]  # JSON-able, as given to register_worker
    task_id: str | None  # the task it is running, if any
    started: float
    last_seen: float  # time of its last transition or heartbeat


@dataclass(frozen=True, slots=True)
class Control:
    """What ``heartbeat`` answers: the controller's requests to a worker."""

    active: bool  # False once the worker was marked LOST or EXITED (or is unknown)
    kill: bool = False  # exit at once
    cancel: str | None = None  # the id of its running task to stop
    #: False when the backend holds no record at all of the worker id (its namespace was
    #: destroyed, or the worker deleted): the worker should exit rather than register again.
    #: A worker marked LOST or EXITED is still known (``active=False, known=True``).
    known: bool = True


@dataclass(frozen=True, slots=True)
class Chain:
    """What ``chain`` answers about a task."""

    ids: tuple[str, ...]  # every id of its retry chain, oldest first
    retry_at: float | None = None  # due time of its delayed retry, if it waits for one


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    """What the backend stores about a periodic schedule (``schedules``, ``schedules_due``).

    ``spec`` is the controller's JSON text (timetable, queue, options), opaque to the backend;
    ``payload`` the sealed call (only ``schedules_due`` reads it; else None)."""

    name: str
    spec: str
    next_run: float
    last_run: float | None
    last_task_id: str | None
    paused: bool
    payload: bytes | None = None
