"""``async def`` tasks, wherever a function goes (enqueue, enqueue_bulk, @task, Executor,
dispatch), on both backends with real workers; at the default concurrency of 1 each runs on
the task process's event loop to its end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import hookfns
import runq
from runq import TaskStatus, WorkerConfig

Spawn = Callable[..., runq.WorkerManager]
FAST: dict[str, Any] = {"poll_process": 0.05, "poll_queue": 0.2}

REGISTRY = runq.TaskRegistry()
async_add_task = runq.task(registry=REGISTRY, name="test_async.add")(hookfns.async_add)


def test_async_tasks_through_enqueue_and_enqueue_bulk(ctl: runq.Controller, spawn: Spawn) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    one = ctl.enqueue(hookfns.async_add, (1, 2))
    bulk = ctl.enqueue_bulk(hookfns.async_add, range(5), {"b": 10})
    who = ctl.enqueue(hookfns.async_whoami)
    bad = ctl.enqueue(hookfns.async_fail, ("nope",))
    assert not ctl.wait([one, *bulk, who, bad], timeout=60, progress=False)
    assert ctl.result(one) == 3
    assert ctl.results(bulk) == [10, 11, 12, 13, 14]
    assert ctl.result(who) == {"task_id": who, "attempt": 1}
    assert ctl.status(bad) is TaskStatus.ERROR
    error = ctl.result(bad)
    assert (error.type, error.message) == ("ValueError", "nope")
    assert "async_fail" in error.traceback


def test_async_tasks_through_task_executor_and_dispatch(ctl: runq.Controller, spawn: Spawn) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    # (the public types do not unwrap a coroutine's result yet: hence the Any)
    ref: runq.TaskRef[Any] = async_add_task.apply_async((2, 3), controller=ctl)
    assert ref.result(timeout=60) == 5
    with runq.Executor(ctl) as ex:
        one: Any = ex.submit(hookfns.async_add, 4, 5).result(timeout=60)
        assert one == 9
        many: list[Any] = list(ex.map(hookfns.async_add, [1, 2], [10, 20], timeout=60))
        assert many == [11, 22]
    job = ctl.dispatch(hookfns.async_add, 7, 100, batch_size=3)
    assert job.wait(timeout=60) is True
    assert job.results == [i + 100 for i in range(7)]


def test_retry_from_an_async_task(ctl: runq.Controller, spawn: Spawn, tmp_path: Path) -> None:
    spawn(1, config=WorkerConfig(**FAST))
    tid = ctl.enqueue(hookfns.async_retry_times, (str(tmp_path / "n"), 1), retries=1)
    assert ctl.wait(tid, timeout=60, progress=False)
    assert ctl.info(tid).attempts == 2
