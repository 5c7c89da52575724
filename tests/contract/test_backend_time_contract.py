"""The backend contract for delayed tasks (issue 11): ``enqueue`` with ``delay_s`` makes tasks
SCHEDULED outside any queue, and ``promote_due`` moves those that are due, atomically, to the
TAIL of their queue (delayed retries keep going to the head), or to DEFERRED / IMPOSSIBLE by
their dependencies. On both backends, through the protocol only; the due times are short and
every wait is bounded (``until``), never a sleep."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from helpers import PID, Q, nt, until
from runq.backends import Backend, connect
from runq.backends.redis.staging import ENQUEUE_CHUNK
from runq.exceptions import ConfigError
from runq.models import NewTask, TaskStatus

LATER_S = 3600.0  # "not due during the test"
SOON_S = 0.2  # due shortly: promote_due is retried until it is


def _delayed(task: NewTask, delay_s: float) -> NewTask:
    return dataclasses.replace(task, delay_s=delay_s)


def _promoted(backend: Backend, ids: list[str], status: TaskStatus) -> bool:
    backend.promote_due()
    return all(s is status for s in backend.status(ids))


def test_a_delayed_task_is_scheduled_outside_its_queue_until_due(backend: Backend) -> None:
    before = backend.now()
    assert backend.enqueue([_delayed(nt("a" * 32), LATER_S)]) == [TaskStatus.SCHEDULED]
    assert backend.status(["a" * 32]) == [TaskStatus.SCHEDULED]
    assert backend.queue_tasks(Q) == []
    assert backend.claim("w1", [Q], PID) is None
    due = backend.chain("a" * 32).retry_at
    assert due is not None and before + LATER_S - 1 <= due <= backend.now() + LATER_S + 1
    nxt = backend.promote_due()
    assert nxt == pytest.approx(due)
    assert backend.status(["a" * 32]) == [TaskStatus.SCHEDULED]


def test_a_due_task_enters_the_tail_of_its_queue(backend: Backend) -> None:
    backend.enqueue([nt("b" * 32)])
    backend.enqueue([_delayed(nt("c" * 32), SOON_S), _delayed(nt("d" * 32), SOON_S)])
    until(lambda: _promoted(backend, ["c" * 32, "d" * 32], TaskStatus.PENDING), 10, "due")
    queue = backend.queue_tasks(Q)
    assert queue[0] == "b" * 32 and sorted(queue[1:]) == ["c" * 32, "d" * 32]
    assert backend.promote_due() is None
    claimed = backend.claim("w1", [Q], PID)
    assert claimed is not None and claimed.id == "b" * 32


def test_promotion_is_atomic_whoever_calls_it(backend: Backend, backend_url: str) -> None:
    ids = [f"{i:032x}" for i in range(300)]
    backend.enqueue([_delayed(nt(i), SOON_S) for i in ids])
    until(lambda: backend.now() > (backend.chain(ids[0]).retry_at or 0) + 0.05, 10, "due")
    others = [connect(backend_url, backend.namespace) for _ in range(4)]
    try:
        threads = [threading.Thread(target=o.promote_due) for o in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        backend.promote_due()
        queue = backend.queue_tasks(Q)
        assert sorted(queue) == ids  # each one exactly once
        assert set(backend.status(ids)) == {TaskStatus.PENDING}
    finally:
        for o in others:
            o.close()


def test_a_scheduled_task_can_be_cancelled(backend: Backend) -> None:
    backend.enqueue([_delayed(nt("e" * 32), SOON_S)])
    backend.enqueue([nt("f" * 32, deps=["e" * 32])])
    assert backend.cancel_queued(["e" * 32]) == [TaskStatus.SCHEDULED]
    assert backend.status(["e" * 32, "f" * 32]) == [TaskStatus.CANCELLED, TaskStatus.IMPOSSIBLE]
    until(lambda: backend.promote_due() is None, 10, "the entry dropped")
    assert backend.status(["e" * 32]) == [TaskStatus.CANCELLED]
    assert backend.queue_tasks(Q) == []


def test_delay_and_dependencies_both_hold_first(backend: Backend) -> None:
    backend.enqueue([nt("1" * 32)])  # the dependency, PENDING
    backend.enqueue([_delayed(nt("2" * 32, deps=["1" * 32]), SOON_S)])
    assert backend.status(["2" * 32]) == [TaskStatus.SCHEDULED]
    # due first, the dependency not done: DEFERRED, then released by its completion
    until(lambda: _promoted(backend, ["2" * 32], TaskStatus.DEFERRED), 10, "deferred")
    claimed = backend.claim("w1", [Q], PID)
    assert claimed is not None and claimed.id == "1" * 32
    backend.finish("w1", "1" * 32, TaskStatus.COMPLETE, b"r")
    assert backend.status(["2" * 32]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["2" * 32]


def test_dependency_done_before_the_due_time(backend: Backend) -> None:
    backend.enqueue([nt("3" * 32)])
    backend.enqueue([_delayed(nt("4" * 32, deps=["3" * 32]), SOON_S)])
    claimed = backend.claim("w1", [Q], PID)
    assert claimed is not None
    backend.finish("w1", "3" * 32, TaskStatus.COMPLETE, b"r")
    assert backend.status(["4" * 32]) == [TaskStatus.SCHEDULED]  # not before its time
    until(lambda: _promoted(backend, ["4" * 32], TaskStatus.PENDING), 10, "pending")
    assert backend.queue_tasks(Q) == ["4" * 32]


def test_a_failed_dependency_makes_a_scheduled_task_impossible(backend: Backend) -> None:
    backend.enqueue([nt("5" * 32)])
    backend.enqueue([_delayed(nt("6" * 32, deps=["5" * 32]), LATER_S)])
    backend.enqueue([nt("7" * 32, deps=["6" * 32])])
    claimed = backend.claim("w1", [Q], PID)
    assert claimed is not None
    backend.finish("w1", "5" * 32, TaskStatus.ERROR, b"e")
    assert backend.status(["6" * 32, "7" * 32]) == [TaskStatus.IMPOSSIBLE] * 2


def test_a_delayed_retry_still_goes_to_the_head(backend: Backend) -> None:
    backend.enqueue([nt("8" * 32)])
    claimed = backend.claim("w1", [Q], PID)
    assert claimed is not None
    backend.enqueue([nt("9" * 32)])
    backend.retry_later("w1", "8" * 32, SOON_S, b"err")
    until(lambda: backend.promote_due() is None, 10, "retried")  # PENDING all along
    assert backend.queue_tasks(Q) == ["8" * 32, "9" * 32]


def test_a_batch_shares_one_delay(backend: Backend) -> None:
    with pytest.raises(ConfigError, match="share one delay"):
        backend.enqueue([_delayed(nt("a" * 32), 5), nt("b" * 32)])
    with pytest.raises(ConfigError, match="delay"):
        backend.enqueue([_delayed(nt("a" * 32), -1)])
    assert backend.list_tasks() == []


def test_a_large_delayed_batch_is_scheduled_whole(backend: Backend) -> None:
    n = ENQUEUE_CHUNK + 10  # staged on Redis
    ids = [f"{i:032x}" for i in range(n)]
    tasks = [_delayed(nt(ids[0]), SOON_S)]
    tasks += [
        _delayed(nt(i, deps=[ids[0]] if k == 5 else ()), SOON_S) for k, i in enumerate(ids[1:])
    ]
    statuses = backend.enqueue(tasks)
    assert statuses == [TaskStatus.SCHEDULED] * n
    assert backend.queue_tasks(Q) == []
    until(lambda: backend.promote_due() is None and backend.promote_due() is None, 30, "due")
    assert len(backend.queue_tasks(Q)) == n - 1
    assert backend.status([ids[6]]) == [TaskStatus.DEFERRED]
