"""The backend contract for a worker that runs several tasks at once (``WorkerConfig(
concurrency=N)``): every task is claimed against that worker, finishing one leaves the others
its own, cancel requests reach each, and a lost or released worker gives ALL of them back
(re-queued, or DIED without retries left). Through the protocol only, on both backends."""

from __future__ import annotations

import pytest

from helpers import until
from runq.backends import Backend
from runq.models import NewTask, TaskStatus

Q = "q"
PID = 4242


def nt(task_id: str, retries: int = 0) -> NewTask:
    return NewTask(task_id, Q, f"call-{task_id}".encode(), {"retries": retries}, ())


def state(backend: Backend, wid: str) -> tuple[str, str | None]:
    found = {w.worker_id: (w.status, w.task_id) for w in backend.workers(True)}
    return found[wid]


def claim_all(backend: Backend, wid: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        task = backend.claim(wid, [Q], PID)
        assert task is not None
        ids.append(task.id)
    return ids


def test_a_worker_holds_several_tasks_and_stays_busy_until_the_last(backend: Backend) -> None:
    backend.enqueue([nt(f"t{i}") for i in range(4)])
    backend.register_worker("w", {})
    held = claim_all(backend, "w", 3)
    assert backend.status(held) == [TaskStatus.RUNNING] * 3
    assert [r.worker_id for r in backend.records(held) if r] == ["w"] * 3
    assert backend.finish("w", "t1", TaskStatus.COMPLETE, b"r1")[0]
    status, shown = state(backend, "w")
    assert status == "BUSY" and shown in ("t0", "t2")
    assert backend.requeue("w", "t0")
    assert state(backend, "w") == ("BUSY", "t2")
    accepted, nxt = backend.finish("w", "t2", TaskStatus.COMPLETE, b"r2", [Q], PID)
    assert accepted and nxt is not None and nxt.id in ("t0", "t3")
    assert state(backend, "w") == ("BUSY", nxt.id)
    assert backend.finish("w", nxt.id, TaskStatus.COMPLETE, b"r")[0]
    assert state(backend, "w") == ("IDLE", None)


@pytest.mark.parametrize("retries", [0, 1])
def test_a_lost_worker_gives_back_every_task_it_held(backend: Backend, retries: int) -> None:
    n = 50
    backend.enqueue([nt(f"t{i:02d}", retries) for i in range(n)] + [nt("rest")])
    backend.register_worker("w", {})
    held = claim_all(backend, "w", n)
    backend.finish("w", held[7], TaskStatus.COMPLETE, b"done")
    backend.heartbeat("w", 0.05)
    assert until(backend.detect_lost) == ["w"]
    others = [t for t in held if t != held[7]]
    if retries:  # re-queued at the head, in their claim order, then the rest
        assert backend.status(others) == [TaskStatus.PENDING] * (n - 1)
        assert backend.queue_tasks(Q) == [*others, "rest"]
    else:
        assert backend.status(others) == [TaskStatus.DIED] * (n - 1)
        assert backend.queue_tasks(Q) == ["rest"]
    assert backend.status([held[7]]) == [TaskStatus.COMPLETE]
    assert backend.finish("w", held[0], TaskStatus.COMPLETE, b"late")[0] is False


def test_release_worker_gives_back_every_task(backend: Backend) -> None:
    backend.enqueue([nt("a", 1), nt("b", 0), nt("c", 1)])
    backend.register_worker("w", {})
    claim_all(backend, "w", 3)
    assert backend.release_worker("w", "EXITED", "killed") == "a"
    assert backend.status(["a", "b", "c"]) == [
        TaskStatus.PENDING, TaskStatus.DIED, TaskStatus.PENDING,
    ]  # fmt: skip
    assert backend.queue_tasks(Q) == ["a", "c"]


def test_cancel_requests_for_several_tasks_of_one_worker(backend: Backend) -> None:
    backend.enqueue([nt("a"), nt("b"), nt("c")])
    backend.register_worker("w", {})
    claim_all(backend, "w", 3)
    assert backend.request_cancel("b") is TaskStatus.RUNNING
    assert backend.request_cancel("a") is TaskStatus.RUNNING  # before the worker read "b"
    assert backend.heartbeat("w", None).cancel == "b"
    backend.finish("w", "b", TaskStatus.CANCELLED, None)
    assert backend.heartbeat("w", 30.0).cancel == "a"  # not lost behind "b"
    assert backend.heartbeat("w", None).cancel == "a"
    backend.finish("w", "a", TaskStatus.CANCELLED, None)
    assert backend.heartbeat("w", None).cancel is None
    assert backend.heartbeat("w", 30.0).cancel is None
    assert backend.status(["c"]) == [TaskStatus.RUNNING]
