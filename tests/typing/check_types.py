"""Checked by mypy (not run): the types users see."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from typing import assert_type

import runq
from runq import TaskStatus, TaskTimes
from runq.dispatch import DispatchJob


def check(ctl: runq.Controller, tid: str, ids: list[str]) -> None:
    assert_type(ctl.enqueue(print, ("x",)), str)
    assert_type(ctl.enqueue_bulk(print, [1, 2]), list[str])
    assert_type(ctl.status(tid), TaskStatus)
    assert_type(ctl.status(ids), list[TaskStatus])
    assert_type(ctl.exists(tid), bool)
    assert_type(ctl.exists(ids), list[bool])
    assert_type(ctl.times(tid), TaskTimes)
    assert_type(ctl.times(ids), list[TaskTimes])
    assert_type(ctl.position(tid), int)
    assert_type(ctl.position(ids), list[int])
    assert_type(ctl.wait(ids), bool)
    assert_type(ctl.info(tid), runq.TaskInfo)
    assert_type(ctl.store.set(1, "tag"), str)
    assert_type(ctl.store.location(tid), str | None)
    assert_type(ctl.store.location(ids), list[str | None])


@runq.task
def plain(x: int, y: str = "") -> float:
    return float(x)


@runq.task(queue="q", on_duplicate="serial")
def configured(x: int) -> list[int]:
    return [x]


@runq.task(bind=True)
def bound(ctx: object, x: int) -> str:
    return str(x)


def check_front_ends(ctl: runq.Controller) -> None:
    assert_type(plain(1), float)
    assert_type(plain.delay(1, y="a"), runq.TaskRef[float])
    assert_type(plain.delay(1).result(), float)
    assert_type(configured.apply_async((1,)), runq.TaskRef[list[int]])
    assert_type(bound.delay(3), runq.TaskRef[str])
    with runq.Executor(ctl) as ex:
        assert_type(ex.submit(plain.fn, 1), Future[float])
        assert_type(ex.map(pow, [1], [2]), Iterator[int])
    job = ctl.dispatch(square, 10, callback=None)
    assert_type(job, DispatchJob[int])
    assert_type(job.results, list[int | runq.TaskError])


def square(i: int) -> int:
    return i * i
