"""The ``@runq.task`` front end: local calls, delay/apply_async, bind, refs, registries."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import runq
import taskfns
from runq import TaskStatus


@pytest.fixture
def default_ctl(ctl: runq.Controller) -> Iterator[runq.Controller]:
    runq.set_default_controller(ctl)
    yield ctl
    runq.clear_default_controller()


def test_plain_call_runs_locally() -> None:
    assert taskfns.t_add(2, b=3) == 5
    bound = taskfns.t_bound(7)
    assert bound == {"uuid": None, "worker_id": None, "x": 7, "progress": True}


def test_registry_is_isolated() -> None:
    registry = runq.TaskRegistry()

    @runq.task(registry=registry, name="mine.double")
    def double(x: int) -> int:
        return 2 * x

    assert registry.names() == ["mine.double"]
    assert registry.get("mine.double") is double
    assert "mine.double" not in taskfns.REGISTRY
    assert "taskfns.t_add" in taskfns.REGISTRY
    with pytest.raises(KeyError, match="nope"):
        registry.get("nope")


def test_unknown_options_are_named() -> None:
    with pytest.raises(runq.ConfigError, match="'queu'"):
        runq.task(queu="x")
    with pytest.raises(runq.ConfigError, match="on_duplicate"):
        runq.task(on_duplicate="sometimes")
    with pytest.raises(runq.ConfigError, match="'colour'"):
        taskfns.t_add.apply_async((1,), colour="red")


def test_delay_without_controller_is_a_clear_error() -> None:
    runq.clear_default_controller()
    with pytest.raises(runq.ConfigError, match="set_default_controller"):
        taskfns.t_add.delay(1)


def test_delay_runs_on_a_worker(default_ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    ref = taskfns.t_add.delay(2, b=40)
    assert isinstance(ref, runq.TaskRef)
    assert ref.result(timeout=30) == 42
    assert ref.status() is TaskStatus.COMPLETE
    assert ref.wait(timeout=5) is True
    assert not ref.discarded
    assert default_ctl.info(ref.id).options["name"] == "taskfns.t_add"


def test_bind_passes_the_task_context(
    default_ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    ref = taskfns.t_bound.delay(5)
    out = ref.result(timeout=30)
    assert out["uuid"] == ref.id
    assert out["worker_id"] in workers.ids
    assert out["x"] == 5 and out["progress"] is True


def test_apply_async_overrides_options_and_cancel_unqueues(ctl: runq.Controller) -> None:
    picked: list[str] = []

    def pick() -> str:
        picked.append("images")
        return "images"

    ref = taskfns.t_add.apply_async((1, 2), controller=ctl, queue=pick, timeout=2)
    assert picked == ["images"]
    info = ctl.info(ref.id)
    assert info.queue == "images" and info.options["timeout"] == 2.0
    assert ref.status() is TaskStatus.PENDING
    assert ref.cancel() is True
    assert ref.status() is TaskStatus.CANCELLED
    assert ref.cancel() is False
    with pytest.raises(runq.TaskError):
        ref.result(timeout=1)
    assert isinstance(ref.result(timeout=1, error=False), runq.TaskError)


def test_await_ref(default_ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    async def main() -> list[int]:
        refs = [taskfns.t_add.delay(i, b=1) for i in range(3)]
        return list(await asyncio.gather(*refs))

    assert asyncio.run(main()) == [1, 2, 3]


def test_failed_task_raises_its_error(
    default_ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    failing = runq.task(registry=runq.TaskRegistry())(taskfns.fail)
    ref = failing.delay("bad thing")
    with pytest.raises(runq.TaskError, match="bad thing") as info:
        ref.result(timeout=30)
    assert "ValueError" in info.value.traceback


def test_local_task_defined_in_a_test_runs_by_value(
    default_ctl: runq.Controller, workers: runq.WorkerManager, tmp_path: Path
) -> None:
    @runq.task(registry=runq.TaskRegistry())
    def shout(word: str) -> str:
        return word.upper() + "!"

    assert shout.delay("hi").result(timeout=30) == "HI!"
