"""Named limits end to end: ``ctl.limits``, ``limit=`` on ``enqueue`` and ``@task``, with real
workers on both backends. Every time compared is the backend's own record of the tasks
(``ctl.times``), never the test's clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

import runq
import taskfns
from runq.models import Limit

WAIT_S = 120


def test_limits_api(ctl: runq.Controller) -> None:
    assert ctl.limits.list() == {}
    assert ctl.limits.set("api", rate="100/m", concurrency=5) == Limit("api", "100/m", 5)
    ctl.limits.set("db", concurrency=2)
    assert ctl.limits.list() == {
        "api": Limit("api", "100/m", 5),
        "db": Limit("db", None, 2),
    }
    assert ctl.limits.remove("db") is True
    assert ctl.limits.remove("db") is False
    assert list(ctl.limits.list()) == ["api"]
    with pytest.raises(runq.ConfigError, match="rate"):
        ctl.limits.set("bad", rate="fast")


def test_a_task_names_an_existing_limit(ctl: runq.Controller) -> None:
    with pytest.raises(runq.ConfigError, match="unknown limit 'api'"):
        ctl.enqueue(taskfns.add, (1,), limit="api")
    with pytest.raises(runq.ConfigError, match="limit"):
        ctl.enqueue(taskfns.add, (1,), limit="")
    assert ctl.list_tasks() == []
    ctl.limits.set("api", concurrency=1)
    tid = ctl.enqueue(taskfns.add, (1,), limit="api")
    assert ctl.info(tid).options["limit"] == "api"
    (sid,) = ctl.group(runq.sig(taskfns.add, 1).set(limit="api"))
    assert ctl.info(sid).options["limit"] == "api"


def test_rate_over_four_workers(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    """4 workers, a limit of 5 per second, 50 limited tasks (10 s of them) queued ahead of
    100 unlimited ones: never more than 5 limited starts in any one-second window, and the
    unlimited tasks, though queued behind, all finish before the last limited one starts."""
    ctl.limits.set("five", rate="5/s")
    limited = ctl.enqueue_bulk(taskfns.square, range(50), limit="five")
    free = ctl.enqueue_bulk(taskfns.square, range(100))
    spawn(4)
    assert ctl.wait([*limited, *free], timeout=WAIT_S, progress=False)
    starts = sorted(t.started for t in ctl.times(limited) if t.started is not None)
    assert len(starts) == 50
    for i in range(len(starts) - 5):  # 6 starts within less than 1 s would break the limit
        assert starts[i + 5] - starts[i] >= 1.0, (i, starts[i : i + 6])
    free_done = max(t.finished for t in ctl.times(free) if t.finished is not None)
    assert free_done < starts[-1]


def test_concurrency_over_workers_and_the_task_decorator(
    default_ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    ctl = default_ctl
    ctl.limits.set("one", concurrency=1)
    refs = [taskfns.t_limited.delay(i) for i in range(8)]
    spawn(3)
    ids = [r.id for r in refs]
    assert ctl.wait(ids, timeout=WAIT_S, progress=False)
    assert ctl.results(ids) == [i * i for i in range(8)]
    runs = sorted((t.started, t.finished) for t in ctl.times(ids))
    for (_, finished), (started, _) in itertools.pairwise(runs):
        assert finished is not None and started is not None
        assert started >= finished  # one at a time, across three workers


@pytest.fixture
def default_ctl(ctl: runq.Controller) -> Iterator[runq.Controller]:
    runq.set_default_controller(ctl)
    yield ctl
    runq.clear_default_controller()
