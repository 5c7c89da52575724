"""Periodic schedules end to end (issue 11): ``ctl.schedules`` stored in the backend and
fired by real workers, one task per tick; missed ticks fired once; pause, resume, remove; and
the must-show run: ``every=1`` for 30 s with 4 workers in 2 groups and 2 controllers, every
worker restarted midway, 30 ± 1 tasks and never two for one tick."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import runq
import taskfns
from helpers import until
from runq import TaskStatus
from runq.exceptions import ConfigError


def _tasks_of(ctl: runq.Controller, name: str) -> list[runq.TaskInfo]:
    return [i for i in map(ctl.info, ctl.list_tasks()) if i.options.get("schedule") == name]


def test_workers_fire_a_schedule(ctl: runq.Controller, workers: runq.WorkerManager) -> None:
    made = ctl.schedules.add("adder", taskfns.add, (1, 2), every=0.3, retries=2)
    assert made.name == "adder" and made.every == 0.3 and made.cron is None
    assert made.timezone == "UTC" and made.queue == "default" and not made.paused
    assert made.task == "taskfns.add" and made.last_run is None and made.last_task_id is None
    assert ctl.schedules.add("adder", taskfns.add, (1, 2), every=0.3, retries=2) == made
    until(lambda: len(ctl.list_tasks()) >= 3, 30, "three ticks")
    infos = _tasks_of(ctl, "adder")
    assert all(i.options["retries"] == 2 for i in infos)
    ticks = [i.options["tick"] for i in infos]
    assert len(set(ticks)) == len(ticks)
    assert ctl.wait([i.id for i in infos], timeout=30)
    assert ctl.results([i.id for i in infos]) == [3] * len(infos)
    now = ctl.schedules.list()["adder"]
    assert now.last_task_id in ctl.list_tasks() and now.last_run is not None
    assert ctl.schedules.pause("adder") and ctl.schedules.list()["adder"].paused
    assert ctl.schedules.resume("adder") and not ctl.schedules.list()["adder"].paused
    assert ctl.schedules.remove("adder") and ctl.schedules.list() == {}
    assert not ctl.schedules.pause("adder") and not ctl.schedules.remove("adder")


def test_missed_ticks_fire_once(
    ctl: runq.Controller, spawn: Callable[..., runq.WorkerManager]
) -> None:
    ctl.schedules.add("hourly", taskfns.add, (2, 2), every=3600)
    # as if no worker had run for 100 s of ticks: its tick is 100 s in the past
    ctl.backend.schedule_pause("hourly", False, ctl.backend.now() - 100)
    spawn(2)
    until(lambda: ctl.schedules.list()["hourly"].last_task_id, 30, "the missed tick")
    sched = ctl.schedules.list()["hourly"]
    assert sched.next_run > ctl.backend.now() + 3000  # the next real tick, not a catch-up
    assert len(ctl.list_tasks()) == 1
    assert ctl.wait(sched.last_task_id or "", timeout=30)


def test_cron_schedule_and_bad_input(ctl: runq.Controller) -> None:
    made = ctl.schedules.add(
        "nightly", taskfns.add, (1, 1), cron="0 3 * * *", timezone="Asia/Tokyo"
    )
    assert made.cron == "0 3 * * *" and made.timezone == "Asia/Tokyo"
    assert made.next_run > ctl.backend.now()
    with pytest.raises(ConfigError, match="exactly one"):
        ctl.schedules.add("x", taskfns.add, (1, 1))
    with pytest.raises(ConfigError, match="time zone"):
        ctl.schedules.add("x", taskfns.add, (1, 1), every=5, timezone="Nowhere/City")
    with pytest.raises(ConfigError, match="delay"):
        ctl.schedules.add("x", taskfns.add, (1, 1), every=5, delay=3)
    with pytest.raises(ConfigError, match="on_duplicate"):
        ctl.schedules.add("x", taskfns.add, (1, 1), every=5, on_duplicate="discard")
    with pytest.raises(ConfigError, match="unknown option"):
        ctl.schedules.add("x", taskfns.add, (1, 1), every=5, colour="red")
    with pytest.raises(ConfigError, match="no schedule named"):
        ctl.schedules.get("x")
    assert list(ctl.schedules.list()) == ["nightly"]


def test_every_second_for_30_s_with_restarts(
    ctl: runq.Controller,
    backend_url: str,
    namespace: str,
    spawn: Callable[..., runq.WorkerManager],
) -> None:
    groups = [spawn(2), spawn(2)]
    other = runq.Controller(namespace, backend_url)  # a second application process
    try:
        first = ctl.schedules.add("beat", taskfns.add, (1, 1), every=1).next_run
        assert other.schedules.add("beat", taskfns.add, (1, 1), every=1).next_run == first
        last = first + 29  # 30 ticks: first .. first + 29

        def fired_through(t: float) -> bool:
            done = other.schedules.list()["beat"].last_run
            return done is not None and done >= t

        until(lambda: fired_through(first + 10), 60, "ten ticks")
        for i in range(2):  # every worker restarted, one group at a time
            groups[i].stop(timeout=15)
            groups[i] = spawn(2)
        until(lambda: fired_through(last), 60, "thirty ticks")
        ctl.schedules.pause("beat")
    finally:
        other.close()
    infos = _tasks_of(ctl, "beat")
    ticks = sorted(i.options["tick"] for i in infos)
    assert len(set(ticks)) == len(ticks), "two tasks for one tick"
    assert 29 <= len(ticks) <= 31, ticks
    assert ctl.wait([i.id for i in infos], timeout=60)
    assert set(ctl.status([i.id for i in infos])) == {TaskStatus.COMPLETE}
