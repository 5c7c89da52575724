"""Checked by mypy (not run): the types users see."""

from __future__ import annotations

from typing import assert_type

import runq
from runq import TaskStatus, TaskTimes


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
