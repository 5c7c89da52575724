"""Idle workers block on wake-ups instead of polling (issue 14, item 3), on both backends.

Every worker here has ``poll_queue`` and ``poll_process`` of a minute: whatever reaches it
within the tests' far shorter waits was delivered by a wake-up, not found by a poll. The last
test counts what an idle fleet sends to its own redis-server (``INFO commandstats``, which also
counts the calls inside scripts).
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runq
import taskfns
from helpers import RedisServer, gone, until
from runq import TaskStatus, WorkerConfig, WorkerStatus
from runq.worker.loop import IDLE_RECHECK_S

Spawn = Callable[..., runq.WorkerManager]

#: Far longer than any wait below: a wait that ends in time was ended by a wake-up.
LONG_POLL_S = 60.0
#: The waits of these tests (generous for a loaded machine, far below ``LONG_POLL_S``).
PROMPT_S = 25.0


def long_polls(heartbeat_period: float = LONG_POLL_S, concurrency: int = 1) -> WorkerConfig:
    """Polls (and heartbeats, which the control thread used to poll with) a minute apart."""
    return WorkerConfig(
        poll_queue=LONG_POLL_S,
        poll_process=LONG_POLL_S,
        heartbeat_period=heartbeat_period,
        concurrency=concurrency,
    )


def idle(ctl: runq.Controller, worker_id: str) -> bool:
    return ctl.workers.status([worker_id]).get(worker_id) == WorkerStatus.IDLE


def test_new_tasks_messages_and_delayed_tasks_wake_an_idle_worker(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    mgr = spawn(1, config=long_polls())
    until(lambda: idle(ctl, mgr.ids[0]), PROMPT_S, "the worker idle")
    assert ctl.wait(ctl.enqueue(taskfns.add, (1, 2)), timeout=PROMPT_S, progress=False)
    assert ctl.messages.send_and_wait("PING", timeout=PROMPT_S) == {mgr.ids[0]: "PONG"}
    delayed = ctl.enqueue(taskfns.add, (2, 2), delay=0.5)
    assert ctl.wait(delayed, timeout=PROMPT_S, progress=False)
    assert ctl.result(delayed) == 4
    # a failed attempt retried after a delay: the worker that stored it waits for its due time
    retried = ctl.enqueue(
        taskfns.fail_times,
        (str(tmp_path / "runs"), 2),
        retries=2,
        retry_on=ValueError,
        retry_backoff=0.2,
    )
    assert ctl.wait(retried, timeout=PROMPT_S, progress=False)
    assert ctl.result(retried) == "ok"
    # a dependant released by its dependency's completion
    first = ctl.enqueue(taskfns.add, (3, 0))
    then = ctl.enqueue(taskfns.add, (4, 0), depends_on=first)
    assert ctl.wait([first, then], timeout=PROMPT_S, progress=False)
    # a manual retry of a failed task
    failed = ctl.enqueue(taskfns.fail_unless, (str(tmp_path / "fixed"),))
    ctl.wait(failed, timeout=PROMPT_S, progress=False)
    assert ctl.status(failed) == TaskStatus.ERROR
    (tmp_path / "fixed").touch()
    (again,) = ctl.retry([failed])
    assert ctl.wait(again, timeout=PROMPT_S, progress=False)


def test_pause_and_resume_reach_an_idle_worker(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(1, config=long_polls())
    wid = mgr.ids[0]
    until(lambda: idle(ctl, wid), PROMPT_S, "the worker idle")
    ctl.messages.send_and_wait("PAUSE", timeout=PROMPT_S)
    tid = ctl.enqueue(taskfns.add, (1, 1))
    assert ctl.status(tid) == TaskStatus.PENDING
    ctl.messages.send_and_wait("RESUME", timeout=PROMPT_S)
    assert ctl.wait(tid, timeout=PROMPT_S, progress=False)


def test_cancel_and_kill_reach_a_worker_at_once(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    mgr = spawn(2, config=long_polls())
    started, release = tmp_path / "started", tmp_path / "release"
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release), 120))
    until(started.exists, PROMPT_S, "the task started")
    assert ctl.cancel(tid)
    until(lambda: ctl.status(tid) == TaskStatus.CANCELLED, PROMPT_S, "the task cancelled")
    # kill: the idle worker (and the one that ran the task) exit at once
    until(lambda: all(idle(ctl, wid) for wid in mgr.ids), PROMPT_S, "the workers idle")
    ctl.workers.stop(type="kill")
    pids = list(mgr.pids.values())
    until(lambda: all(gone(pid) for pid in pids), PROMPT_S, "the workers gone")


def test_a_worker_with_room_is_woken_by_a_new_task(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    spawn(1, config=long_polls(concurrency=2))
    started, release = tmp_path / "started", tmp_path / "release"
    slow = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release), 120))
    until(started.exists, PROMPT_S, "the first task started")
    quick = ctl.enqueue(taskfns.add, (1, 1))  # the queue was empty: a wake-up brings it
    assert ctl.wait(quick, timeout=PROMPT_S, progress=False)
    assert ctl.status(slow) == TaskStatus.RUNNING
    release.touch()
    assert ctl.wait(slow, timeout=PROMPT_S, progress=False)


def test_signals_end_an_idle_workers_long_wait(ctl: runq.Controller, spawn: Spawn) -> None:
    mgr = spawn(1, config=long_polls())
    until(lambda: idle(ctl, mgr.ids[0]), PROMPT_S, "the worker idle")
    (pid,) = mgr.pids.values()
    os.kill(pid, signal.SIGTERM)
    until(lambda: gone(pid), PROMPT_S, "the worker gone")
    assert ctl.workers.status(mgr.ids) == {mgr.ids[0]: WorkerStatus.EXITED}


def test_a_lost_workers_task_wakes_an_idle_worker(
    ctl: runq.Controller, spawn: Spawn, tmp_path: Path
) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    first = spawn(1, config=long_polls(heartbeat_period=1))
    tid = ctl.enqueue(taskfns.touch_then_wait, (str(started), str(release), 120), retries=1)
    until(started.exists, PROMPT_S, "the task started")
    started.unlink()
    second = spawn(1, config=long_polls(heartbeat_period=1))
    until(lambda: idle(ctl, second.ids[0]), PROMPT_S, "the second worker idle")
    first.kill()  # SIGKILL: its heartbeat lapses, the duty holder re-queues its task
    # Released only now: kill() reaps the worker, whose child had its SIGKILL by then (its
    # parent-death signal), so the first run cannot see the file and finish the task itself.
    release.touch()  # its next run returns at once
    assert ctl.wait(tid, timeout=PROMPT_S, progress=False)
    assert ctl.info(tid).worker_id == second.ids[0]


# ---------------------------------------------------------------------------- what idle costs
#: The idle fleet counted, and the window (seconds).
FLEET = 4
WINDOW_S = 4.0
HEARTBEAT_S = 5.0
#: Redis calls one worker's heartbeat may cost at most (heartbeat.lua, duty_lease.lua, the
#: control thread's BLPOP, with their inner calls: about 11 today).
PER_BEAT = 16
#: What the duty lease's holder adds per wake-up at most (detect_lost, promote_due,
#: schedules_due, expire_take with their inner calls: about 15 today).
PER_DUTY = 30
#: What one idle worker's look at its queues costs at most (messages, claim, timers, BLPOP:
#: about 25); it comes ``IDLE_RECHECK_S`` after its last wake-up.
PER_LOOK = 40
#: How much earlier than its period a heartbeat may come (``control._EARLY_S``, with room).
EARLY_S = 0.5
#: What polling every second cost each idle worker per second (``bench/scale_fleet.py``).
POLLING_PER_S = 16


def test_an_idle_fleet_sends_little_more_than_its_heartbeats(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    """Once every worker blocks (its main loop and its control thread in ``BLPOP``), what an
    idle fleet sends over a window is bounded by its heartbeats: each worker beats at most
    ``floor(window / period) + 1`` times, the duty lease's holder does its duties at those
    beats (and at a due time), and a worker looks at its queues only ``IDLE_RECHECK_S`` after
    its last wake-up. The bound is computed from the window measured, so a slow machine
    cannot break it; polling every second, as before, cost several times more."""
    import redis

    ctl = runq.Controller("idle", own_redis.url)
    client = redis.Redis.from_url(own_redis.url)
    mgr = ctl.workers.spawn(
        FLEET,
        config=WorkerConfig(heartbeat_period=HEARTBEAT_S),
        logdir=tmp_path / "logs",
        timeout=60,
        progress=False,
    )
    try:
        assert ctl.wait(ctl.enqueue(taskfns.add, (1, 1)), timeout=PROMPT_S, progress=False)
        ctl.messages.send_and_wait("PING", timeout=PROMPT_S)  # every worker woken once
        woken = time.monotonic()
        until(lambda: _blocked(client) >= 2 * FLEET, PROMPT_S, "every worker blocked")
        before, start = _calls(client), time.monotonic()
        time.sleep(WINDOW_S)  # the window measured (not a synchronisation)
        after, end = _calls(client), time.monotonic()
    finally:
        mgr.stop(timeout=30)
        ctl.backend.destroy()
        ctl.close()
        client.close()
    sent = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    sent.pop("info", None)  # ours
    beats = math.floor((end - start + EARLY_S) / HEARTBEAT_S) + 1
    looks = math.floor((end - woken) / IDLE_RECHECK_S)
    bound = FLEET * (beats * PER_BEAT + looks * PER_LOOK) + 2 * beats * PER_DUTY
    assert sum(sent.values()) <= bound, sent
    if looks == 0:  # the usual case: far below what polling cost
        assert bound < FLEET * POLLING_PER_S * WINDOW_S / 2


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own: nothing else sends it commands."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def _calls(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}


def _blocked(client: Any) -> int:
    """How many clients are blocked in a ``BLPOP``."""
    return sum(1 for c in client.client_list() if c.get("cmd") == "blpop" and "b" in c["flags"])
