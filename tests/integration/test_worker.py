"""Real worker processes running tasks, on both backends."""

from __future__ import annotations

import itertools
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

import runq
import taskfns
from runq import TaskStatus, WorkerConfig


def test_tasks_run_and_results_come_back(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    ids = ctl.enqueue_bulk(taskfns.square, range(50))
    assert ctl.wait(ids, timeout=60, progress=False) is True
    assert ctl.results(ids) == [x * x for x in range(50)]
    assert ctl.result(ids[7]) == 49
    times = ctl.times(ids[0])
    assert times.submitted is not None and times.started is not None
    assert times.finished is not None
    assert times.submitted <= times.started <= times.finished
    info = ctl.info(ids[0])
    assert info.worker_id in workers.ids and info.pid in workers.pids.values()
    assert info.attempts == 1


def test_lambdas_closures_and_expressions(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    offset = 100
    t1 = ctl.enqueue(lambda x: x + offset, (1,))
    t2 = ctl.enqueue_expr("math.sqrt(a) + b", env={"math": math, "a": 16, "b": 1})
    t3 = ctl.enqueue_expr("len(s)", env={"s": "abcd"})
    t4s = ctl.enqueue_bulk_expr("x * y", [{"x": 2}, {"x": 3}], env={"y": 10})
    assert ctl.wait([t1, t2, t3, *t4s], timeout=60, progress=False)
    assert ctl.results([t1, t2, t3, *t4s]) == [101, 5.0, 4, 20, 30]


def test_task_error_carries_type_message_and_traceback(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    tid = ctl.enqueue(taskfns.fail, ("kaput",))
    assert ctl.wait(tid, timeout=60, progress=False) is False
    assert ctl.status(tid) is TaskStatus.ERROR
    err = ctl.result(tid)
    assert isinstance(err, runq.TaskError)
    assert err.type == "ValueError" and err.message == "kaput"
    assert "taskfns.py" in err.traceback and "raise ValueError" in err.traceback
    with pytest.raises(runq.TaskError, match="ValueError: kaput"):
        ctl.result(tid, error=True)
    with pytest.raises(runq.TaskError):
        ctl.results([tid], error=True)


def test_worker_survives_exit_and_unpicklable_result(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    manager = spawn(1)
    bad_exit = ctl.enqueue(taskfns.call_sys_exit, (3,))
    bad_result = ctl.enqueue(taskfns.unpicklable_result)
    good = ctl.enqueue(taskfns.add, (2, 3))
    ctl.wait([bad_exit, bad_result, good], timeout=60, progress=False)
    assert ctl.status([bad_exit, bad_result, good]) == ["ERROR", "ERROR", "COMPLETE"]
    assert ctl.result(bad_exit).type == "SystemExit"
    err = ctl.result(bad_result)
    assert err.type == "SerializationError" and "result" in err.message
    assert "lock" in err.message
    assert ctl.result(good) == 5
    assert manager.is_alive() == {manager.ids[0]: True}


def test_current_task_inside_a_task(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    tid = ctl.enqueue(taskfns.whoami)
    assert ctl.wait(tid, timeout=60, progress=False)
    me = ctl.result(tid)
    assert me["task_id"] == tid and me["worker_id"] in workers.ids and me["attempt"] == 1
    assert runq.current_task() is None


def test_queue_priority_order(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager], tmp_path: Path
) -> None:
    order = tmp_path / "order.txt"
    low = [
        ctl.enqueue(taskfns.record_order, (str(order), f"low{i}"), queue="low") for i in range(3)
    ]
    default = [ctl.enqueue(taskfns.record_order, (str(order), f"def{i}")) for i in range(3)]
    high = [
        ctl.enqueue(taskfns.record_order, (str(order), f"high{i}"), queue="high") for i in range(3)
    ]
    spawn(1, config=WorkerConfig(queues=("high", "default", "low")))
    assert ctl.wait([*low, *default, *high], timeout=60, progress=False)
    assert order.read_text().split() == [
        "high0",
        "high1",
        "high2",
        "def0",
        "def1",
        "def2",
        "low0",
        "low1",
        "low2",
    ]


def test_default_queue_always_listened(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    tid = ctl.enqueue(taskfns.add, (1, 1))
    other = ctl.enqueue(taskfns.add, (1, 1), queue="elsewhere")
    spawn(1, config=WorkerConfig(queues=("images",)))
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.status(other) is TaskStatus.PENDING  # no worker listens there: it waits


def test_dependency_chain_and_diamond(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    top = ctl.enqueue(taskfns.add, (1, 1))
    left = ctl.enqueue(taskfns.add, (10,), depends_on=top)
    right = ctl.enqueue(taskfns.add, (20,), depends_on=top)
    bottom = ctl.enqueue(taskfns.add, (100,), depends_on=[left, right])
    chain = [bottom]
    for i in range(5):
        chain.append(ctl.enqueue(taskfns.add, (i,), depends_on=chain[-1]))
    everything = [top, left, right, bottom, *chain[1:]]
    assert ctl.wait(everything, timeout=60, progress=False)
    finished = [ctl.times(t).finished or 0.0 for t in everything]
    started = [ctl.times(t).started or 0.0 for t in everything]
    assert started[3] >= max(finished[1], finished[2])  # bottom ran after both branches
    for earlier, later in itertools.pairwise(chain):
        assert (ctl.times(later).started or 0.0) >= (ctl.times(earlier).finished or 0.0)
    assert ctl.deferred() == {}


def test_failure_propagates_to_dependants(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    bad = ctl.enqueue(taskfns.fail)
    child = ctl.enqueue(taskfns.add, (1,), depends_on=bad)
    grandchild = ctl.enqueue(taskfns.add, (1,), depends_on=[child])
    ok = ctl.enqueue(taskfns.add, (1,))
    unrelated = ctl.enqueue(taskfns.add, (1,), depends_on=ok)
    ctl.wait([bad, child, grandchild, ok, unrelated], timeout=60, progress=False)
    assert ctl.status([bad, child, grandchild, ok, unrelated]) == [
        "ERROR",
        "IMPOSSIBLE",
        "IMPOSSIBLE",
        "COMPLETE",
        "COMPLETE",
    ]
    assert ctl.queues.length() == 0


def test_wait_notices_completion_and_summary(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    ids = ctl.enqueue_bulk(taskfns.identity, range(200))
    assert ctl.wait(ids, timeout=60, progress=False)
    summary = ctl.summary()
    assert summary["complete"] == 200 and summary["online"] == 2 and summary["queued"] == 0
    assert sorted(ctl.workers.list()) == sorted(workers.ids)
    assert set(ctl.workers.status().values()) <= {"IDLE", "BUSY"}


def test_max_tasks_and_timeout_idle_exit_cleanly(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    manager = spawn(1, config=WorkerConfig(max_tasks=2))
    ids = ctl.enqueue_bulk(taskfns.identity, range(3))
    assert ctl.wait(ids[:2], timeout=60, progress=False)
    wid = manager.ids[0]
    proc_exit = _wait_exit(manager)
    assert proc_exit == 0
    assert ctl.status(ids[2]) is TaskStatus.PENDING
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.EXITED}
    assert wid in ctl.workers.list_exited()
    idle = spawn(
        1, config=WorkerConfig(timeout_idle=0.5, queues=("nothing-here",)), worker_id_base="idler"
    )
    ctl.queues.remove(ids[2])
    assert _wait_exit(idle) == 0
    assert ctl.workers.log_tail([idle.ids[0]], 1)[-1].command == "STOP"


def test_sigterm_finishes_current_task_then_exits(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager], tmp_path: Path
) -> None:
    manager = spawn(1)
    started, release = tmp_path / "started", tmp_path / "release"
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release)))
    after = ctl.enqueue(taskfns.add, (1,))
    _wait_path(ctl, tid, started)
    os.kill(manager.pids[manager.ids[0]], signal.SIGTERM)
    _wait_log(ctl, manager, "SIGNAL")  # the worker took it in before the task may end
    release.touch()
    assert _wait_exit(manager) == 0
    assert ctl.status(tid) is TaskStatus.COMPLETE
    assert ctl.status(after) is TaskStatus.PENDING  # it stopped after the task in hand


def test_terminate_then_stop_lets_the_task_finish(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager], tmp_path: Path
) -> None:
    """``terminate`` and then ``stop`` (as the exit handler of an owner does) ask once: a
    second SIGTERM would interrupt the task and give it back to its queue."""
    manager = spawn(1)
    started, release = tmp_path / "started", tmp_path / "release"
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release), 60))
    _wait_path(ctl, tid, started)
    manager.terminate()
    _wait_log(ctl, manager, "SIGNAL")  # the first one is in: a second would be "stop now"
    manager.terminate()
    release.touch()
    manager.stop(timeout=60)
    assert manager.exit_codes() == {manager.ids[0]: 0}
    assert ctl.status(tid) is TaskStatus.COMPLETE


