"""The backend contract for named limits (``limit_set``, ``limits``, ``limit_remove`` and the
limited ``claim``), on SQLite and Redis, through ``Backend``'s public verbs only."""

from __future__ import annotations

import threading
import time

import pytest

from helpers import JOIN_S, PID, WAIT_TIMEOUT_S, WAKE_WITHIN_S, Q, nt, until
from runq.backends import Backend, connect
from runq.exceptions import ConfigError
from runq.models import Limit, NewTask, TaskStatus

W1 = "limit_worker_1"


def limited(task_id: str, name: str = "api", queue: str = Q) -> NewTask:
    return nt(task_id, queue, options={"limit": name})


def claim_id(backend: Backend, worker: str = W1, queues: tuple[str, ...] = (Q,)) -> str | None:
    task = backend.claim(worker, list(queues), PID)
    return None if task is None else task.id


def finish(backend: Backend, task_id: str, worker: str = W1) -> None:
    accepted, _ = backend.finish(worker, task_id, TaskStatus.COMPLETE, b"r")
    assert accepted


def test_set_list_remove(backend: Backend) -> None:
    assert backend.limits() == []
    backend.limit_set(Limit("b", "100/m", None))
    backend.limit_set(Limit("a", None, 3))
    backend.limit_set(Limit("a", "5/10s", 2))  # replaced
    assert backend.limits() == [Limit("a", "5/10s", 2), Limit("b", "100/m", None)]
    assert backend.limit_remove("a") is True
    assert backend.limit_remove("a") is False
    assert backend.limits() == [Limit("b", "100/m", None)]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (Limit("x", None, None), "rate, a concurrency"),
        (Limit("x", "ten per minute", None), "rate must read"),
        (Limit("x", "0/s", None), "from 1"),
        (Limit("x", "5/ms", None), "rate must read"),
        (Limit("x", None, 0), "concurrency"),
        (Limit("x", None, True), "concurrency"),
        (Limit("", None, 1), "limit name"),
        (Limit("a\nb", None, 1), "control"),
    ],
)
def test_bad_limits_are_refused_with_nothing_written(
    backend: Backend, limit: Limit, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        backend.limit_set(limit)
    assert backend.limits() == []


def test_concurrency_holds_and_others_are_not_held_up(backend: Backend) -> None:
    backend.limit_set(Limit("api", None, 2))
    backend.enqueue([limited("l1"), limited("l2"), limited("l3"), nt("u1"), limited("l4")])
    backend.enqueue([nt("u2")])
    claimed = [claim_id(backend, f"w_{i}") for i in range(5)]
    assert claimed == ["l1", "l2", "u1", "u2", None]  # l3, l4 set aside, still PENDING
    assert backend.status(["l3", "l4"]) == [TaskStatus.PENDING] * 2
    finish(backend, "l1", "w_0")
    assert claim_id(backend, "w_5") == "l3"  # the oldest set-aside task, once a slot frees
    assert claim_id(backend, "w_6") is None
    # a slot frees however the task leaves RUNNING: here a re-queue by its worker
    assert backend.requeue("w_1", "l2")
    assert claim_id(backend, "w_7") == "l4"
    assert claim_id(backend, "w_8") is None


def test_finish_claims_the_set_aside_task_in_the_same_call(backend: Backend) -> None:
    backend.limit_set(Limit("api", None, 1))
    backend.enqueue([limited("l1"), limited("l2")])
    assert claim_id(backend) == "l1"
    assert claim_id(backend, "w_2") is None
    accepted, nxt = backend.finish(W1, "l1", TaskStatus.COMPLETE, b"r", [Q], PID)
    assert accepted and nxt is not None and nxt.id == "l2"


def test_rate_is_a_sliding_window(backend: Backend) -> None:
    backend.limit_set(Limit("api", "2/1s", None))
    backend.enqueue([limited(f"l{i}") for i in range(5)] + [nt("u1")])
    assert [claim_id(backend, f"w_{i}") for i in range(4)] == ["l0", "l1", "u1", None]
    third = until(lambda: claim_id(backend, "w_third"), what="the rate window to open")
    assert third == "l2"
    started = [t.started for t in backend.times([f"l{i}" for i in range(3)])]
    assert all(s is not None for s in started)
    assert started[2] - started[0] >= 1.0  # type: ignore[operator]  # backend's own clock


def test_a_cancelled_set_aside_task_is_dropped(backend: Backend) -> None:
    backend.limit_set(Limit("api", None, 1))
    backend.enqueue([limited("l1"), limited("l2"), limited("l3")])
    assert claim_id(backend) == "l1"
    assert claim_id(backend, "w_2") is None
    assert backend.cancel_queued(["l2"]) == [TaskStatus.PENDING]
    finish(backend, "l1")
    assert claim_id(backend, "w_3") == "l3"


def test_remove_queues_the_waiting_tasks_again(backend: Backend) -> None:
    backend.limit_set(Limit("api", None, 1))
    backend.enqueue([limited("l1"), limited("l2"), limited("l3"), nt("u1")])
    assert claim_id(backend) == "l1"
    assert claim_id(backend, "w_2") == "u1"
    assert backend.limit_remove("api")
    assert claim_id(backend, "w_3") == "l2"  # unlimited now, in their order, at the head
    assert claim_id(backend, "w_4") == "l3"


def test_limits_follow_queue_priority(backend: Backend) -> None:
    backend.limit_set(Limit("api", None, 1))
    backend.enqueue([limited("h1", queue="high"), limited("h2", queue="high"), nt("lo1")])
    assert claim_id(backend, "w_1", ("high", Q)) == "h1"
    assert claim_id(backend, "w_2", ("high", Q)) == "lo1"
    finish(backend, "h1", "w_1")
    assert claim_id(backend, "w_3", (Q,)) is None  # h2 is in "high", not this worker's queue
    assert claim_id(backend, "w_4", ("high", Q)) == "h2"


def test_unknown_limit_names_run_unlimited(backend: Backend) -> None:
    backend.limit_set(Limit("other", None, 1))
    backend.enqueue([limited("a1", "gone"), limited("a2", "gone")])
    assert [claim_id(backend, "w_1"), claim_id(backend, "w_2")] == ["a1", "a2"]


@pytest.mark.parametrize("how", ["ERROR", "CANCELLED", "TIMEOUT", "lost"])
def test_a_slot_frees_however_the_task_ends(backend: Backend, how: str) -> None:
    backend.limit_set(Limit("api", None, 1))
    backend.enqueue([limited("l1"), limited("l2")])
    assert claim_id(backend, "w_1") == "l1"
    assert claim_id(backend, "w_2") is None
    if how == "lost":
        assert backend.release_worker("w_1", "LOST", "judged lost") == "l1"
        assert backend.status(["l1"]) == [TaskStatus.DIED]  # no retries left
    else:
        accepted, _ = backend.finish("w_1", "l1", TaskStatus(how), b"e")
        assert accepted
    assert claim_id(backend, "w_3") == "l2"


def test_a_waiting_worker_sleeps_until_the_rate_window_opens(backend: Backend) -> None:
    """Not a busy poll, not the whole timeout: the wait ends when the window opens."""
    backend.limit_set(Limit("api", "1/2s", None))
    backend.enqueue([limited("l1"), limited("l2")])
    assert claim_id(backend, "w_1") == "l1"
    assert claim_id(backend, "w_2") is None  # l2 set aside: its window opens 2 s after l1
    t0 = time.monotonic()
    backend.wait_for_work("w_2", [Q], WAIT_TIMEOUT_S * 3)
    assert time.monotonic() - t0 < WAIT_TIMEOUT_S
    assert until(lambda: claim_id(backend, "w_2"), what="l2 claimed") == "l2"
    l1, l2 = backend.times(["l1", "l2"])
    assert l1.started is not None and l2.started is not None
    assert l2.started - l1.started >= 2.0  # the backend's own clock


def test_a_waiting_worker_is_woken_when_a_slot_frees(backend_url: str, backend: Backend) -> None:
    backend.limit_set(Limit("api", None, 1))
    backend.enqueue([limited("l1"), limited("l2")])
    assert claim_id(backend, "w_1") == "l1"
    waiter = connect(backend_url, backend.namespace)  # another worker's connection
    try:
        assert claim_id(waiter, "w_2") is None
        woke = threading.Event()

        def wait() -> None:
            waiter.wait_for_work("w_2", [Q], WAIT_TIMEOUT_S * 3)
            woke.set()

        thread = threading.Thread(target=wait)
        thread.start()
        assert not woke.wait(0.3)  # blocked: no slot is free
        finished_at = time.monotonic()
        finish(backend, "l1", "w_1")
        assert woke.wait(JOIN_S)
        assert time.monotonic() - finished_at < WAKE_WITHIN_S * 2
        thread.join(JOIN_S)
        assert claim_id(waiter, "w_2") == "l2"
    finally:
        waiter.close()
