"""The warm child's shared reports (``runq.worker.reports``): a chain of tasks the child claims
by itself is reported through shared memory, and each of them can still be cancelled, is still
marked DIED when it kills its process, and still gets its log line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runq
import taskfns
from helpers import until
from runq import TaskStatus, WorkerConfig
from runq.models import ClaimedTask
from runq.options import new_task_id
from runq.worker import taskenv
from runq.worker.reports import RING, Reports, reportable

Spawn = Callable[..., runq.WorkerManager]
FAST: dict[str, Any] = {"poll_process": 0.05, "poll_queue": 0.2}


def test_records_are_taken_once_in_order_and_a_full_ring_refuses() -> None:
    reports = Reports.create()
    reader = Reports(os.dup(reports.fd))  # the worker's view of the same file
    try:
        ids = [new_task_id() for _ in range(3)]
        named = ClaimedTask(ids[1], "q", b"payload", {"fn": "mod.fn", "name": "nice"}, 3)
        plain = ClaimedTask(ids[2], "q", b"payload", {}, 1)
        assert reader.current() is None and reader.take() == []
        reports.set_current(ids[0])
        assert reader.current() == ids[0]
        assert reports.add(ids[0], TaskStatus.COMPLETE, True, named)
        assert reports.add(ids[1], TaskStatus.ERROR, False, plain)
        first, second = reader.take()
        assert first == (ids[0], TaskStatus.COMPLETE, True, ids[1], "nice")
        assert first.next_task() == ClaimedTask(ids[1], "", b"", {"fn": "nice"}, 1)
        assert second == (ids[1], TaskStatus.ERROR, False, ids[2], "")
        assert second.next_task().options == {}
        assert reader.take() == []
        assert not reports.add("not-a-task-id", TaskStatus.COMPLETE, True, plain)
        for _ in range(RING):  # the worker reads nothing: the ring fills up
            reports.add(ids[2], TaskStatus.COMPLETE, True, plain)
        assert not reports.add(ids[2], TaskStatus.COMPLETE, True, plain)
        assert len(reader.take()) == RING
        assert reports.add(ids[2], TaskStatus.COMPLETE, True, plain)  # room again
    finally:
        reader.close()
        reports.close()


def test_a_halt_is_counted_after_its_frame_and_a_child_ahead_sees_none() -> None:
    worker_side = Reports.create()
    child_side = Reports(os.dup(worker_side.fd))
    try:
        assert not child_side.halt_waiting()
        worker_side.halt_sent()
        assert child_side.halt_waiting()
        child_side.halt_read()
        assert not child_side.halt_waiting()
        child_side.halt_read()  # a Halt read between chains before the worker counted it
        assert not child_side.halt_waiting()  # ahead of the worker: nothing is waiting
        worker_side.halt_sent()
        assert not child_side.halt_waiting()
        for _ in range(300):  # the one-byte count wraps around
            worker_side.halt_sent()
            assert child_side.halt_waiting()
            child_side.halt_read()
            assert not child_side.halt_waiting()
    finally:
        child_side.close()
        worker_side.close()


def test_only_tasks_without_options_the_worker_acts_on_are_reportable() -> None:
    tid = new_task_id()
    assert reportable(ClaimedTask(tid, "q", b"", {"fn": "f", "name": "n", "seed": 3}, 1))
    assert not reportable(ClaimedTask(tid, "q", b"", {"timeout": 1.0}, 1))
    assert not reportable(ClaimedTask(tid, "q", b"", {"retries": 2}, 1))
    assert not reportable(ClaimedTask("custom", "q", b"", {}, 1))


def _queued_then(ctl: runq.Controller, n: int) -> list[str]:
    """``n`` quick tasks with every option at its default, queued before any worker runs."""
    return list(ctl.enqueue_bulk(taskfns.identity, range(n)))


def test_a_task_the_child_claimed_by_itself_can_be_cancelled(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    quick = _queued_then(ctl, 30)
    flag = tmp_path / "started"
    blocking = ctl.enqueue(taskfns.touch_then_wait, args=(str(flag), str(tmp_path / "never"), 60))
    after = ctl.enqueue(taskfns.square, args=(3,))
    spawn(1, config=WorkerConfig(**FAST))
    until(flag.exists, timeout_s=60, what="the blocking task started")
    assert ctl.cancel(blocking, wait=True, timeout=30) is True
    assert ctl.status(blocking) is TaskStatus.CANCELLED
    assert ctl.wait([*quick, after], timeout=60, progress=False)
    assert ctl.results(quick) == list(range(30))


def test_a_task_that_kills_its_process_mid_chain_is_the_one_marked_died(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    quick = _queued_then(ctl, 30)
    crash = ctl.enqueue(taskfns.exit_process)
    after = ctl.enqueue(taskfns.square, args=(3,))
    spawn(1, config=WorkerConfig(**FAST))
    assert ctl.wait([*quick, after], timeout=60, progress=False)
    until(lambda: ctl.status(crash) is TaskStatus.DIED, timeout_s=60, what="the crash DIED")
    assert ctl.status(quick) == [TaskStatus.COMPLETE] * 30


def test_every_task_of_a_chain_gets_its_log_lines(ctl: runq.Controller, spawn: Spawn) -> None:
    quick = _queued_then(ctl, 50)
    manager = spawn(1, config=WorkerConfig(**FAST))
    assert ctl.wait(quick, timeout=60, progress=False)
    (worker_id,) = manager.pids

    def logged(event: str) -> bool:
        lines = [line for line in manager.logs(worker_id) if event in line]
        return all(any(f"{tid} taskfns.identity" in line for line in lines) for tid in quick)

    until(lambda: logged("TASK_START"), timeout_s=30, what="a TASK_START line for every task")
    until(lambda: logged("TASK_COMPLETE"), timeout_s=30, what="a TASK_COMPLETE line for each")


def test_a_sigterm_mid_chain_ends_the_chain_after_the_current_task(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    """The child claims the blocking task itself, after many others: the worker's Halt still
    reaches it (through the count in the shared reports) and it claims nothing more."""
    quick = _queued_then(ctl, 40)
    started, release = tmp_path / "started", tmp_path / "release"
    blocking = ctl.enqueue(taskfns.touch_then_wait, args=(str(started), str(release), 60))
    after = list(ctl.enqueue_bulk(taskfns.identity, range(20)))
    manager = spawn(1, config=WorkerConfig(**FAST))
    until(started.exists, timeout_s=60, what="the blocking task started")
    (worker_id,) = manager.ids
    os.kill(manager.pids[worker_id], signal.SIGTERM)
    until(
        lambda: any("SIGNAL" in line for line in manager.logs(worker_id)),
        timeout_s=30,
        what="the worker took the SIGTERM in",
    )
    release.touch()
    assert manager.exit_codes(60)[worker_id] == 0
    assert ctl.status(quick) == [TaskStatus.COMPLETE] * 40
    assert ctl.status(blocking) is TaskStatus.COMPLETE
    assert ctl.status(after) == [TaskStatus.PENDING] * 20


_LEAK_PROBE = """
import os, uuid
from runq.worker.taskenv import TaskIdEnv
def resident_kb():  # now, not the peak: what the process keeps
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
env = TaskIdEnv()
for _ in range(2000):
    env.set(uuid.uuid4().hex)
