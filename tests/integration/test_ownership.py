"""Owned workers die with their owner (issue 15): the workers that ``spawn`` and
``Executor(workers=N)`` start stop when the process that started them ends, however it ends;
``detach=True`` workers outlive it; a failed start leaves no process.

The owner is a real Python process (the script below) that the test SIGKILLs or lets call
``os._exit``; its workers are real processes, watched by pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runq
import taskfns
from helpers import TESTS_DIR, gone, until
from runq import TaskStatus

TESTS = str(TESTS_DIR)

OWNER = """
import json, os, sys, time
sys.path[:0] = [{tests!r}]
import runq, taskfns

kind, url, ns, ending, retries, started, detach = sys.argv[1:8]
release = started + ".release"
if kind == "executor":
    ex = runq.Executor(ns, workers=1, url=url, retries=int(retries))
    fut = ex.submit(taskfns.touch_then_wait, started, release, 120)
    manager, task_id = ex._manager, fut.task_id
else:
    ctl = runq.Controller(ns, url)
    manager = ctl.workers.spawn(1, timeout=60, progress=False, detach=detach == "1")
    args = (started, release, 120)
    task_id = ctl.enqueue(taskfns.touch_then_wait, args, retries=int(retries))
print(json.dumps({{"pids": list(manager.pids.values()), "task": task_id}}), flush=True)
while not os.path.exists(started):
    time.sleep(0.01)
if ending == "os._exit":
    os._exit(0)
if ending == "return":  # a normal exit, while the task runs: atexit stops the workers
    open(release, "w").close()
    sys.exit(0)
time.sleep(600)  # the test SIGKILLs this process
"""


class Owner:
    """A real owner process: it starts workers, submits a task and reports their pids."""

    def __init__(
        self, tmp_path: Path, kind: str, url: str, ns: str, ending: str, retries: int, detach: bool
    ) -> None:
        script = tmp_path / "owner.py"
        script.write_text(OWNER.format(tests=TESTS))
        self.started = tmp_path / "started"
        self.release = tmp_path / "started.release"
        argv = [kind, url, ns, ending, str(retries), str(self.started), "1" if detach else "0"]
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *argv], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        report: dict[str, Any] = json.loads(self.proc.stdout.readline())
        self.worker_pids: list[int] = report["pids"]
        self.task: str = report["task"]

    def end(self) -> None:
        """Stop the owner process and every worker it left (by pid)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        for pid in self.worker_pids:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def owners() -> Iterator[list[Owner]]:
    made: list[Owner] = []
    yield made
    for owner in made:
        owner.end()


@pytest.mark.parametrize(
    ("kind", "ending", "retries"),
    [
        ("executor", "SIGKILL", 0),
        ("executor", "os._exit", 1),
        ("spawn", "SIGKILL", 1),
        ("spawn", "os._exit", 0),
    ],
)
def test_owned_workers_die_with_their_owner(
    ctl: runq.Controller,
    owners: list[Owner],
    backend_url: str,
    tmp_path: Path,
    kind: str,
    ending: str,
    retries: int,
) -> None:
    owner = Owner(tmp_path, kind, backend_url, ctl.queue_id, ending, retries, detach=False)
    owners.append(owner)
    until(owner.started.exists, what="the task started")
    if ending == "SIGKILL":
        owner.proc.kill()
    owner.proc.wait(30)
    until(
        lambda: all(gone(pid) for pid in owner.worker_pids),
        timeout_s=10,
        what="the owned workers gone",
    )
    expected = TaskStatus.PENDING if retries else TaskStatus.DIED  # given back, per retries
    assert ctl.status(owner.task) is expected
    assert ctl.workers.list() == []


def test_detached_workers_outlive_their_owner(
    ctl: runq.Controller, owners: list[Owner], backend_url: str, tmp_path: Path
) -> None:
    owner = Owner(tmp_path, "spawn", backend_url, ctl.queue_id, "os._exit", 0, detach=True)
    owners.append(owner)
    until(owner.started.exists, what="the task started")
    owner.proc.wait(30)
    owner.release.touch()  # the task can end: its worker, still there, stores it
    assert ctl.wait(owner.task, timeout=60, progress=False)
    assert not any(gone(pid) for pid in owner.worker_pids)
    for pid in owner.worker_pids:
        os.kill(pid, signal.SIGTERM)
    until(lambda: all(gone(pid) for pid in owner.worker_pids), what="detached workers stopped")


def test_a_normal_exit_stops_owned_workers_after_their_task(
    ctl: runq.Controller, owners: list[Owner], backend_url: str, tmp_path: Path
) -> None:
    owner = Owner(tmp_path, "spawn", backend_url, ctl.queue_id, "return", 0, detach=False)
    owners.append(owner)
    assert owner.proc.wait(60) == 0  # exit waited for the task, no longer
    assert ctl.status(owner.task) is TaskStatus.COMPLETE
    until(lambda: all(gone(pid) for pid in owner.worker_pids), what="the owned workers gone")


# ---------------------------------------------------------------------------- failed starts
def test_a_failing_executor_setup_leaves_no_process(
    ctl: runq.Controller, backend_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[int] = []

    def fail(self: runq.WorkerManager, *args: object, **kwargs: object) -> None:
        started.extend(self.pids.values())
        raise RuntimeError("injected: setup fails after the workers started")

    monkeypatch.setattr(runq.WorkerManager, "wait_alive", fail)
    with pytest.raises(RuntimeError, match="injected"):
        runq.Executor(ctl.queue_id, workers=2, url=backend_url)
    assert len(started) == 2
    assert all(gone(pid) for pid in started)


def test_a_spawn_failing_midway_kills_what_it_started(
    ctl: runq.Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runq.workers import WorkersAPI

    real = WorkersAPI._start  # noqa: SLF001 - the fault is injected where processes start
    started: list[int] = []

    def second_fails(self: WorkersAPI, *args: Any) -> subprocess.Popen[bytes]:
        if started:
            raise OSError("injected: no more processes")
        proc = real(self, *args)
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(WorkersAPI, "_start", second_fails)
    with pytest.raises(OSError, match="injected"):
        ctl.workers.spawn(3, timeout=60, progress=False)
    assert len(started) == 1 and gone(started[0])


def test_spawn_checks_detach(ctl: runq.Controller) -> None:
    with pytest.raises(runq.ConfigError, match="detach must be True or False"):
        ctl.workers.spawn(1, detach="yes")  # type: ignore[arg-type]


def test_task_code_does_not_hold_the_owners_pipe(ctl: runq.Controller) -> None:
    with ctl.workers.spawn(1, timeout=60, progress=False) as manager:
        assert not manager.detached
        tid = ctl.enqueue(taskfns.environment_of, args=(["RUNQ_OWNER_FD"],))
        assert ctl.wait(tid, timeout=60, progress=False)
        assert ctl.result(tid) == {"RUNQ_OWNER_FD": None}
