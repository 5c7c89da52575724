"""The submit -> wait -> result path (issue 14, the p50 latency): a wait on tasks just
submitted may skip its first status read, and believe the statuses the backend announced
with them (Redis); its answers must stay those of a wait that reads."""

from __future__ import annotations

from pathlib import Path

import redis

import runq
import taskfns
from helpers import until
from runq import TaskError, TaskStatus


def _warm(ctl: runq.Controller) -> None:
    """A first wait: on Redis the listener is live from here on, so later submissions are
    marked and their waits take the short path."""
    assert ctl.wait(ctl.enqueue(taskfns.add, (0,)), timeout=60, progress=False)


def test_waits_right_after_submission_give_each_final_status(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    _warm(ctl)
    for i in range(5):
        ok, bad = ctl.enqueue(taskfns.add, (i, 1)), ctl.enqueue(taskfns.fail, (f"no {i}",))
        assert ctl.wait(ok, timeout=60, progress=False)
        assert ctl.result(ok) == i + 1
        assert not ctl.wait(bad, timeout=60, progress=False)
        assert not ctl.wait([ok, bad], timeout=60, progress=False)
        error = ctl.result(bad)
        assert isinstance(error, TaskError) and error.message == f"no {i}"
    done = ctl.enqueue(taskfns.add, (2, 2))  # finished before its wait begins
    until(lambda: ctl.status(done) is TaskStatus.COMPLETE)
    assert ctl.wait(done, timeout=60, progress=False)
    assert ctl.result(done, timeout=60) == 4


def test_a_wait_after_a_retry_waits_for_the_retry(
    ctl: runq.Controller, workers: runq.WorkerManager, tmp_path: Path
) -> None:
    """The announcement of the first attempt's ERROR is older than the retry: a wait that
    begins after the retry follows it and waits for the new attempt."""
    _warm(ctl)
    counter = str(tmp_path / "runs")
    old = ctl.enqueue(taskfns.fail_times, (counter, 1))
    assert not ctl.wait(old, timeout=60, progress=False)
    (new,) = ctl.retry([old])
    assert ctl.wait(old, timeout=60, progress=False)  # followed to the new attempt
    assert ctl.status(new, follow=False) is TaskStatus.COMPLETE
    assert ctl.result(old) == "ok"
    assert ctl.status(old, follow=False) is TaskStatus.MOVED


def test_a_controllers_waits_keep_one_subscription(
    backend_url: str, ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    """Whatever a wait sends on the announcements' connection (a PING) must not break it:
    each wait would then read instead, and a reconnection follow every one."""
    if not backend_url.startswith("redis"):
        return  # SQLite has no subscription
    _warm(ctl)
    server = redis.Redis.from_url(backend_url)

    def subscribers() -> set[str]:
        return {c["id"] for c in server.client_list() if int(c.get("sub", 0)) > 0}

    before = subscribers()
    for i in range(10):
        tid = ctl.enqueue(taskfns.add, (i,))
        assert ctl.wait(tid, timeout=60, progress=False) and ctl.result(tid) == i
    assert subscribers() == before
    server.close()
