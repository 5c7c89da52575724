"""The public surface is declared once (``runq.__all__``) and pinned here."""

from __future__ import annotations

import runq
from runq import TaskStatus, WorkerStatus

EXPECTED = {
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
    "TaskStateError",
    "TaskRef",
    "TaskRegistry",
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
}


def test_all_is_pinned() -> None:
    assert set(runq.__all__) == EXPECTED
    for name in runq.__all__:
        assert hasattr(runq, name), name


def test_statuses_equal_their_names() -> None:
    names = [
        "PENDING",
        "DEFERRED",
        "RUNNING",
        "COMPLETE",
        "ERROR",
        "CANCELLED",
        "DIED",
        "TIMEOUT",
        "IMPOSSIBLE",
        "MOVED",
        "MISSING",
        "DISCARDED",
        "SCHEDULED",
    ]
    assert [s.value for s in TaskStatus] == names
    for name in names:
        assert TaskStatus[name] == name
    assert [s.value for s in WorkerStatus] == ["IDLE", "BUSY", "PAUSED", "EXITED", "LOST"]


def test_exception_tree() -> None:
    assert issubclass(runq.WaitTimeout, TimeoutError)
    assert issubclass(runq.WaitTimeout, runq.RunqError)
    assert issubclass(runq.BackendUnavailable, runq.BackendError)
    assert issubclass(runq.SchemaVersionMismatch, runq.BackendError)
    assert issubclass(runq.PayloadRejected, runq.PayloadError)
    assert issubclass(runq.SerializationError, runq.PayloadError)
    assert issubclass(runq.UnknownNamespaceError, runq.ConfigError)
    assert issubclass(runq.UnknownValueError, KeyError)
    assert issubclass(runq.UnknownValueError, runq.RunqError)
    assert str(runq.UnknownValueError("no value h")) == "no value h"
    assert issubclass(runq.WorkerDied, runq.RunqError)
    assert "WorkerDied" in (runq.exceptions.__doc__ or "")  # drawn in the tree
    err = runq.TaskError("ValueError", "bad", "Traceback ...")
    assert (err.type, err.message, err.traceback) == ("ValueError", "bad", "Traceback ...")
    assert isinstance(err, runq.RunqError)


def test_worker_config_validates() -> None:
    import math

    import pytest

    cfg = runq.WorkerConfig(queues=("high", "low"))
    assert cfg.queues == ("high", "low", "default")
    assert runq.WorkerConfig.from_json(cfg.to_json()) == cfg
    assert runq.WorkerConfig().timeout_idle == math.inf
    with pytest.raises(runq.ConfigError, match="poll_queue"):
        runq.WorkerConfig(poll_queue=0)
    with pytest.raises(runq.ConfigError, match="max_tasks"):
        runq.WorkerConfig(max_tasks=0)
    with pytest.raises(runq.ConfigError, match="timeout_idle"):
        runq.WorkerConfig(timeout_idle=-1)
    with pytest.raises(TypeError, match="colour"):
        runq.WorkerConfig(colour=1)  # type: ignore[call-arg]
