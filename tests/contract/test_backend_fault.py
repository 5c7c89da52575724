"""The backend contract of the fault-tolerance verbs (heartbeat, detect_lost, release_worker,
request_cancel, request_kill, retry_later, promote_due, retry_tasks, resolve, chain), through
the protocol only, on both backends."""

from __future__ import annotations

from typing import TypeVar

import pytest

from helpers import until
from runq.backends import Backend
from runq.exceptions import ConfigError, TaskStateError, UnknownTaskError
from runq.models import NewTask, TaskStatus
from runq.workers_ops import busy_steps

Q = "q"
PID = 4242
T = TypeVar("T")


def nt(task_id: str, retries: int = 0, deps: tuple[str, ...] = ()) -> NewTask:
    return NewTask(task_id, Q, f"call-{task_id}".encode(), {"retries": retries}, deps)


def worker_status(backend: Backend, wid: str) -> str:
    return {w.worker_id: w.status for w in backend.workers(True)}[wid]


def test_heartbeat_reports_active_and_no_requests(backend: Backend) -> None:
    backend.register_worker("w", {})
    control = backend.heartbeat("w", 30.0)
    assert (control.active, control.kill, control.cancel) == (True, False, None)
    assert backend.heartbeat("w", None).active
    assert not backend.heartbeat("unknown", 30.0).active
    assert backend.detect_lost() == []


@pytest.mark.parametrize("ttl", [30.0, None])
def test_heartbeat_tells_a_forgotten_worker_from_a_lost_one(
    backend: Backend, ttl: float | None
) -> None:
    backend.register_worker("w", {})
    assert backend.heartbeat("w", ttl).known
    assert not backend.heartbeat("never-registered", ttl).known

    backend.release_worker("w", "LOST", "test")
    control = backend.heartbeat("w", ttl)
    assert (control.active, control.known) == (False, True)  # LOST: still on record

    backend.worker_delete(["w"])
    control = backend.heartbeat("w", ttl)
    assert (control.active, control.known) == (False, False)

    backend.register_worker("v", {})
    backend.destroy()  # the namespace is gone: the worker must not register again
    assert not backend.heartbeat("v", ttl).known
    assert backend.workers(include_exited=True) == []  # a heartbeat created nothing


def test_duty_lease_has_one_holder_until_it_lapses_or_is_given_up(
    backend: Backend, other: Backend
) -> None:
    backend.register_worker("a", {})
    backend.register_worker("b", {})
    assert backend.duty_lease("a", 30.0)
    assert backend.duty_lease("a", 30.0)  # renewed by its holder
    assert not other.duty_lease("b", 30.0)  # held: refused, whichever client asks
    assert backend.duty_lease("a", 0.0) is False  # given up ...
    assert other.duty_lease("b", 0.05)  # ... so another worker takes it
    assert until(lambda: backend.duty_lease("a", 30.0))  # b's lapsed: a takes it back
    assert not backend.duty_lease("b", 0.0)  # giving up a lease one does not hold: no-op
    assert not other.duty_lease("b", 30.0)


def test_duty_lease_goes_only_to_active_workers(backend: Backend) -> None:
    assert not backend.duty_lease("never-registered", 30.0)
    backend.register_worker("w", {})
    assert backend.duty_lease("w", 30.0)
    backend.release_worker("w", "LOST", "test")
    assert not backend.duty_lease("w", 30.0)  # a LOST holder loses it
    backend.register_worker("v", {})
    assert backend.duty_lease("v", 30.0)
    backend.destroy()  # the namespace is gone: the lease creates nothing
    assert not backend.duty_lease("v", 30.0)
    assert backend.workers(include_exited=True) == []


@pytest.mark.parametrize("ttl", [-1.0, float("inf"), float("nan")])
def test_duty_lease_refuses_bad_arguments(backend: Backend, ttl: float) -> None:
    backend.register_worker("w", {})
    with pytest.raises(ConfigError):
        backend.duty_lease("w", ttl)
    with pytest.raises(ConfigError):
        backend.duty_lease("", 30.0)
    assert backend.duty_lease("w", 30.0)  # nothing was taken by the refused calls


@pytest.mark.parametrize("retries", [0, 1])
def test_lapsed_heartbeat_marks_lost_and_releases_the_task(backend: Backend, retries: int) -> None:
    backend.enqueue([nt("a", retries=retries), nt("child", deps=("a",)), nt("b")])
    backend.register_worker("w", {})
    assert backend.claim("w", [Q], PID) is not None
    backend.heartbeat("w", 0.05)
    assert until(backend.detect_lost) == ["w"]
    assert worker_status(backend, "w") == "LOST"
    assert not backend.heartbeat("w", 30.0).active
    assert backend.detect_lost() == []
    if retries:  # re-queued at the head, same id, attempt kept
        assert backend.status(["a", "child"]) == [TaskStatus.PENDING, TaskStatus.DEFERRED]
        assert backend.queue_tasks(Q) == ["a", "b"]
        backend.register_worker("w2", {})
        claimed = backend.claim("w2", [Q], PID)
        assert claimed is not None and (claimed.id, claimed.attempt) == ("a", 2)
    else:
        assert backend.status(["a", "child"]) == [TaskStatus.DIED, TaskStatus.IMPOSSIBLE]
        assert backend.queue_tasks(Q) == ["b"]
    # the stale worker cannot store a result any more
    assert backend.finish("w", "a", TaskStatus.COMPLETE, b"late")[0] is False


