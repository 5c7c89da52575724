"""``WorkerConfig(concurrency=N)``: one worker runs up to N tasks at once, every one claimed
against it; cancel and timeout stop one without disturbing the others; a SIGKILLed worker gives
every task back. Both backends, real worker processes, real kills."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import hookfns
import runq
import taskfns
from helpers import gone, until
from runq import TaskStatus, WorkerConfig

Spawn = Callable[..., runq.WorkerManager]
FAST: dict[str, Any] = {"poll_process": 0.05, "poll_queue": 0.2}


def hold(ctl: runq.Controller, marks: Path, release: Path, n: int, **options: Any) -> list[str]:
    """Enqueue ``n`` async tasks that each mark ``marks/<i>`` and hold until ``release``."""
    marks.mkdir(exist_ok=True)
    return [
        ctl.enqueue(hookfns.async_mark_and_hold, (str(marks), i, str(release)), **options)
        for i in range(n)
    ]


def all_marked(marks: Path, n: int) -> bool:
    return len(list(marks.iterdir())) == n


def test_one_worker_runs_n_async_tasks_at_once(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    manager = spawn(1, config=WorkerConfig(concurrency=20, **FAST))
    wid = manager.ids[0]
    marks, release = tmp_path / "marks", tmp_path / "release"
    tids = hold(ctl, marks, release, 20)
    extra = ctl.enqueue(hookfns.async_add, (1, 1))  # the 21st waits for room
    until(lambda: all_marked(marks, 20), what="20 tasks running at once")
    assert ctl.status(tids) == [TaskStatus.RUNNING] * 20
    assert {ctl.info(t).worker_id for t in tids} == {wid}
    assert ctl.status(extra) is TaskStatus.PENDING
    assert ctl.workers.status([wid]) == {wid: runq.WorkerStatus.BUSY}
    release.touch()
    assert ctl.wait([*tids, extra], timeout=60, progress=False)
    assert sorted(ctl.results(tids)) == list(range(20))
    assert ctl.result(extra) == 2
    until(lambda: ctl.workers.status([wid])[wid] is runq.WorkerStatus.IDLE, what="worker idle")


def test_cancel_and_timeout_stop_one_task_and_not_the_others(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(concurrency=6, **FAST))
    marks, release = tmp_path / "marks", tmp_path / "release"
    others = hold(ctl, marks, release, 3)
    started = tmp_path / "started"
    victim = ctl.enqueue(hookfns.async_touch_then_wait, (str(started), str(tmp_path / "never")))
    late = ctl.enqueue(hookfns.async_sleep, (60,), timeout=0.5)
    until(lambda: all_marked(marks, 3) and started.exists(), what="tasks running")
    ctl.cancel(victim)
    assert ctl.wait([victim, late], timeout=60, progress=False) is False
    assert ctl.status([victim, late]) == [TaskStatus.CANCELLED, TaskStatus.TIMEOUT]
    assert ctl.result(late).type == "TimeoutError"
    assert ctl.status(others) == [TaskStatus.RUNNING] * 3  # undisturbed
    release.touch()
    assert ctl.wait(others, timeout=60, progress=False)
    assert [ctl.info(t).attempts for t in others] == [1, 1, 1]


def test_a_task_that_does_not_yield_is_stopped_by_killing_the_task_process(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=WorkerConfig(concurrency=3, timeout_process_die=0.5, **FAST))
    marks, release = tmp_path / "marks", tmp_path / "release"
    beside = hold(ctl, marks, release, 1, retries=1)
    until(lambda: all_marked(marks, 1), what="task running")
    stuck = ctl.enqueue(hookfns.async_block, (60,), timeout=0.5)
    assert ctl.wait(stuck, timeout=60, progress=False) is False
    assert ctl.status(stuck) is TaskStatus.TIMEOUT
    release.touch()  # the task beside it DIED with its process, and runs again
    assert ctl.wait(beside, timeout=60, progress=False)
    assert ctl.info(beside[0]).attempts == 2


def test_sync_tasks_on_an_async_worker_run_in_threads_beside_async_ones(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hooks_log = tmp_path / "hooks.log"
    monkeypatch.setenv("RUNQ_TEST_HOOKS_FILE", str(hooks_log))
    config = WorkerConfig(concurrency=4, hooks=("hookfns:RecordingHooks",), **FAST)
    spawn(1, config=config)
    marks, release = tmp_path / "marks", tmp_path / "release"
    held = hold(ctl, marks, release, 2)
    until(lambda: all_marked(marks, 2), what="async tasks running")
    sync = [ctl.enqueue(taskfns.add, (i, 1)) for i in range(3)]
    who = ctl.enqueue(taskfns.whoami)
    bad = ctl.enqueue(taskfns.fail, ("sync boom",))
    assert ctl.wait([*sync, who], timeout=60, progress=False)  # while the async ones hold
    assert ctl.results(sync) == [1, 2, 3]
    assert ctl.result(who)["task_id"] == who  # runq.current_task() in the thread
    assert ctl.wait(bad, timeout=60, progress=False) is False
    assert ctl.result(bad).message == "sync boom"
    assert ctl.status(held) == [TaskStatus.RUNNING] * 2
    release.touch()
    assert ctl.wait(held, timeout=60, progress=False)
    lines = hooks_log.read_text().splitlines()
    for tid in [*held, *sync, who, bad]:
        assert any(line.startswith(f"before {tid}") for line in lines)
        assert any(line.startswith(f"after {tid}") for line in lines)


@pytest.mark.parametrize("retries", [0, 1])
def test_sigkilled_async_worker_holding_50_tasks_gives_every_one_back(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path, retries: int
) -> None:
    manager = spawn(1, config=WorkerConfig(concurrency=50, heartbeat_period=0.3, **FAST))
    wid = manager.ids[0]
    marks, release = tmp_path / "marks", tmp_path / "release"
    tids = hold(ctl, marks, release, 50, retries=retries)
    until(lambda: all_marked(marks, 50), what="50 tasks running")
    assert ctl.status(tids) == [TaskStatus.RUNNING] * 50
    os.kill(manager.pids[wid], signal.SIGKILL)
    until(lambda: gone(manager.pids[wid]), what="worker gone")
    assert until(ctl.workers.detect_exited, what="lost worker detected") == [wid]
    statuses = ctl.status(tids)
    if retries == 0:
        assert statuses == [TaskStatus.DIED] * 50  # none lost, none left RUNNING
        return
    assert statuses == [TaskStatus.PENDING] * 50
    assert ctl.queues.length("default") == 50  # every one back in its queue
    release.touch()
    spawn(1, config=WorkerConfig(concurrency=50, **FAST))
    assert ctl.wait(tids, timeout=120, progress=False)
    assert sorted(ctl.results(tids)) == list(range(50))
    assert {ctl.info(t).attempts for t in tids} == {2}
