"""Duplicate policies (``on_duplicate``), enforced atomically by the backend across
controllers and workers: discard, serial, queue_one (parallel is the default everywhere)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import runq
import taskfns
from runq import TaskStatus


def _submit_concurrently(
    backend_url: str, namespace: str, threads: int, each: int, submit: Callable[..., str]
) -> list[str]:
    """``threads`` submitters, each with its own controller (own connections), released
    together; each submits ``each`` times. Returns every id."""
    ids: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with runq.Controller(namespace, backend_url) as ctl:
                barrier.wait(timeout=30)
                mine = [submit(ctl) for _ in range(each)]
            with lock:
                ids.extend(mine)
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not errors, errors
    assert len(ids) == threads * each
    return ids


def test_discard_refuses_duplicates_while_one_is_queued(ctl: runq.Controller) -> None:
    first = ctl.enqueue(taskfns.add, (1, 2), on_duplicate="discard")
    again = ctl.enqueue(taskfns.add, (1, 2), on_duplicate="discard")
    other_args = ctl.enqueue(taskfns.add, (1, 3), on_duplicate="discard")
    same_kwargs = ctl.enqueue(taskfns.add, (1,), {"b": 2}, on_duplicate="discard")
    assert ctl.status([first, again, other_args, same_kwargs]) == [
        TaskStatus.PENDING,
        TaskStatus.DISCARDED,
        TaskStatus.PENDING,
        TaskStatus.PENDING,  # add(1, b=2) is another call than add(1, 2)
    ]
    assert ctl.times(again).finished is not None
    error = ctl.result(again)
    assert isinstance(error, runq.TaskError) and error.type == "DISCARDED"
    ctl.wait(again, timeout=1)  # a discarded submission counts as finished
    ctl.cancel(first)
    after = ctl.enqueue(taskfns.add, (1, 2), on_duplicate="discard")
    assert ctl.status(after) is TaskStatus.PENDING


def test_discard_ref_flag_and_bulk_batches(ctl: runq.Controller) -> None:
    ref = taskfns.t_gate.apply_async(("never",), controller=ctl)
    dup = taskfns.t_gate.apply_async(("never",), controller=ctl)
    assert not ref.discarded and dup.discarded
    ids = ctl.enqueue_bulk(taskfns.square, [1, 2, 1, 3, 2], on_duplicate="discard")
    assert ctl.status(ids) == [
        TaskStatus.PENDING,
        TaskStatus.PENDING,
        TaskStatus.DISCARDED,
        TaskStatus.PENDING,
        TaskStatus.DISCARDED,
    ]


def test_policy_excludes_depends_on(ctl: runq.Controller) -> None:
    dep = ctl.enqueue(taskfns.add, (1,))
    with pytest.raises(runq.ConfigError, match="depends_on"):
        ctl.enqueue(taskfns.add, (1,), depends_on=dep, on_duplicate="serial")


def test_serial_holds_later_ones_and_releases_them_in_order(ctl: runq.Controller) -> None:
    ids = [ctl.enqueue(taskfns.add, (5,), on_duplicate="serial") for _ in range(3)]
    assert ctl.status(ids) == [TaskStatus.PENDING, TaskStatus.DEFERRED, TaskStatus.DEFERRED]
    assert ctl.queues.list() == [ids[0]]
    ctl.cancel(ids[1])  # a held one leaves the line; the head is still queued
    assert ctl.status(ids) == [TaskStatus.PENDING, TaskStatus.CANCELLED, TaskStatus.DEFERRED]
    ctl.cancel(ids[0])  # the head leaves: the next held one is queued
    assert ctl.status(ids[2]) is TaskStatus.PENDING
    assert ctl.queues.list() == [ids[2]]
    ctl.delete(ids[2])
    fresh = ctl.enqueue(taskfns.add, (5,), on_duplicate="serial")
    assert ctl.status(fresh) is TaskStatus.PENDING


def test_discard_under_concurrent_submitters(
    ctl: runq.Controller,
    backend_url: str,
    namespace: str,
    spawn: Callable[..., object],
    tmp_path: Path,
) -> None:
    gate = str(tmp_path / "gate")
    spawn(3)

    def submit(c: runq.Controller) -> str:
        return taskfns.t_gate.apply_async((gate,), controller=c).id

    ids = _submit_concurrently(backend_url, namespace, threads=6, each=5, submit=submit)
    statuses = ctl.status(ids)
    accepted = [i for i, s in zip(ids, statuses, strict=True) if s is not TaskStatus.DISCARDED]
    assert len(accepted) == 1, statuses
    Path(gate).touch()
    assert ctl.wait(accepted, timeout=30)
    assert ctl.overview(ids) == {TaskStatus.COMPLETE: 1, TaskStatus.DISCARDED: 29}


def test_queue_one_keeps_at_most_one_waiting(
    ctl: runq.Controller,
    backend_url: str,
    namespace: str,
    spawn: Callable[..., object],
    tmp_path: Path,
) -> None:
    gate = str(tmp_path / "gate")
    spawn(3)

    def submit(c: runq.Controller) -> str:
        return c.enqueue(taskfns.wait_for_file, (gate,), on_duplicate="queue_one")

    ids = _submit_concurrently(backend_url, namespace, threads=6, each=5, submit=submit)
    counts = ctl.overview(ids)
    assert counts.get(TaskStatus.DEFERRED) == 1, counts
    assert counts.get(TaskStatus.PENDING, 0) + counts.get(TaskStatus.RUNNING, 0) == 1, counts
    assert counts.get(TaskStatus.DISCARDED) == 28, counts
    accepted = [
        i for i, s in zip(ids, ctl.status(ids), strict=True) if s is not TaskStatus.DISCARDED
    ]
    Path(gate).touch()
    assert ctl.wait(accepted, timeout=30)
    # once both ran, the key is free again
    again = ctl.enqueue(taskfns.wait_for_file, (gate,), on_duplicate="queue_one")
    assert ctl.wait(again, timeout=30)


def test_serial_runs_every_submission_in_order_never_overlapping(
    ctl: runq.Controller,
    backend_url: str,
    namespace: str,
    spawn: Callable[..., object],
    tmp_path: Path,
) -> None:
    log = str(tmp_path / "intervals.txt")
    spawn(3)

    def submit(c: runq.Controller) -> str:
        return c.enqueue(taskfns.log_interval, (log, 0.01), on_duplicate="serial")

    ids = _submit_concurrently(backend_url, namespace, threads=6, each=4, submit=submit)
    assert ctl.wait(ids, timeout=60), ctl.overview(ids)
    runs = [line.split() for line in Path(log).read_text().splitlines()]
    assert sorted(r[0] for r in runs) == sorted(ids)  # every submission ran, once
    runs.sort(key=lambda r: float(r[1]))
    for before, after in itertools.pairwise(runs):
        assert float(after[1]) >= float(before[2]), "two runs of the same call overlapped"
    submitted = [t for t in ctl.list_tasks() if t in set(ids)]
    assert [r[0] for r in runs] == submitted  # in submission order
    # other calls of the same function are not held back by this key
    free = ctl.enqueue(taskfns.log_interval, (log + ".other",), on_duplicate="serial")
    assert ctl.wait(free, timeout=30)


def test_policy_with_a_large_argument_keeps_its_stored_value(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    big = b"x" * (512 * 1024)  # above the by-reference threshold: travels via the store
    first = ctl.enqueue(taskfns.nbytes, (big,), on_duplicate="serial")
    second = ctl.enqueue(taskfns.nbytes, (big,), on_duplicate="serial")
    spawn(1)
    assert ctl.wait([first, second], timeout=60, progress=False)
    assert ctl.results([first, second]) == [len(big), len(big)]
