"""Worker hooks (``WorkerConfig(hooks=...)``) and the retry helpers (``runq.Retry``,
``retry_on=Exception``), end to end on both backends with real worker processes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hookfns
import runq
import taskfns
from helpers import until
from runq import TaskStatus, WorkerConfig
from runq.exceptions import ConfigError

Spawn = Callable[..., runq.WorkerManager]
FAST: dict[str, Any] = {"poll_process": 0.05, "poll_queue": 0.2}


@pytest.fixture
def hook_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file the test hooks write to (the workers inherit the variable)."""
    path = tmp_path / "hooks.log"
    monkeypatch.setenv("RUNQ_TEST_HOOKS_FILE", str(path))
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# ---------------------------------------------------------------------------- hooks
def test_hooks_run_around_each_task_in_the_task_process(
    ctl: runq.Controller, spawn: Spawn, hook_file: Path
) -> None:
    manager = spawn(1, config=WorkerConfig(hooks=("hookfns:RecordingHooks",), **FAST))
    ok = ctl.enqueue(taskfns.add, (1, 2))
    bad = ctl.enqueue(taskfns.fail, ("nope",))
    db = ctl.enqueue(hookfns.db_of_worker)
    assert not ctl.wait([ok, bad, db], timeout=60, progress=False)
    assert ctl.status([ok, bad, db]) == [TaskStatus.COMPLETE, TaskStatus.ERROR, TaskStatus.COMPLETE]
    start = [line.split() for line in lines(hook_file) if line.startswith("start ")]
    assert len(start) == 1
    pid = start[0][2]
    assert ctl.result(db) == f"db-{pid}"  # what on_worker_start opened, seen by the task
    recorded = lines(hook_file)
    assert f"before {ok} {pid}" in recorded and f"after {ok} COMPLETE 3" in recorded
    after_bad = [line for line in recorded if line.startswith(f"after {bad} ERROR ")]
    assert after_bad and "ValueError('nope')" in after_bad[0]
    manager.stop(timeout=30)
    assert any(line.startswith("stop ") and line.endswith(pid) for line in lines(hook_file))


def test_before_task_that_raises_fails_the_task_and_not_the_worker(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    manager = spawn(1, config=WorkerConfig(hooks=("hookfns:FailingBefore",), **FAST))
    marker = tmp_path / "ran"
    tids = [ctl.enqueue(hookfns.touch, (str(marker),)) for _ in range(3)]
    assert not ctl.wait(tids, timeout=60, progress=False)
    assert ctl.status(tids) == [TaskStatus.ERROR] * 3
    error = ctl.result(tids[0])
    assert error.type == "HookError"
    assert "hookfns:FailingBefore.before_task raised RuntimeError: no database" in error.message
    assert "the task was not run" in error.message
    assert not marker.exists()
    assert ctl.workers.status(manager.ids) == {manager.ids[0]: runq.WorkerStatus.IDLE}


def test_other_hooks_that_raise_are_logged_and_tasks_run(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    manager = spawn(1, config=WorkerConfig(hooks=("hookfns:FailingElsewhere",), **FAST))
    tids = [ctl.enqueue(taskfns.add, (i, 1)) for i in range(3)]
    assert ctl.wait(tids, timeout=60, progress=False)
    assert ctl.results(tids) == [1, 2, 3]
    manager.stop(timeout=30)
    assert manager.exit_codes() == {manager.ids[0]: 0}


def test_hook_names_are_checked_and_saved_as_json(ctl: runq.Controller) -> None:
    config = WorkerConfig(hooks=["hookfns:RecordingHooks", "a.b:C.d"], concurrency=4)  # type: ignore[arg-type]
    assert config.hooks == ("hookfns:RecordingHooks", "a.b:C.d")
    ctl.workers.config_save("hooked", config)
    assert ctl.workers.config_read("hooked") == config
    for bad in ("hookfns", "hookfns:", ":x", "a b:c", 3):
        with pytest.raises(ConfigError, match="hooks"):
            WorkerConfig(hooks=(bad,))  # type: ignore[arg-type]
    for concurrency in (0, -1, 1.5, True, 10**6):
        with pytest.raises(ConfigError, match="concurrency"):
            WorkerConfig(concurrency=concurrency)  # type: ignore[arg-type]


def test_a_hook_that_cannot_be_imported_stops_the_worker_at_start(
    ctl: runq.Controller, backend_url: str, namespace: str, tmp_path: Path
) -> None:
    from runq.worker.loop import Worker

    config = WorkerConfig(hooks=("hookfns:NoSuchHooks",), verbose=False)
    worker = Worker(namespace, backend_url, worker_id="hookless_1", config=config)
    assert worker.run() == 1
    assert ctl.workers.list() == []  # nothing registered


# ---------------------------------------------------------------------------- runq.Retry
def test_retry_raised_by_a_task_runs_it_again_using_its_retries(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    counter = tmp_path / "count"
    tid = ctl.enqueue(hookfns.retry_times, (str(counter), 2), retries=2)
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.result(tid) == "done"
    assert ctl.info(tid).attempts == 3
    assert counter.read_text() == "3"


def test_retry_waits_its_delay_in_the_backend_and_shows_in_info(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    tid = ctl.enqueue(hookfns.retry_times, (str(tmp_path / "count"), 1, 2.0), retries=1)

    def delayed() -> float | None:
        info = ctl.info(tid)
        return info.extra.get("retry_at") if info.status is TaskStatus.PENDING else None

    assert until(delayed, what="waiting for its retry") > ctl.backend.now()
    assert ctl.info(tid).attempts == 1
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.info(tid).attempts == 2


def test_retry_without_retries_left_is_a_clear_error(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    none = ctl.enqueue(hookfns.retry_times, (str(tmp_path / "a"), 5))
    spent = ctl.enqueue(hookfns.retry_times, (str(tmp_path / "b"), 5, 0.0), retries=1)
    assert not ctl.wait([none, spent], timeout=60, progress=False)
    assert ctl.status([none, spent]) == [TaskStatus.ERROR, TaskStatus.ERROR]
    error = ctl.result(none)
    assert error.type == "Retry"
    assert "no retries left (retries=0" in error.message
    assert ctl.info(spent).attempts == 2
    assert "no retries left (retries=1" in ctl.result(spent).message


def test_retry_refuses_a_bad_delay() -> None:
    for bad in (-1, float("nan"), "1", True):
        with pytest.raises(ConfigError, match="Retry"):
            runq.Retry(delay=bad)  # type: ignore[arg-type]
    assert runq.Retry(delay=2).delay == 2.0


# ---------------------------------------------------------------------------- retry_on
def test_retry_on_exception_means_any_error(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    key = ctl.enqueue(
        hookfns.raise_key_error_once,
        (str(tmp_path / "k"),),
        retries=1,
        retry_on=Exception,
        retry_backoff=0.01,
    )
    exit_ = ctl.enqueue(
        hookfns.exit_once,
        (str(tmp_path / "e"),),
        retries=1,
        retry_on=Exception,
        retry_backoff=0.01,
    )
    assert ctl.wait([key, exit_], timeout=60, progress=False)
    assert ctl.results([key, exit_]) == ["second run", "second run"]
    assert [ctl.info(t).attempts for t in (key, exit_)] == [2, 2]


def test_retries_alone_do_not_retry_on_exceptions(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    tid = ctl.enqueue(taskfns.fail_times, (str(tmp_path / "c"), 1), retries=3)
    assert not ctl.wait(tid, timeout=60, progress=False)
    assert ctl.status(tid) is TaskStatus.ERROR
    assert ctl.info(tid).attempts == 1