def test_release_worker_exits_it(backend: Backend) -> None:
    backend.enqueue([nt("a", retries=1)])
    backend.register_worker("w", {})
    backend.claim("w", [Q], PID)
    assert backend.release_worker("w", "EXITED", "killed") == "a"
    assert worker_status(backend, "w") == "EXITED"
    assert backend.status(["a"]) == [TaskStatus.PENDING]
    assert backend.release_worker("w", "EXITED", "again") is None


def test_cancel_request_reaches_the_running_worker_only(backend: Backend) -> None:
    backend.enqueue([nt("a"), nt("b")])
    backend.register_worker("w", {})
    backend.claim("w", [Q], PID)
    assert backend.request_cancel("b") is TaskStatus.PENDING
    assert backend.request_cancel("nope") is TaskStatus.MISSING
    assert backend.heartbeat("w", None).cancel is None
    assert backend.request_cancel("a") is TaskStatus.RUNNING
    assert backend.heartbeat("w", None).cancel == "a"
    assert backend.heartbeat("w", 30.0).cancel == "a"
    backend.finish("w", "a", TaskStatus.CANCELLED, None)
    assert backend.heartbeat("w", 30.0).cancel is None  # dropped: no longer its task


def test_kill_request(backend: Backend) -> None:
    backend.register_worker("w", {})
    backend.register_worker("v", {})
    backend.request_kill(["w", "unknown"])
    assert backend.heartbeat("w", None).kill
    assert not backend.heartbeat("v", None).kill


def test_retry_later_then_promote(backend: Backend) -> None:
    backend.enqueue([nt("a", retries=2), nt("b")])
    backend.register_worker("w", {})
    backend.claim("w", [Q], PID)
    assert backend.retry_later("w", "a", 0.2, b"err")
    assert not backend.retry_later("w", "a", 0.2, b"err")
    assert backend.status(["a"]) == [TaskStatus.PENDING]
    assert backend.queue_tasks(Q) == ["b"]
    assert backend.results(["a"]) == [b"err"]
    due = backend.chain("a").retry_at
    assert due is not None and due > backend.now()
    assert backend.promote_due() == pytest.approx(due)
    until(lambda: backend.promote_due() is None)
    assert backend.queue_tasks(Q) == ["a", "b"]
    assert backend.chain("a").retry_at is None
    claimed = backend.claim("w", [Q], PID)
    assert claimed is not None and (claimed.id, claimed.attempt) == ("a", 2)


def test_cancelled_delayed_task_is_not_promoted(backend: Backend) -> None:
    backend.enqueue([nt("a", retries=2)])
    backend.register_worker("w", {})
    backend.claim("w", [Q], PID)
    backend.retry_later("w", "a", 0.0, b"err")
    assert backend.cancel_queued(["a"]) == [TaskStatus.PENDING]
    backend.promote_due()
    assert backend.status(["a"]) == [TaskStatus.CANCELLED]
    assert backend.queue_tasks(Q) == []


def test_retry_tasks_moves_and_resolves(backend: Backend) -> None:
    backend.enqueue([nt("a"), nt("b")])
    backend.register_worker("w", {})
    backend.claim("w", [Q], PID)
    backend.finish("w", "a", TaskStatus.ERROR, b"e")
    with pytest.raises(TaskStateError):
        backend.retry_tasks([("b", "b2")])  # still PENDING
    with pytest.raises(UnknownTaskError):
        backend.retry_tasks([("zz", "z2")])
    assert backend.retry_tasks([("a", "a2")]) == [TaskStatus.ERROR]
    assert backend.status(["a", "a2"]) == [TaskStatus.MOVED, TaskStatus.PENDING]
    assert backend.payload("a2") == b"call-a"
    assert backend.queue_tasks(Q) == ["b", "a2"]
    with pytest.raises(TaskStateError):
        backend.retry_tasks([("a", "a3")])  # MOVED already
    backend.claim("w", [Q], PID)
    backend.finish("w", "b", TaskStatus.COMPLETE, b"r")
    backend.claim("w", [Q], PID)
    backend.finish("w", "a2", TaskStatus.ERROR, b"e")
    backend.retry_tasks([("a2", "a3")])
    assert backend.resolve(["a", "a2", "a3", "b", "zz"]) == ["a3", "a3", "a3", "b", "zz"]
    assert backend.chain("a2").ids == ("a", "a2", "a3")
    assert backend.chain("b").ids == ("b",)


@pytest.mark.parametrize("ending", ["retry_later", "lost", "exited"])
def test_every_end_of_a_task_ends_the_busy_period(backend: Backend, ending: str) -> None:
    """``ctl.workers.load`` counts a worker busy from TASK_START to the event ending it."""
    backend.enqueue([nt("a")])
    backend.register_worker("w", {})
    assert backend.claim("w", [Q], PID) is not None
    if ending == "retry_later":
        assert backend.retry_later("w", "a", 60.0, b"error")
    else:
        backend.release_worker("w", ending.upper(), "test")
    _, busy = busy_steps([backend.worker_log_tail("w", 0)])
    assert busy == [1, 0]
