"""Batched dispatch: ``ctl.dispatch`` / ``ctl.dispatch_detached``."""

from __future__ import annotations

import threading

import pytest

import runq
import taskfns
from runq import TaskStatus
from runq.dispatch import default_batch_size


def test_dispatch_gathers_results_in_index_order(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    got: list[list[object]] = []
    called = threading.Event()

    def callback(results: list[object]) -> None:
        got.append(results)
        called.set()

    job = ctl.dispatch(taskfns.add, 23, 100, callback=callback, batch_size=5)
    assert len(job.batch_ids) == 5
    assert job.wait(timeout=30) is True
    assert job.results == [i + 100 for i in range(23)]
    assert job.status() is TaskStatus.COMPLETE
    assert called.wait(10)
    job.wait(timeout=5)  # the callback runs once only
    assert got == [[i + 100 for i in range(23)]]


def test_an_item_error_is_kept_at_its_index(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    job = ctl.dispatch(taskfns.raise_if, 10, 4, batch_size=3)
    assert job.wait(timeout=30) is False
    results = job.results
    assert [r for i, r in enumerate(results) if i != 4] == [i * 10 for i in range(10) if i != 4]
    error = results[4]
    assert isinstance(error, runq.TaskError) and error.type == "ValueError"
    assert "item 4 is bad" in error.traceback


def test_detached_keeps_no_results(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    job = ctl.dispatch_detached(taskfns.no_op, 50, batch_size=10)
    assert job.wait(timeout=30) is True
    assert ctl.results(job.batch_ids) == [None] * 5
    with pytest.raises(runq.ConfigError, match="detached"):
        job.results  # noqa: B018


def test_deferred_returns_at_once_and_keeps_order(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    jobs = [ctl.dispatch(taskfns.add, 4, k, deferred=True, batch_size=2) for k in range(5)]
    assert [j.results for j in jobs] == [[i + k for i in range(4)] for k in range(5)]
    order = ctl.list_tasks()
    ids = [tid for j in jobs for tid in j.batch_ids]
    assert ids == order  # submitted in the order the jobs were made


def test_batch_size_validation_and_default(ctl: runq.Controller) -> None:
    with pytest.raises(runq.ConfigError, match="batch_size"):
        ctl.dispatch(taskfns.add, 3, batch_size=0)
    with pytest.raises(runq.ConfigError, match="count"):
        ctl.dispatch(taskfns.add, -1)
    assert default_batch_size(100_000, 2) == 10_000
    assert default_batch_size(100, 2) == 13
    assert default_batch_size(3, 0) == 1
    empty = ctl.dispatch(taskfns.add, 0)
    assert empty.results == []
