"""Fault tolerance end to end, on both backends, with real worker processes and real kills:
heartbeats and lost workers, automatic retry, retry_on with back-off, manual retry (MOVED and
follow), cancel of running tasks, timeouts, separate processes and task logs, worker limits,
remote kill, and a worker coming back after it was marked LOST."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

import runq
import taskfns
from helpers import gone, until
from runq import TaskStatus, WorkerConfig
from runq.exceptions import ConfigError, TaskStateError

T = TypeVar("T")
Spawn = Callable[..., runq.WorkerManager]
FAST: dict[str, Any] = {"poll_process": 0.05, "poll_queue": 0.2}


def started(ctl: runq.Controller, tid: str) -> None:
    until(lambda: ctl.status(tid) is TaskStatus.RUNNING, what=f"{tid} RUNNING")


# ---------------------------------------------------------------------------- heartbeats
@pytest.mark.parametrize("retries", [0, 1])
def test_sigkilled_worker_is_detected_and_its_task_died_or_requeued(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path, retries: int
) -> None:
    manager = spawn(1, config=WorkerConfig(heartbeat_period=0.3, **FAST))
    wid = manager.ids[0]
    first = tmp_path / "first-run"
    tid = ctl.enqueue(
        taskfns.touch_then_wait, args=(str(first), str(tmp_path / "never"), 60), retries=retries
    )
    dependant = ctl.enqueue(taskfns.identity, args=(1,), depends_on=tid)
    until(first.exists, what="task started")
    os.kill(manager.pids[wid], signal.SIGKILL)
    killed_at = time.monotonic()
    lost = until(ctl.workers.detect_exited, what="lost worker detected")
    assert lost == [wid]
    assert time.monotonic() - killed_at < 3 * 0.3 + 5  # 3 x period + one poll, loaded CI
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.LOST}
    assert ctl.workers.detect_exited() == []
    if retries == 0:
        assert ctl.status([tid, dependant]) == [TaskStatus.DIED, TaskStatus.IMPOSSIBLE]
        return
    assert ctl.status(tid) is TaskStatus.PENDING
    assert ctl.position(tid) == 1  # at the front of its queue
    (tmp_path / "never").touch()
    spawn(1, config=WorkerConfig(**FAST))
    assert ctl.wait([tid, dependant], timeout=60, progress=False)
    assert ctl.info(tid).attempts == 2
    assert ctl.info(tid).chain == (tid,)  # same id


def test_workers_detect_lost_workers_themselves(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    manager = spawn(2, config=WorkerConfig(heartbeat_period=0.2, **FAST))
    flag = tmp_path / "started"
    tid = ctl.enqueue(
        taskfns.touch_then_wait, args=(str(flag), str(tmp_path / "release"), 60), retries=1
    )
    until(flag.exists)
    holder = ctl.info(tid).worker_id
    assert holder is not None
    os.kill(manager.pids[holder], signal.SIGKILL)
    # Released only once the holder (and so its task process) is dead: released sooner, its
    # task process could finish and store the task before the kill reached it.
    until(lambda: gone(manager.pids[holder]), what="killed worker gone")
    (tmp_path / "release").touch()  # the re-run finishes at once
    assert ctl.wait(tid, timeout=60, progress=False)  # re-run by the surviving worker
    assert ctl.workers.status([holder])[holder] is runq.WorkerStatus.LOST
    assert ctl.info(tid).attempts == 2
    assert ctl.info(tid).worker_id != holder


def test_a_dead_duty_holder_is_judged_and_its_duties_taken_over(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    # The first worker, alone, takes the namespace's duty lease (lost workers, due tasks,
    # schedules); killed, its lease lapses and the second worker takes the duties over: it
    # judges the first LOST (no controller asks) and starts delayed tasks.
    config = WorkerConfig(heartbeat_period=0.2, **FAST)
    first = spawn(1, config=config)
    wid = first.ids[0]
    assert ctl.wait(ctl.enqueue(taskfns.add, args=(1, 2)), timeout=60, progress=False)
    second = spawn(1, config=config)
    os.kill(first.pids[wid], signal.SIGKILL)
    until(lambda: gone(first.pids[wid]), what="killed worker gone")
    until(
        lambda: ctl.workers.status([wid])[wid] is runq.WorkerStatus.LOST,
        timeout_s=60,
        what="the dead worker judged LOST by the other",
    )
    tid = ctl.enqueue(taskfns.add, args=(2, 3), delay=0.2)
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.info(tid).worker_id == second.ids[0]


# ---------------------------------------------------------------------------- retry_on
def test_retry_on_reruns_after_backoff_until_it_succeeds(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    counter = str(tmp_path / "count")
    tid = ctl.enqueue(
        taskfns.fail_times, args=(counter, 2), retries=3, retry_on=ValueError, retry_backoff=0.05
    )
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.result(tid) == "ok"
    assert ctl.info(tid).attempts == 3
    assert Path(counter).read_text() == "3"


def test_retry_on_waits_in_the_backend_and_shows_in_info(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    counter = str(tmp_path / "count")
    tid = ctl.enqueue(
        taskfns.fail_times,
        args=(counter, 1),
        retries=1,
        retry_on=(KeyError, ValueError),
        retry_backoff=3.0,
    )

    def delayed() -> float | None:  # info() reads the record and the chain one after the other
        info = ctl.info(tid)
        return info.extra.get("retry_at") if info.status is TaskStatus.PENDING else None

    assert until(delayed, what="delayed") > ctl.backend.now()
    assert ctl.wait(tid, timeout=60, progress=False)
    assert "retry_at" not in ctl.info(tid).extra


def test_retries_exhausted_or_other_exception_is_error(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    a = ctl.enqueue(
        taskfns.fail_times,
        args=(str(tmp_path / "a"), 5),
        retries=1,
        retry_on=ValueError,
        retry_backoff=0.01,
    )
    b = ctl.enqueue(taskfns.fail_times, args=(str(tmp_path / "b"), 5), retries=3, retry_on=KeyError)
    assert not ctl.wait([a, b], timeout=60, progress=False)
    assert ctl.status([a, b]) == [TaskStatus.ERROR, TaskStatus.ERROR]
    assert ctl.info(a).attempts == 2
    assert ctl.info(b).attempts == 1
    assert ctl.result(a).type == "ValueError"


# ---------------------------------------------------------------------------- timeouts
def test_timeout_stops_any_task_and_the_worker_carries_on(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    manager = spawn(1, config=WorkerConfig(timeout_process_die=1, **FAST))
    slow = ctl.enqueue(taskfns.sleep_for, args=(60,), timeout=0.5)
    after = ctl.enqueue(taskfns.square, args=(7,))
    assert not ctl.wait([slow, after], timeout=60, progress=False)
    assert ctl.status([slow, after]) == [TaskStatus.TIMEOUT, TaskStatus.COMPLETE]
    error = ctl.result(slow)
    assert error.type == "TimeoutError"
    assert ctl.result(after) == 49
    assert all(manager.is_alive().values())


# ---------------------------------------------------------------------------- a task's process dies
@pytest.mark.parametrize("retries", [0, 1])
def test_task_whose_process_dies_ends_died_with_worker_died_and_the_worker_carries_on(
    ctl: runq.Controller, spawn: Spawn, retries: int
) -> None:
    manager = spawn(1, config=WorkerConfig(**FAST))
    dies = ctl.enqueue(os._exit, args=(3,), retries=retries)  # the task's process exits under it
    after = ctl.enqueue(taskfns.square, args=(7,))
    assert not ctl.wait([dies, after], timeout=60, progress=False)
    assert ctl.status([dies, after]) == [TaskStatus.DIED, TaskStatus.COMPLETE]
    assert ctl.info(dies).attempts == retries + 1  # a death is retried while retries are left
    error = ctl.result(dies)
    assert isinstance(error, runq.TaskError) and error.type == "WorkerDied"
    assert error.message == "the task's process exited with code 3"
    assert ctl.result(after) == 49
    assert all(manager.is_alive().values())


def test_timeout_counts_as_timeout_error_for_retry_on(ctl: runq.Controller, spawn: Spawn) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    tid = ctl.enqueue(
        taskfns.sleep_for,
        args=(60,),
        timeout=0.3,
        retries=1,
        retry_on=TimeoutError,
        retry_backoff=0.01,
    )
    assert not ctl.wait(tid, timeout=60, progress=False)
    assert ctl.status(tid) is TaskStatus.TIMEOUT
    assert ctl.info(tid).attempts == 2


# ---------------------------------------------------------------------------- cancel
def test_cancel_running_task_stops_it(ctl: runq.Controller, spawn: Spawn, tmp_path: Path) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    flag = tmp_path / "started"
    tid = ctl.enqueue(taskfns.touch_then_wait, args=(str(flag), str(tmp_path / "never"), 60))
    dependant = ctl.enqueue(taskfns.identity, args=(1,), depends_on=tid)
    after = ctl.enqueue(taskfns.square, args=(3,))
    until(flag.exists)
    assert ctl.cancel(tid, wait=True, timeout=30) is True
    assert ctl.status([tid, dependant]) == [TaskStatus.CANCELLED, TaskStatus.IMPOSSIBLE]
    assert ctl.wait(after, timeout=60, progress=False)  # the worker carries on
    with pytest.raises(TaskStateError):
        ctl.cancel(tid)


def test_cancel_pending_and_separate_process_running(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    flag = tmp_path / "started"
    tid = ctl.enqueue(
        taskfns.touch_then_wait,
        args=(str(flag), str(tmp_path / "never"), 60),
        separate_process=True,
    )
    queued = ctl.enqueue(taskfns.square, args=(3,))
    until(flag.exists)
    assert ctl.cancel(queued) is True
    assert ctl.cancel(tid, timeout=30) is True
    assert ctl.status([tid, queued]) == [TaskStatus.CANCELLED, TaskStatus.CANCELLED]


# ---------------------------------------------------------------------------- manual retry
def test_manual_retry_moves_and_follows(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path, backend_url: str, namespace: str
) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    fixed = tmp_path / "fixed"
    old = ctl.enqueue(taskfns.fail_unless, args=(str(fixed),))
    assert not ctl.wait(old, timeout=60, progress=False)
    with pytest.raises(TaskStateError):
        ctl.retry(ctl.enqueue(taskfns.sleep_for, args=(0,), queue="nobody"))
    fixed.touch()
    new = ctl.retry(old)
    assert isinstance(new, str) and new != old
    assert ctl.wait(old, timeout=60, progress=False)  # follows to the new id
    assert ctl.status(old) is TaskStatus.COMPLETE
    assert ctl.status(old, follow=False) is TaskStatus.MOVED
    assert ctl.result(old) == "fixed"
    assert ctl.result(old, follow=False).type == "ValueError"  # the original outcome
    assert ctl.times(old).finished == ctl.times(new).finished
    info_old, info_new = ctl.info(old), ctl.info(new)
    assert (info_old.status, info_old.moved_to, info_old.moved_from) == (
        TaskStatus.MOVED,
        new,
        None,
    )
    assert (info_new.moved_from, info_new.moved_to) == (old, None)
    assert info_old.chain == info_new.chain == (old, new)
    newer = ctl.retry([old])  # follows to the newest, which it retries
    assert ctl.info(newer[0]).chain == (old, new, newer[0])
    with runq.Controller(namespace, backend_url, follow=False) as plain:
        assert plain.status(old) is TaskStatus.MOVED
        assert plain.status(old, follow=True) in (
            TaskStatus.PENDING,
            TaskStatus.RUNNING,
            TaskStatus.COMPLETE,
        )


# ------------------------------------------------------------------ separate process, logs
def test_separate_process_logs_and_environment(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    logdir = tmp_path / "task-logs"
    manager = spawn(1, config=WorkerConfig(logdir=str(logdir), **FAST))
    wid = manager.ids[0]
    queued_elsewhere = ctl.enqueue(taskfns.silent, queue="nobody")
    assert ctl.log(queued_elsewhere) is None  # not started: no output yet
    sep = ctl.enqueue(taskfns.chatty, args=("hello",), separate_process=True)
    warm1 = ctl.enqueue(taskfns.chatty, args=("warm",))
    warm2 = ctl.enqueue(taskfns.silent)
    assert ctl.wait([sep, warm1, warm2], timeout=60, progress=False)
    out = ctl.result(sep)
    assert out["RUNQ_TASK_ID"] == sep and out["RUNQ_WORKER_ID"] == wid
    assert out["pid"] not in (manager.pids[wid], ctl.result(warm1)["pid"])
    assert ctl.result(warm1)["pid"] == ctl.result(warm2)  # the warm child is reused
    assert ctl.log(sep) == ["hello", "err: hello"]
    assert ctl.log(warm1) == ["warm", "err: warm"]
    assert ctl.log(warm2) == []


def test_log_without_logdir_is_an_error(ctl: runq.Controller, spawn: Spawn) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    tid = ctl.enqueue(taskfns.silent)
    assert ctl.wait(tid, timeout=60, progress=False)
    with pytest.raises(ConfigError, match="logdir"):
        ctl.log(tid)


# ---------------------------------------------------------------------------- limits, kill
def test_walltime_exits_cleanly_never_mid_task(ctl: runq.Controller, spawn: Spawn) -> None:
    manager = spawn(1, config=WorkerConfig(walltime=0.5, **FAST))
    wid = manager.ids[0]
    tid = ctl.enqueue(taskfns.sleep_for, args=(1.0, "done"))
    assert ctl.wait(tid, timeout=60, progress=False)
    until(lambda: not manager.is_alive()[wid], what="worker exit")
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.EXITED}
    last = ctl.workers.log_tail([wid], n=1)[0]
    assert (last.command, last.message) == ("STOP", "walltime (0.5 s) reached")


@pytest.mark.parametrize("retries", [0, 1])
def test_remote_kill_stops_worker_and_releases_its_task(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path, retries: int
) -> None:
    manager = spawn(1, config=WorkerConfig(**FAST))
    wid = manager.ids[0]
    flag = tmp_path / "started"
    tid = ctl.enqueue(
        taskfns.touch_then_wait, args=(str(flag), str(tmp_path / "never"), 60), retries=retries
    )
    until(flag.exists)
    ctl.workers.stop([wid], type="kill", timeout=30)
    until(lambda: not manager.is_alive()[wid], what="worker exit")
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.EXITED}
    expected = TaskStatus.PENDING if retries else TaskStatus.DIED
    assert ctl.status(tid) is expected


def test_idle_remote_kill(ctl: runq.Controller, spawn: Spawn) -> None:
    manager = spawn(2, config=WorkerConfig(**FAST))
    ctl.workers.stop(type="kill", timeout=30)
    until(lambda: not any(manager.is_alive().values()), what="workers exit")
    assert ctl.workers.list() == []


# ---------------------------------------------------------------------------- partitions
def test_worker_marked_lost_drops_its_stale_result_and_reregisters(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    first = spawn(1, config=WorkerConfig(heartbeat_period=0.2, **FAST))
    wid, pid = first.ids[0], first.pids[first.ids[0]]
    flag, release = tmp_path / "started", tmp_path / "release"
    tid = ctl.enqueue(taskfns.touch_then_wait, args=(str(flag), str(release), 60), retries=1)
    until(flag.exists)
    os.kill(pid, signal.SIGSTOP)  # a partition: the worker stops talking
    try:
        assert until(ctl.workers.detect_exited) == [wid]
        flag.unlink()
        second = spawn(1, config=WorkerConfig(**FAST))
        until(flag.exists, what="re-run started")
        assert ctl.info(tid).worker_id == second.ids[0]
    finally:
        os.kill(pid, signal.SIGCONT)
    release.touch()
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.info(tid).worker_id == second.ids[0]
    until(lambda: f"{wid}-r2" in ctl.workers.list(), what="re-registration")
    commands = [e.command for e in ctl.workers.log_tail([wid], n=0)]
    assert "TASK_COMPLETE" not in commands
