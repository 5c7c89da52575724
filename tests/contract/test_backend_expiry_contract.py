"""The backend contract for result expiry (issue 11): ``finish`` records a task whose options
give ``result_ttl`` (COMPLETE) or ``failure_ttl`` (other finished statuses); ``expire_take``
hands out those whose time is up, under a lease, never one with a dependant not yet started;
``delete`` drops their entries. On both backends, through the protocol only; waits are
bounded (``until``), never sleeps."""

from __future__ import annotations

import pytest

from helpers import PID, Q, nt, until
from runq.backends import Backend
from runq.exceptions import ConfigError
from runq.models import TaskStatus

TTL = {"result_ttl": 0.2, "failure_ttl": 0.4}


def _run(backend: Backend, task_id: str, status: TaskStatus = TaskStatus.COMPLETE) -> None:
    claimed = backend.claim("w1", [Q], PID)
    assert claimed is not None and claimed.id == task_id
    assert backend.finish("w1", task_id, status, b"out")[0]


def _taken(backend: Backend) -> list[str]:
    return backend.expire_take(100, lease_s=60)[0]


def test_a_finished_task_is_taken_once_its_ttl_passed(backend: Backend) -> None:
    backend.enqueue([nt("a" * 32, options=TTL), nt("b" * 32)])
    _run(backend, "a" * 32)
    _run(backend, "b" * 32)  # no ttl: kept for ever
    _, nxt = backend.expire_take(100)
    assert nxt is not None and nxt <= backend.now() + 1
    assert until(lambda: _taken(backend), 10, "expiry") == ["a" * 32]
    assert _taken(backend) == []  # leased
    backend.delete(["a" * 32], check=False)
    assert backend.expire_take(100) == ([], None)
    assert backend.status(["a" * 32, "b" * 32]) == [TaskStatus.MISSING, TaskStatus.COMPLETE]


def test_failures_follow_failure_ttl(backend: Backend) -> None:
    only_result = {"result_ttl": 0.1}
    backend.enqueue([nt("c" * 32, options=only_result), nt("d" * 32, options=TTL)])
    _run(backend, "c" * 32, TaskStatus.ERROR)  # result_ttl alone keeps a failure
    _run(backend, "d" * 32, TaskStatus.TIMEOUT)
    assert until(lambda: _taken(backend), 10, "expiry") == ["d" * 32]
    assert backend.expire_take(100)[1] is not None  # d's lease only


def test_a_task_waits_for_its_dependant_to_start(backend: Backend) -> None:
    backend.enqueue([nt("e" * 32, options=TTL), nt("f" * 32, deps=["e" * 32])])
    backend.enqueue([nt("9" * 32, queue="other", deps=["e" * 32])])
    _run(backend, "e" * 32)
    # f is PENDING (released), the other dependant too: e must stay
    assert backend.status(["f" * 32]) == [TaskStatus.PENDING]
    until(lambda: backend.now() > (backend.times(["e" * 32])[0].finished or 0) + 0.5, 10, "due")
    assert backend.expire_take(100, postpone_s=0.1)[0] == []
    _run(backend, "f" * 32)
    claimed = backend.claim("w2", ["other"], PID)
    assert claimed is not None
    assert until(lambda: _taken(backend), 10, "expiry") == ["e" * 32]


def test_expire_take_arguments(backend: Backend) -> None:
    with pytest.raises(ConfigError):
        backend.expire_take(0)
    with pytest.raises(ConfigError):
        backend.expire_take(10, lease_s=-1)
