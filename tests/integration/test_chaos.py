"""Chaos: workers SIGKILLed at random while a batch runs, and Redis restarted mid-run.

Every task must end COMPLETE with its correct result (or DIED where it had no retries left):
none lost, none duplicated, none left RUNNING. The CI variants are short; ``-m slow`` runs the
long ones (more tasks, more kills, 20 Redis restarts in a row).
"""

from __future__ import annotations

import contextlib
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
from helpers import RedisServer, until, while_down
from runq import TaskStatus, WorkerConfig
from runq.exceptions import WaitTimeout
from runq.models import FINISHED_STATUSES as FINISHED

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


def run_chaos_default_config(
    ctl: runq.Controller, spawn: Spawn, n: int, kills: int, task_s: float, deadline_s: float
) -> dict[TaskStatus, int]:
    """``n`` tasks (batches of 100 alternately with 3 retries and none) on 4 workers with the
    DEFAULT config (heartbeats every 5 s); ``kills`` times, at random moments, a worker busy
    with a task is SIGKILLed and a new one started. Returns the final status counts."""
    live = [spawn(1) for _ in range(4)]
    ids: list[str] = []
    no_retries: set[int] = set()
    for start in range(0, n, 100):
        retries = 3 if start // 100 % 2 == 0 else 0
        batch = range(start, min(start + 100, n))
        ids += ctl.enqueue_bulk(
            taskfns.slow_square, batch, args={"seconds": task_s}, retries=retries
        )
        if not retries:
            no_retries.update(batch)
    rng = random.Random(4321)
    deadline = time.monotonic() + deadline_s
    for _ in range(kills):
        time.sleep(rng.uniform(0.1, 0.8))  # chaos: a random moment, not a synchronisation
        busy = until(lambda: _busy(ctl, live), what="a busy worker to kill")
        victim = rng.choice(busy)
        wid = victim.ids[0]
        os.kill(victim.pids[wid], signal.SIGKILL)
        live.remove(victim)
        live.append(spawn(1, timeout=0))
    while not all(s in FINISHED for s in ctl.status(ids)):
        with contextlib.suppress(WaitTimeout):
            ctl.wait(ids, timeout=1, progress=False)
        assert time.monotonic() < deadline, f"not done after {deadline_s} s: {ctl.overview()}"
    statuses = ctl.status(ids)
    results = ctl.results(ids)
    for i, (status, value) in enumerate(zip(statuses, results, strict=True)):
        if status is TaskStatus.COMPLETE:
            assert value == i * i
        else:  # only a task without retries left may die with its worker
            assert status is TaskStatus.DIED and i in no_retries, (i, status)
    counts = ctl.overview()
    assert sum(counts.values()) == n  # nothing lost, nothing added
    assert counts.get(TaskStatus.DIED, 0) <= kills  # a worker holds one task at a time
    return counts


def _busy(ctl: runq.Controller, managers: list[runq.WorkerManager]) -> list[runq.WorkerManager]:
    """The managers whose (single) worker runs a task now."""
    running = {w for w, t in ctl.workers.task_id().items() if t}
    return [m for m in managers if m.ids[0] in running and all(m.is_alive().values())]


def test_chaos_default_config(ctl: runq.Controller, spawn: Spawn) -> None:
    counts = run_chaos_default_config(ctl, spawn, n=2000, kills=3, task_s=0.01, deadline_s=240)
    print(f"chaos (default config): {counts}")


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_chaos_default_config_long(ctl: runq.Controller, spawn: Spawn) -> None:
    counts = run_chaos_default_config(ctl, spawn, n=2000, kills=20, task_s=0.05, deadline_s=1500)
    print(f"chaos (default config, long): {counts}")


def redis_restart_soak(tmp_path: Path, namespace: str, rounds: int, n: int, kill: bool) -> None:
    """``rounds`` times: ``n`` tasks drain on 2 workers (heartbeat 1 s) and redis-server
    (append-only) is restarted mid-drain, by SIGKILL (``kill``) or SIGTERM. Every task must
    end COMPLETE with its result; no worker may be judged LOST."""
    server = RedisServer(tmp_path / "redis", "--appendonly", "yes")
    server.start()
    ctl = runq.Controller(namespace, server.url)
    manager = None
    try:
        config = WorkerConfig(heartbeat_period=1.0, poll_process=0.1, poll_queue=0.2)
        manager = ctl.workers.spawn(
            2, config=config, logdir=tmp_path / "logs", timeout=60, progress=False
        )
        for _ in range(rounds):
            ids = ctl.enqueue_bulk(taskfns.slow_square, range(n), args={"seconds": 0.002})
            until(
                lambda ids=ids: ctl.overview(ids[: n // 2]).get(TaskStatus.COMPLETE, 0) >= n // 5,  # type: ignore[misc]
                what="a fifth done",
            )
            if kill:
                server.kill()
            else:
                server.stop()
            server.start()  # same port, same directory: the append-only file is read back
            assert while_down(lambda ids=ids: ctl.wait(ids, timeout=120, progress=False))  # type: ignore[misc]
            assert while_down(lambda ids=ids: ctl.results(ids)) == [x * x for x in range(n)]  # type: ignore[misc]
        counts = while_down(ctl.overview)
        assert counts == {TaskStatus.COMPLETE: rounds * n}, counts
        assert all(manager.is_alive().values())
        assert while_down(ctl.workers.list_exited) == []  # nobody was judged LOST
        assert sorted(while_down(ctl.workers.list)) == sorted(manager.ids)  # no "-r2"
        retried = [e for w in manager.ids for e in manager.logs(w) if "BACKEND_RETRY" in e]
        assert retried, "the workers never saw the outages"
    finally:
        if manager is not None:
            manager.stop(timeout=15)
        ctl.close()
        server.stop()


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_redis_restarts_mid_drain(tmp_path: Path, namespace: str, kill: bool) -> None:
    redis_restart_soak(tmp_path, namespace, rounds=2, n=1000, kill=kill)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_redis_restart_soak(tmp_path: Path, namespace: str) -> None:
    """The bar of issue 9: 20 restarts (kill -9) in a row during 2,000-task drains."""
    redis_restart_soak(tmp_path, namespace, rounds=20, n=2000, kill=True)