def test_second_sigterm_requeues_the_task(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager], tmp_path: Path
) -> None:
    manager = spawn(1)
    started, release = tmp_path / "started", tmp_path / "never"
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release), 60))
    _wait_path(ctl, tid, started)
    pid = manager.pids[manager.ids[0]]
    os.kill(pid, signal.SIGTERM)
    _wait_log(ctl, manager, "SIGNAL")
    os.kill(pid, signal.SIGTERM)
    assert _wait_exit(manager) == 0
    assert ctl.status(tid) is TaskStatus.PENDING
    assert ctl.queues.list() == [tid]


# ---------------------------------------------------------------------- helpers
def _wait_exit(manager: runq.WorkerManager, timeout: float = 60) -> int | None:
    """Wait for a single-worker manager's process to exit; its exit code."""
    return manager.exit_codes(timeout)[manager.ids[0]]


def _wait_path(ctl: runq.Controller, tid: str, path: Path, timeout: float = 60) -> None:
    """Wait until a running task has created ``path`` (via the task's status + the file)."""
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"task {tid} never started: {ctl.status(tid)}"
        ctl.backend.wait_change([tid], 0.05)


def _wait_log(
    ctl: runq.Controller, manager: runq.WorkerManager, event: str, timeout: float = 30
) -> None:
    """Wait until the worker process has written ``event`` to its own log."""
    import time

    deadline = time.monotonic() + timeout
    while not any(event in line for line in manager.logs(manager.ids[0])):
        assert time.monotonic() < deadline, f"no {event} in {manager.ids[0]}'s log"
        ctl.backend.wait_change([], 0.05)


def test_progress_updates_reach_the_controller(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    tid = ctl.enqueue(taskfns.report_progress, (3,))
    silent = ctl.enqueue(taskfns.add, (1, 2))
    assert ctl.wait([tid, silent], timeout=60, progress=False)
    assert ctl.progress(tid) == {"done": 3, "of": 3}
    assert ctl.progress(silent) is None
    bound = taskfns.t_progress.apply_async(("halfway",), controller=ctl)
    assert bound.result(timeout=60) == "halfway"
    assert ctl.progress(bound.id) == "halfway"
    with pytest.raises(RuntimeError, match="inside a running task"):
        runq.progress_update(1)
