"""Chaos: workers SIGKILLed at random while a batch runs, and a Redis restart mid-run.

Every task must end COMPLETE with its correct result: none lost, none duplicated. The CI
variants are short; ``-m slow`` runs the long ones (more tasks, longer tasks, more kills).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

import runq
import taskfns
from conftest import RedisServer
from runq import TaskStatus, WorkerConfig
from runq.exceptions import BackendError, WaitTimeout

T = TypeVar("T")
Spawn = Callable[..., runq.WorkerManager]
CHAOS_CONFIG = WorkerConfig(heartbeat_period=0.2, poll_process=0.05, poll_queue=0.2, verbose=False)


def run_chaos(ctl: runq.Controller, spawn: Spawn, n: int, task_s: float, deadline_s: float) -> int:
    """Run ``n`` tasks on 4 workers, SIGKILLing one at random every ~0.5 s and starting a
    replacement; returns how many were killed."""
    live = [spawn(1, config=CHAOS_CONFIG) for _ in range(4)]
    ids = ctl.enqueue_bulk(taskfns.slow_square, range(n), args={"seconds": task_s}, retries=100)
    rng = random.Random(1234)
    kills = 0
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if ctl.wait(ids, timeout=0.5, progress=False):
                break
        except WaitTimeout:
            pass
        assert time.monotonic() < deadline, f"not done after {deadline_s} s: {ctl.overview()}"
        alive = [m for m in live if all(m.is_alive().values())]
        if len(alive) >= 2:  # keep work going while the replacements start
            victim = rng.choice(alive)
            os.kill(next(iter(victim.pids.values())), signal.SIGKILL)
            live.remove(victim)
            kills += 1
        live.append(spawn(1, config=CHAOS_CONFIG, timeout=0))
    assert ctl.status(ids) == [TaskStatus.COMPLETE] * n
    assert ctl.results(ids) == [x * x for x in range(n)]
    assert sum(ctl.overview().values()) == n  # nothing lost, nothing added
    return kills


def test_chaos_sigkill_workers(ctl: runq.Controller, spawn: Spawn) -> None:
    kills = run_chaos(ctl, spawn, n=2000, task_s=0.004, deadline_s=240)
    print(f"chaos: {kills} workers killed")
    assert kills >= 2


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_chaos_sigkill_workers_long(ctl: runq.Controller, spawn: Spawn) -> None:
    kills = run_chaos(ctl, spawn, n=10_000, task_s=0.01, deadline_s=900)
    print(f"chaos (long): {kills} workers killed")
    assert kills >= 20


def _retrying(op: Callable[[], T], timeout_s: float = 60) -> T:
    """A controller call retried while Redis restarts (its pooled connections are stale)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return op()
        except BackendError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)  # back-off while the server comes back


@pytest.mark.parametrize("n", [1000])
def test_redis_restart_mid_run(tmp_path: Path, namespace: str, n: int) -> None:
    server = RedisServer(tmp_path / "redis", "--appendonly", "yes")
    server.start()
    ctl = runq.Controller(namespace, server.url)
    manager = None
    try:
        config = WorkerConfig(heartbeat_period=1.0, poll_process=0.1, poll_queue=0.2)
        manager = ctl.workers.spawn(
            2, config=config, logdir=tmp_path / "logs", timeout=60, progress=False
        )
        ids = ctl.enqueue_bulk(taskfns.slow_square, range(n), args={"seconds": 0.005})
        deadline = time.monotonic() + 60
        while ctl.overview().get(TaskStatus.COMPLETE, 0) < n // 5:
            assert time.monotonic() < deadline
            ctl.backend.wait_change(ids[: n // 5], 0.5)
        assert ctl.overview().get(TaskStatus.COMPLETE, 0) < n  # mid-run
        server.stop()  # SIGTERM: the append-only file is flushed
        server.start()  # same port, same directory
        assert _retrying(lambda: ctl.wait(ids, timeout=120, progress=False))
        assert _retrying(lambda: ctl.results(ids)) == [x * x for x in range(n)]
        assert ctl.overview() == {TaskStatus.COMPLETE: n}
        assert all(manager.is_alive().values())
        retried = [e for w in manager.ids for e in manager.logs(w) if "BACKEND_RETRY" in e]
        assert retried, "the workers never saw the outage"
    finally:
        if manager is not None:
            manager.stop(timeout=15)
        ctl.close()
        server.stop()
