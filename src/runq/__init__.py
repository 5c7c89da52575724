"""runq: a Python distributed task queue and dispatcher.

One machine needs no setup (an embedded SQLite file); many machines share a Redis server.
Same API, same semantics, both backends. See ``Controller`` to begin.
"""

from __future__ import annotations

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (dynamic version)

from runq.composition import sig
from runq.config import WorkerConfig
from runq.context import current_task, progress_update, task_rng
from runq.controller import Controller
from runq.defaults import (
    clear_default_controller,
    configure,
    get_default_controller,
    set_default_controller,
)
from runq.environment import envir
from runq.exceptions import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    MessageError,
    PayloadError,
    PayloadRejected,
    Retry,
    RunqError,
    SchemaVersionMismatch,
    SerializationError,
    TaskError,
    TaskStateError,
    UnknownNamespaceError,
    UnknownTaskError,
    UnknownValueError,
    WaitTimeout,
    WorkerDied,
)
from runq.executor import Executor
from runq.models import (
    LogEntry,
    Schedule,
    TaskInfo,
    TaskPage,
    TaskStatus,
    TaskSummary,
    TaskTimes,
    WorkerStatus,
)
from runq.namespaces import namespaces
from runq.task import TaskRef, TaskRegistry, task
from runq.workers import WorkerManager

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "ConfigError",
    "Controller",
    "Executor",
    "LogEntry",
    "MessageError",
    "PayloadError",
    "PayloadRejected",
    "Retry",
    "RunqError",
    "Schedule",
    "SchemaVersionMismatch",
    "SerializationError",
    "TaskError",
    "TaskInfo",
    "TaskPage",
    "TaskRef",
    "TaskRegistry",
    "TaskStateError",
    "TaskStatus",
    "TaskSummary",
    "TaskTimes",
    "UnknownNamespaceError",
    "UnknownTaskError",
    "UnknownValueError",
    "WaitTimeout",
    "WorkerConfig",
    "WorkerDied",
    "WorkerManager",
    "WorkerStatus",
    "__version__",
    "clear_default_controller",
    "configure",
    "current_task",
    "envir",
    "get_default_controller",
    "namespaces",
    "progress_update",
    "set_default_controller",
    "sig",
    "task",
    "task_rng",
]
