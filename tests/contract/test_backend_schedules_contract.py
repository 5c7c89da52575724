"""The backend contract for periodic schedules (issue 11): saving, listing, pausing and
removing them, the due ones, and ``schedule_fire``, the compare-and-set of a schedule's next
tick that enqueues the tick's task in the same transition, so that each tick creates exactly
one task however many callers race for it. On both backends, through the protocol only."""

from __future__ import annotations

import threading

import pytest

from helpers import Q, nt
from runq.backends import Backend, connect
from runq.exceptions import ConfigError
from runq.models import TaskStatus

SPEC = '{"timetable": {"every": 1.0}}'


def test_save_list_pause_remove(backend: Backend) -> None:
    now = backend.now()
    assert backend.schedule_save("b", SPEC, b"call-b", now + 100, replace=False)
    assert backend.schedule_save("a", SPEC, b"call-a", now + 50, replace=False)
    assert not backend.schedule_save("a", "{}", b"x", now + 1, replace=False)  # kept
    records = backend.schedules()
    assert [r.name for r in records] == ["a", "b"]
    assert records[0].spec == SPEC and records[0].next_run == now + 50
    assert records[0].last_run is None and records[0].last_task_id is None
    assert not records[0].paused and records[0].payload is None
    assert backend.schedule_pause("a", True, now + 60)
    assert backend.schedules()[0].paused and backend.schedules()[0].next_run == now + 60
    assert backend.schedule_pause("a", False, now + 70)
    assert not backend.schedules()[0].paused
    assert not backend.schedule_pause("zz", True, now)
    assert backend.schedule_remove("a") and not backend.schedule_remove("a")
    assert [r.name for r in backend.schedules()] == ["b"]


def test_due_schedules_and_the_next_tick(backend: Backend) -> None:
    now = backend.now()
    backend.schedule_save("late", SPEC, b"p1", now - 5, replace=False)
    backend.schedule_save("later", SPEC, b"p2", now - 1, replace=False)
    backend.schedule_save("future", SPEC, b"p3", now + 30, replace=False)
    backend.schedule_save("paused", SPEC, b"p4", now - 9, replace=False)
    backend.schedule_pause("paused", True, now - 9)
    due, nxt = backend.schedules_due(10)
    assert [(r.name, r.payload) for r in due] == [("late", b"p1"), ("later", b"p2")]
    assert nxt == pytest.approx(now + 30)
    assert [r.name for r in backend.schedules_due(1)[0]] == ["late"]


def test_fire_creates_one_task_per_tick(backend: Backend) -> None:
    now = backend.now()
    backend.schedule_save("s", SPEC, b"p", now - 1, replace=False)
    assert backend.schedule_fire("s", now - 1, now + 1, nt("a" * 32))
    assert not backend.schedule_fire("s", now - 1, now + 1, nt("b" * 32))  # fired already
    assert backend.status(["a" * 32, "b" * 32]) == [TaskStatus.PENDING, TaskStatus.MISSING]
    assert backend.queue_tasks(Q) == ["a" * 32]
    (record,) = backend.schedules()
    assert record.last_task_id == "a" * 32 and record.next_run == now + 1
    assert record.last_run is not None and record.last_run >= now - 1
    backend.schedule_pause("s", True, now + 1)
    assert not backend.schedule_fire("s", now + 1, now + 2, nt("c" * 32))  # paused
    assert not backend.schedule_fire("gone", now, now + 1, nt("d" * 32))  # no such schedule
    assert backend.list_tasks() == ["a" * 32]


def test_racing_firers_make_one_task(backend: Backend, backend_url: str) -> None:
    now = backend.now()
    backend.schedule_save("race", SPEC, b"p", now - 1, replace=False)
    others = [connect(backend_url, backend.namespace) for _ in range(6)]
    won: list[bool] = []
    try:
        threads = [
            threading.Thread(
                target=lambda o=o, i=i: won.append(
                    o.schedule_fire("race", now - 1, now + 1, nt(f"{i:032x}"))
                )
            )
            for i, o in enumerate(others)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        for o in others:
            o.close()
    assert sorted(won) == [False] * 5 + [True]
    assert len(backend.list_tasks()) == 1


def test_bad_schedule_arguments_write_nothing(backend: Backend) -> None:
    with pytest.raises(ConfigError):
        backend.schedule_save("", SPEC, b"p", 1.0, replace=False)
    with pytest.raises(ConfigError):
        backend.schedule_save("x", SPEC, "not bytes", 1.0, replace=False)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        backend.schedule_save("x", SPEC, b"p", float("nan"), replace=False)
    with pytest.raises(ConfigError):
        backend.schedule_fire("x", 1.0, 2.0, nt("e" * 32, deps=["f" * 32]))
    with pytest.raises(ConfigError):
        backend.schedules_due(0)
    assert backend.schedules() == []
