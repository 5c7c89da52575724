"""Delayed tasks end to end (issue 11): ``delay=`` / ``at=`` on every enqueue, Celery's
``countdown=`` / ``eta=`` on ``apply_async``, the SCHEDULED status with ``extra["run_at"]``,
cancelling, ``delay`` with ``depends_on``, and real workers promoting due tasks themselves.
Lateness is measured in ``bench/time_bench.py``, not here: these tests wait with deadlines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import runq
import taskfns
from runq import TaskStatus
from runq.exceptions import ConfigError

SOON_S = 0.5


@pytest.fixture
def default_ctl(ctl: runq.Controller) -> Iterator[runq.Controller]:
    runq.set_default_controller(ctl)
    yield ctl
    runq.clear_default_controller()


def test_delayed_task_is_scheduled_then_runs(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    tid = ctl.enqueue(taskfns.add, (1, 2), delay=SOON_S)
    other = ctl.enqueue(taskfns.add, (1, 1), delay=timedelta(hours=1))
    assert ctl.status(other) == TaskStatus.SCHEDULED
    info = ctl.info(other)
    submitted = info.times.submitted
    assert submitted is not None
    assert info.extra["run_at"] == pytest.approx(submitted + 3600, abs=2)
    assert ctl.wait(tid, timeout=30)
    assert ctl.result(tid) == 3
    started, submitted2 = ctl.times(tid).started, ctl.times(tid).submitted
    assert started is not None and submitted2 is not None and started >= submitted2 + SOON_S - 0.05
    assert ctl.summary()["scheduled"] == 1
    assert ctl.cancel(other)
    assert ctl.status(other) == TaskStatus.CANCELLED


def test_at_and_bulk(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    when = datetime.now(UTC) + timedelta(seconds=SOON_S)
    ids = ctl.enqueue_bulk(taskfns.square, [1, 2, 3], at=when)
    assert ctl.status(ids) == [TaskStatus.SCHEDULED] * 3
    past = ctl.enqueue(taskfns.add, (2, 2), at=time.time() - 10)  # due: queued at once
    assert ctl.wait([*ids, past], timeout=30)
    assert ctl.results(ids) == [1, 4, 9]


def test_delay_with_depends_on(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    first = ctl.enqueue(taskfns.add, (1, 0))
    later = ctl.enqueue(taskfns.add, (2, 0), delay=SOON_S, depends_on=first)
    assert ctl.status(later) == TaskStatus.SCHEDULED
    assert ctl.wait(later, timeout=30)
    failed = ctl.enqueue(taskfns.fail)
    doomed = ctl.enqueue(taskfns.add, (3, 0), delay=3600, depends_on=failed)
    ctl.wait(failed, timeout=30)
    assert ctl.status(doomed) == TaskStatus.IMPOSSIBLE


def test_apply_async_countdown_and_eta(
    default_ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    ref = taskfns.t_add.apply_async((2,), {"b": 5}, countdown=SOON_S)
    assert ref.status() == TaskStatus.SCHEDULED
    assert ref.result(timeout=30) == 7
    ref2 = taskfns.t_add.apply_async((1,), eta=datetime.now(UTC) + timedelta(hours=1))
    assert ref2.status() == TaskStatus.SCHEDULED
    assert ref2.cancel()


def test_bad_delays_are_refused(ctl: runq.Controller) -> None:
    with pytest.raises(ConfigError, match="not both"):
        ctl.enqueue(taskfns.add, (1, 1), delay=1, at=time.time() + 5)
    with pytest.raises(ConfigError, match="delay"):
        ctl.enqueue(taskfns.add, (1, 1), delay=-1)
    with pytest.raises(ConfigError, match="at must be"):
        ctl.enqueue(taskfns.add, (1, 1), at="tomorrow")
    with pytest.raises(ConfigError, match="on_duplicate"):
        ctl.enqueue(taskfns.add, (1, 1), delay=5, on_duplicate="discard")
    assert ctl.list_tasks() == []
