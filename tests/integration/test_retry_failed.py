"""Failed work in bulk (issue 11, item 4): the listing of failed tasks gives each one's
function and error, and ``ctl.retry`` of all of them is one all-or-none step; a retry keeps
the task's ``failure_ttl`` / ``result_ttl``."""

from __future__ import annotations

import runq
import taskfns
from runq import TaskError, TaskStatus


def test_list_and_retry_every_failure(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    ids = ctl.enqueue_bulk(taskfns.raise_if, range(30), {"bad": 7}, result_ttl=3600)
    more = ctl.enqueue_bulk(taskfns.fail, ["no"] * 20, failure_ttl=3600)
    assert not ctl.wait([*ids, *more], timeout=60, progress=False)  # all finished, some failed
    page = ctl.task_page(status=TaskStatus.ERROR, limit=100)
    failed = [t.id for t in page.tasks]
    assert sorted(failed) == sorted([ids[7], *more])
    assert {t.fn for t in page.tasks} == {"taskfns.raise_if", "taskfns.fail"}
    errors = ctl.results(failed)
    assert all(isinstance(e, TaskError) for e in errors)
    assert {e.message for e in errors} == {"item 7 is bad", "no"}
    new = ctl.retry(failed)  # one all-or-none step, whatever the number
    assert len(new) == len(failed) and set(ctl.status(failed, follow=False)) == {"MOVED"}
    kept = [ctl.info(t).options for t in new]
    assert all("result_ttl" in o or "failure_ttl" in o for o in kept)
    assert not ctl.wait(new, timeout=60, progress=False)
    assert ctl.status(new) == [TaskStatus.ERROR] * len(new)
