"""``runq.Executor`` on both backends (CPython's generic suite: test_executor_cpython.py)."""

from __future__ import annotations

import concurrent.futures
import threading
from pathlib import Path

import pytest

import runq
import taskfns
from runq import TaskStatus


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


def test_max_workers_must_be_positive(ctl: runq.Controller) -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        runq.Executor(ctl, max_workers=0)
    with pytest.raises(runq.ConfigError, match="queue"):
        runq.Executor(ctl, queue="")


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