before = resident_kb()
for _ in range(200_000):
    env.set(uuid.uuid4().hex)
print(resident_kb() - before)
"""


@pytest.mark.skipif(not taskenv.glibc(), reason="Linux with glibc (its setenv is what leaks)")
def test_a_task_id_per_task_keeps_no_memory() -> None:
    """glibc's ``setenv`` (``os.environ[...] = ...``) keeps a copy of every value it is ever
    given: 200,000 task ids grew a process by about 18 MB. ``TaskIdEnv`` must keep none."""
    probe = subprocess.run(
        [sys.executable, "-c", _LEAK_PROBE], capture_output=True, text=True, timeout=120
    )
    assert probe.returncode == 0, probe.stderr
    grown_kb = int(probe.stdout)
    assert grown_kb < 2048, f"200,000 task ids grew the process by {grown_kb} KB"


def test_each_task_of_a_chain_sees_its_own_id_in_the_environment(
    ctl: runq.Controller, spawn: Spawn
) -> None:
    """``RUNQ_TASK_ID`` (set in the child's own buffers, ``taskenv.py``) is each task's id in
    ``os.environ``, in C's ``getenv`` and in a process the task starts, even after a task
    set, deleted or ``putenv``-ed it itself."""
    thens = ["", "set", "", "delete", "", "putenv", "", "set", "delete", ""] * 3
    ids = [ctl.enqueue(taskfns.task_id_seen, args=(then,)) for then in thens]
    spawn(1, config=WorkerConfig(**FAST))
    assert ctl.wait(ids, timeout=120, progress=False)
    for tid, seen in zip(ids, ctl.results(ids), strict=True):
        assert seen == {"os.environ": tid, "getenv": tid, "process": tid}
