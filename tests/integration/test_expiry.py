"""Result expiry end to end (issue 11): ``result_ttl=`` / ``failure_ttl=`` per task and as the
namespace's default (``runq.configure``); real workers delete a finished task as ``ctl.delete``
does — record, result, progress, store values — after which it is MISSING; a task whose
dependant has not started stays until it has."""

from __future__ import annotations

from collections.abc import Callable

import runq
import taskfns
from helpers import until
from runq import TaskStatus


def _missing(ctl: runq.Controller, *ids: str) -> bool:
    return all(s is TaskStatus.MISSING for s in ctl.status(list(ids)))


def test_result_ttl_deletes_the_task_and_its_values(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    big = ctl.enqueue(taskfns.nbytes, (b"x" * 100_000,), result_ttl=0.3)  # arg in the store
    assert len(ctl.store.list()) == 1
    prog = ctl.enqueue(taskfns.report_progress, (3,), result_ttl=0.3)
    kept = ctl.enqueue(taskfns.add, (1, 1))
    assert ctl.wait([big, prog, kept], timeout=30)
    until(lambda: _missing(ctl, big, prog), 30, "expiry")
    assert ctl.progress(prog) is None
    assert ctl.store.list() == []  # the large argument went with its task
    assert ctl.status(kept) == TaskStatus.COMPLETE and ctl.result(kept) == 2


def test_failure_ttl_and_the_namespace_default(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    runq.configure(ctl.queue_id, ctl.url, result_ttl=1.5).close()
    ctl.submitter.namespace_settings(refresh=True)
    ok = ctl.enqueue(taskfns.add, (1, 2))
    assert ctl.backend.records([ok])[0] is not None  # read before it can expire:
    assert ctl.info(ok).options["result_ttl"] == 1.5  # the default, stored with it
    bad = ctl.enqueue(taskfns.fail)  # result_ttl alone keeps failures
    short = ctl.enqueue(taskfns.fail, failure_ttl=0.3)
    ctl.wait([bad, short], timeout=30)
    until(lambda: _missing(ctl, ok, short), 30, "expiry")
    assert ctl.status(bad) == TaskStatus.ERROR


def test_a_dependency_stays_until_its_dependant_starts(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    spawn(1)  # on "default" only
    first = ctl.enqueue(taskfns.add, (1, 1), result_ttl=0.2)
    later = ctl.enqueue(taskfns.add, (2, 2), depends_on=first, queue="elsewhere")
    assert ctl.wait(first, timeout=30)
    assert ctl.status(later) == TaskStatus.PENDING  # no worker listens on its queue yet
    finished = ctl.times(first).finished
    assert finished is not None
    until(lambda: ctl.backend.now() > finished + 1.0, 30, "past the ttl")
    assert ctl.status(first) == TaskStatus.COMPLETE  # its dependant has not started
    ctl.workers.config_save("elsewhere", runq.WorkerConfig(queues=("elsewhere",)))
    spawn(1, config="elsewhere")
    assert ctl.wait(later, timeout=30)
    until(lambda: _missing(ctl, first), 30, "expiry after the dependant started")
