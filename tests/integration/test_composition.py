"""Composition: ``runq.sig`` / ``task.s``, ``ctl.chain``, ``ctl.group``, ``ctl.chord`` on both
backends, with real workers; the chord body's release checked through the backend contract."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import runq
import taskfns
from runq import TaskStatus
from runq.serialize import Kind

WAIT_S = 60


def test_chain_passes_each_result_on(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    ids = ctl.chain(runq.sig(taskfns.add, 1, 2), runq.sig(taskfns.add, b=10), taskfns.t_add.s(5))
    assert len(ids) == 3
    assert ctl.wait(ids, timeout=WAIT_S, progress=False)
    assert ctl.results(ids) == [3, 13, 18]
    assert ctl.info(ids[2]).depends_on == (ids[1],)
    assert ctl.info(ids[2]).options["name"] == "taskfns.t_add"


def test_group_runs_independent_tasks(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    ids = ctl.group(*(runq.sig(taskfns.square, i) for i in range(6)))
    assert ctl.wait(ids, timeout=WAIT_S, progress=False)
    assert ctl.results(ids) == [i * i for i in range(6)]
    assert all(ctl.info(i).depends_on == () for i in ids)
    assert ctl.group() == []


def test_chord_body_gets_the_header_results_in_order(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    header = [runq.sig(taskfns.slow_square, i, seconds=0.01 * (8 - i)) for i in range(8)]
    ids, last = ctl.chord(header, runq.sig(taskfns.identity))
    assert ctl.wait([*ids, last], timeout=WAIT_S, progress=False)
    assert ctl.result(last) == [i * i for i in range(8)]
    empty_ids, empty_last = ctl.chord([], runq.sig(sum))
    assert empty_ids == []
    assert ctl.wait(empty_last, timeout=WAIT_S, progress=False)
    assert ctl.result(empty_last) == 0  # sum([])


def test_a_failure_makes_the_rest_impossible(
    ctl: runq.Controller, workers: runq.WorkerManager
) -> None:
    ids = ctl.chain(
        runq.sig(taskfns.add, 1), runq.sig(taskfns.raise_if, 1), runq.sig(taskfns.add, 1)
    )
    header, body = ctl.chord(
        [runq.sig(taskfns.raise_if, 0, 1), runq.sig(taskfns.raise_if, 1, 1)],
        runq.sig(taskfns.identity),
    )
    assert not ctl.wait([*ids, *header, body], timeout=WAIT_S, progress=False)
    assert ctl.status(ids) == [TaskStatus.COMPLETE, TaskStatus.ERROR, TaskStatus.IMPOSSIBLE]
    assert ctl.status([*header, body]) == [
        TaskStatus.COMPLETE,
        TaskStatus.ERROR,
        TaskStatus.IMPOSSIBLE,
    ]


def test_submission_is_all_or_none(ctl: runq.Controller) -> None:
    lock = threading.Lock()  # cannot be pickled
    with pytest.raises(runq.SerializationError):
        ctl.chain(runq.sig(taskfns.add, 1), runq.sig(taskfns.add, lock))
    with pytest.raises(runq.SerializationError):
        ctl.chord([runq.sig(taskfns.add, 1)], runq.sig(taskfns.add, lock))
    assert ctl.list_tasks() == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda ctl: ctl.chain(), "at least one"),
        (lambda ctl: ctl.chain(taskfns.add), "signatures"),
        (lambda ctl: ctl.group(runq.sig(taskfns.add), 3), "signatures"),
        (lambda ctl: ctl.chord(runq.sig(taskfns.add), runq.sig(taskfns.add)), "header"),
        (lambda ctl: ctl.chord([runq.sig(taskfns.add)], taskfns.add), "body"),
        (lambda ctl: runq.sig(3), "callable"),  # type: ignore[arg-type]
        (lambda ctl: runq.sig(taskfns.add).set(depends_on="x"), "depends_on"),
        (lambda ctl: runq.sig(taskfns.add).set(colour="red"), "colour"),
        (lambda ctl: runq.sig(taskfns.add).set(timeout=-1), "timeout"),
    ],
)
def test_bad_input_is_refused_with_nothing_written(
    ctl: runq.Controller, call: Callable[[runq.Controller], object], message: str
) -> None:
    with pytest.raises(runq.ConfigError, match=message):
        call(ctl)
    assert ctl.list_tasks() == []


def test_signature_options_apply(ctl: runq.Controller) -> None:
    s = runq.sig(taskfns.add, 1).set(queue="side", timeout=5, retries=2)
    (tid,) = ctl.group(s)
    info = ctl.info(tid)
    assert info.queue == "side"
    assert info.options["timeout"] == 5
    assert info.options["retries"] == 2


def test_chord_body_is_queued_by_the_last_header_finish(ctl: runq.Controller) -> None:
    """No moment exists where every header task is COMPLETE and the body is not queued: the
    body leaves DEFERRED in the very transition that stores the last header result."""
    backend, codec = ctl.backend, ctl.codec
    header, body = ctl.chord([runq.sig(taskfns.add, i) for i in range(3)], runq.sig(sum))
    for n, expected in enumerate([TaskStatus.DEFERRED, TaskStatus.DEFERRED, TaskStatus.PENDING]):
        task = backend.claim("fake_worker_1", ["default"], 1)
        assert task is not None and task.id == header[n]
        result = codec.dumps(n, Kind.RESULT, task.id, "result")
        accepted, _ = backend.finish("fake_worker_1", task.id, TaskStatus.COMPLETE, result)
        assert accepted
        assert backend.status([body]) == [expected]
    task = backend.claim("fake_worker_1", ["default"], 1)
    assert task is not None and task.id == body
    assert task.options["results_from"] == header
    assert task.options["results_as"] == "list"
