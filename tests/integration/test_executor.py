"""``runq.Executor`` on both backends (CPython's generic suite: test_executor_cpython.py)."""

from __future__ import annotations

import concurrent.futures
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runq
import taskfns
from runq import TaskStatus
from runq.executor import BrokenExecutor
from runq.futures import TaskFuture


def task_id(fut: concurrent.futures.Future[Any]) -> str:
    """The runq task behind an Executor's future."""
    assert isinstance(fut, TaskFuture)
    return fut.task_id


def _hold(entered: threading.Event, gate: threading.Event) -> None:
    """A done callback that holds the completion thread until ``gate`` opens."""
    entered.set()
    gate.wait(60)


def test_submit_returns_a_real_future(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    with runq.Executor(ctl) as ex:
        fut = ex.submit(taskfns.add, 2, b=3)
        assert isinstance(fut, concurrent.futures.Future)
        seen = threading.Event()
        fut.add_done_callback(lambda f: seen.set())
        assert fut.result(timeout=30) == 5
        assert seen.wait(5)
        done, _ = concurrent.futures.wait([ex.submit(taskfns.square, i) for i in range(5)])
        assert sorted(f.result() for f in done) == [0, 1, 4, 9, 16]


def test_remote_exception_keeps_type_and_traceback(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    with runq.Executor(ctl) as ex:
        with pytest.raises(ValueError, match="kaput") as info:
            ex.submit(taskfns.fail, "kaput").result(timeout=30)
        assert isinstance(info.value.__cause__, runq.TaskError)
        assert any("taskfns.py" in note for note in info.value.__notes__)


def test_cancel_unqueues_a_pending_task(ctl: runq.Controller) -> None:
    ex = runq.Executor(ctl)  # no workers: the task stays queued
    fut = ex.submit(taskfns.add, 1)
    tid = ctl.list_tasks()[0]
    assert ctl.status(tid) is TaskStatus.PENDING
    assert fut.cancel() and fut.cancelled()
    assert ctl.status(tid) is TaskStatus.CANCELLED
    assert ctl.queues.length() == 0
    more = [ex.submit(taskfns.add, i) for i in range(5)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.cancelled() for f in more)
    assert ctl.overview() == {TaskStatus.CANCELLED: 6}
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(taskfns.add, 1)


def test_running_task_cannot_be_cancelled(
    ctl: runq.Controller, workers: runq.WorkerManager, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    with runq.Executor(ctl) as ex:
        fut = ex.submit(taskfns.touch_then_wait, str(started), str(release))
        ctl.wait(ctl.enqueue(taskfns.wait_for_file, (str(started),)), timeout=30)
        assert fut.cancel() is False
        release.touch()
        assert fut.result(timeout=30) == "released"


def test_map_in_order_with_chunks(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    with runq.Executor(ctl) as ex:
        assert list(ex.map(taskfns.add, range(7), range(7))) == [2 * i for i in range(7)]
        before = len(ctl.list_tasks())
        out = list(ex.map(taskfns.square, range(25), chunksize=10))
        assert out == [i * i for i in range(25)]
        assert len(ctl.list_tasks()) - before == 3  # one task per chunk
        with pytest.raises(ValueError):
            list(ex.map(taskfns.square, range(3), chunksize=0))


def test_executor_spawns_and_stops_its_workers(
    backend_url: str, namespace: str, tmp_path: Path
) -> None:
    with runq.Executor(namespace, workers=2, url=backend_url) as ex:
        assert ex.submit(taskfns.square, 7).result(timeout=30) == 49
        ctl = ex.controller
        assert len(ctl.workers.list()) == 2
    with runq.Controller(namespace, backend_url) as check:
        assert check.workers.list() == []
        check.backend.destroy()


def test_max_workers_must_be_positive(ctl: runq.Controller, backend_url: str) -> None:
    for bad in (0, -1):  # as ProcessPoolExecutor: ValueError, its words
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            runq.Executor(ctl, max_workers=bad)
        with pytest.raises(ValueError, match="max_workers must be greater than 0"):
            runq.Executor("elsewhere", url=backend_url, max_workers=bad)  # would spawn them
    for wrong in ("3", 1.5, True):
        with pytest.raises(runq.ConfigError, match="max_workers must be an int"):
            runq.Executor(ctl, max_workers=wrong)  # type: ignore[arg-type]
    with pytest.raises(runq.ConfigError, match="queue"):
        runq.Executor(ctl, queue="")


def test_initializer_runs_once_per_process_for_each_executor(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    tag_a, tag_b = "a-" + uuid.uuid4().hex, "b-" + uuid.uuid4().hex
    a = runq.Executor(ctl, initializer=taskfns.remember_init, initargs=(tag_a,))
    b = runq.Executor(ctl, initializer=taskfns.remember_init, initargs=[tag_b])
    with a, b:  # two executors sharing the same worker processes
        seen = [f.result(timeout=30) for f in [a.submit(taskfns.init_log) for _ in range(6)]]
        seen += [f.result(timeout=30) for f in [b.submit(taskfns.init_log) for _ in range(6)]]
        seen += list(a.map(taskfns.init_log, range(6)))
        chunked = list(b.map(taskfns.init_log, range(6), chunksize=3))  # chunks get it too
        assert len(chunked) == 6
        seen += chunked
    for _pid, log in seen:
        assert log.count(tag_a) <= 1 and log.count(tag_b) <= 1
    assert all(tag_a in log for _, log in seen[:6] + seen[12:18])
    assert all(tag_b in log for _, log in seen[6:12] + seen[18:])


def test_initializer_and_initargs_are_checked(ctl: runq.Controller) -> None:
    with pytest.raises(runq.ConfigError, match="initializer must be callable"):
        runq.Executor(ctl, initializer="taskfns.remember_init")  # type: ignore[arg-type]
    with pytest.raises(runq.ConfigError, match="initargs must be a tuple"):
        runq.Executor(ctl, initializer=taskfns.remember_init, initargs="abc")
    with pytest.raises(runq.ConfigError, match="without an initializer"):
        runq.Executor(ctl, initargs=(1,))
    with pytest.raises(runq.SerializationError, match="initializer"):
        runq.Executor(ctl, initializer=taskfns.remember_init, initargs=(threading.Lock(),))
    assert ctl.list_tasks() == []


def test_failing_initializer_breaks_the_executor(
    ctl: runq.Controller,
    spawn: Callable[..., runq.WorkerManager],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ex = runq.Executor(ctl, initializer=taskfns.init_fail, initargs=("bad init",))
    fs = [ex.submit(taskfns.add, i) for i in range(4)]  # all queued before any worker runs
    spawn(1, config=runq.WorkerConfig(max_tasks=1))  # runs the first only: the rest wait
    for fut in fs:  # as BrokenProcessPool: every outstanding future fails
        with pytest.raises(concurrent.futures.BrokenExecutor) as info:
            fut.result(timeout=60)
        assert isinstance(info.value, BrokenExecutor)
        assert "taskfns.init_fail raised ValueError: bad init" in str(info.value)
        assert isinstance(info.value.__cause__, runq.TaskError)
    ids = [task_id(f) for f in fs]
    assert ctl.status(ids) == [TaskStatus.ERROR] + [TaskStatus.CANCELLED] * 3  # unqueued
    with pytest.raises(BrokenExecutor, match="init_fail raised ValueError: bad init"):
        ex.submit(taskfns.add, 1)
    with pytest.raises(BrokenExecutor):
        ex.map(taskfns.add, [1])
    assert any("ValueError: bad init" in r.getMessage() for r in caplog.records)
    ex.shutdown()
    assert ctl.list_tasks() == ids


def test_completions_follow_the_backends_finish_order(
    ctl: runq.Controller, workers: runq.WorkerManager, tmp_path: Path
) -> None:
    entered, gate = threading.Event(), threading.Event()
    order: list[concurrent.futures.Future[Any]] = []
    failing: concurrent.futures.Future[Any]
    fine: concurrent.futures.Future[Any]
    first_file, fail_file, ok_file = tmp_path / "first", tmp_path / "fail", tmp_path / "ok"
    with runq.Executor(ctl) as ex:
        first = ex.submit(taskfns.wait_for_file, str(first_file))
        # holds the completion thread, so the next two finish before it looks again
        first.add_done_callback(lambda f: _hold(entered, gate))
        try:
            first_file.touch()
            assert entered.wait(30)
            failing = ex.submit(taskfns.wait_then_fail, str(fail_file))  # submitted first …
            fine = ex.submit(taskfns.wait_for_file, str(ok_file))  # … finishes first
            failing.add_done_callback(order.append)
            fine.add_done_callback(order.append)
            ok_file.touch()
            assert ctl.wait(task_id(fine), timeout=30)
            fail_file.touch()
            assert not ctl.wait(task_id(failing), timeout=30)
        finally:
            gate.set()
        done, _ = concurrent.futures.wait(
            [failing, fine], timeout=30, return_when=concurrent.futures.FIRST_EXCEPTION
        )
        # when wait(FIRST_EXCEPTION) returns, every future whose task had finished is done
        assert done == {failing, fine}
        assert order == [fine, failing]
        assert fine.result() == "released"


def test_futures_follow_cancels_and_deletes_made_elsewhere(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    """The completion thread learns of every way a task ends, not only of a worker's finish
    (on Redis, from the announcements, which carry each status)."""
    ex = runq.Executor(ctl)  # no worker yet: the tasks stay queued
    deleted, cancelled, kept = (ex.submit(taskfns.square, i) for i in (1, 2, 3))
    ctl.delete(task_id(deleted))
    assert ctl.cancel(task_id(cancelled))
    with pytest.raises(runq.TaskError, match="is MISSING"):
        deleted.result(timeout=30)
    assert concurrent.futures.wait([cancelled], timeout=30).done == {cancelled}
    assert cancelled.cancelled()
    spawn(1)
    assert kept.result(timeout=30) == 9
    ex.shutdown(wait=True)


def test_timeouts_say_what_and_how_long(ctl: runq.Controller) -> None:
    ex = runq.Executor(ctl)  # no workers: nothing finishes
    try:
        fut = ex.submit(taskfns.add, 1)
        with pytest.raises(
            runq.WaitTimeout, match=rf"task {task_id(fut)} did not finish within 0.1 s"
        ):
            fut.result(timeout=0.1)
        with pytest.raises(TimeoutError, match="not seen running yet"):
            fut.exception(timeout=0.1)
        with pytest.raises(runq.WaitTimeout, match=r"map: item 0 \(runq task \w+\) .* of 0.2 s"):
            list(ex.map(taskfns.add, [1, 2], timeout=0.2))
    finally:
        ex.shutdown(cancel_futures=True)


def test_a_tasks_own_timeout_error_is_kept(
    ctl: runq.Controller, workers: runq.WorkerManager, tmp_path: Path
) -> None:
    missing = str(tmp_path / "never")
    with runq.Executor(ctl) as ex:
        fut = ex.submit(taskfns.wait_for_file, missing, 0.01)
        with pytest.raises(TimeoutError, match="never") as info:
            fut.result(timeout=30)
        assert not isinstance(info.value, runq.WaitTimeout)
        assert isinstance(info.value.__cause__, runq.TaskError)
        assert isinstance(fut.exception(timeout=30), TimeoutError)


def test_one_completion_thread_for_many_futures(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    existing = set(threading.enumerate())
    with runq.Executor(ctl) as ex:
        ex.submit(taskfns.add, 0).result(timeout=30)
        mine = [t for t in set(threading.enumerate()) - existing if t.name == "runq-executor"]
        assert len(mine) == 1
        snapshot = set(threading.enumerate())
        fs = [ex.submit(taskfns.add, i) for i in range(40)]
        assert [f.result(timeout=30) for f in fs] == list(range(40))
        assert set(threading.enumerate()) - snapshot == set()  # no thread per future
    assert not mine[0].is_alive()  # joined by shutdown


def test_done_callbacks_may_submit_more(ctl: runq.Controller) -> None:
    ex = runq.Executor(ctl)  # no workers: tasks stay queued until cancelled
    follow_ups: list[concurrent.futures.Future[int]] = []
    first = ex.submit(taskfns.add, 1)
    first.add_done_callback(lambda f: follow_ups.append(ex.submit(taskfns.add, 2)))
    assert first.cancel()
    assert len(follow_ups) == 1
    ex.shutdown(cancel_futures=True)
    assert follow_ups[0].cancelled()
