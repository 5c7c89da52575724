"""``Controller.task_page``: pages of task summaries, newest first, filtered, on both backends."""

from __future__ import annotations

import pytest

import runq
from taskfns import add


def test_pages_of_summaries(ctl: runq.Controller) -> None:
    named = ctl.enqueue(add, (1, 2), name="adder", queue="q1")
    plain = [ctl.enqueue(add, (i, i)) for i in range(5)]
    page = ctl.task_page(limit=3)
    assert [t.id for t in page.tasks] == plain[:-4:-1] and page.after is not None
    rest = ctl.task_page(after=page.after, limit=10)
    assert [t.id for t in rest.tasks] == [plain[1], plain[0], named] and rest.after is None
    (summary,) = ctl.task_page(name="adder").tasks
    assert summary.id == named and summary.name == "adder" and summary.queue == "q1"
    assert summary.status is runq.TaskStatus.PENDING and summary.times.submitted is not None
    assert [t.id for t in ctl.task_page(status="PENDING", queue="default").tasks] == plain[::-1]
    assert ctl.task_page(status=runq.TaskStatus.COMPLETE).tasks == []


def test_a_bad_status_is_refused(ctl: runq.Controller) -> None:
    with pytest.raises(runq.ConfigError, match="status must be one of"):
        ctl.task_page(status="DONE")
